using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace FedRebasin.Tensors;

/// <summary>
/// Reads and writes the huggingface safetensors format: an 8-byte little-endian header length N, N bytes of UTF-8
/// JSON header, then the data buffer. Readers validate everything (see <see cref="SafeTensorsFormatException"/>)
/// and never allocate more than the input can justify; writers are deterministic.
/// </summary>
public static class SafeTensors
{
    private const int PrefixBytes = 8;
    private const int GrowingReadChunk = 1 << 20;

    private static readonly UTF8Encoding s_strictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Reads a whole safetensors file. Error messages name <paramref name="path"/>.</summary>
    /// <exception cref="SafeTensorsFormatException">The file is malformed or exceeds <paramref name="limits"/>.</exception>
    /// <exception cref="IOException">The file cannot be opened or read.</exception>
    public static SafeTensorsFile Read(string path, SafeTensorsLimits? limits = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 0, FileOptions.SequentialScan);
        return Read(stream, path, limits);
    }

    /// <summary>
    /// Reads one safetensors file from the current position of <paramref name="stream"/> to its end; bytes after the
    /// last tensor are an error. Seekable streams are checked against their length before any buffer is allocated;
    /// for other streams buffers grow with the bytes actually received. The stream is not closed.
    /// </summary>
    /// <param name="stream">Readable stream positioned at the 8-byte prefix.</param>
    /// <param name="sourceName">Name used in error messages, for example a file name.</param>
    /// <param name="limits">Bounds to enforce; <see cref="SafeTensorsLimits.Default"/> when null.</param>
    /// <exception cref="SafeTensorsFormatException">The data is malformed or exceeds <paramref name="limits"/>.</exception>
    public static SafeTensorsFile Read(Stream stream, string sourceName, SafeTensorsLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(sourceName);
        limits ??= SafeTensorsLimits.Default;

        long? available = stream.CanSeek ? Math.Max(0, stream.Length - stream.Position) : null;
        if (available > limits.MaxFileBytes)
        {
            throw Fail(sourceName, $"file is {available} bytes, more than the limit of {limits.MaxFileBytes} bytes (MaxFileBytes)");
        }

        Span<byte> prefix = stackalloc byte[PrefixBytes];
        int got = stream.ReadAtLeast(prefix, PrefixBytes, throwOnEndOfStream: false);
        if (got < PrefixBytes)
        {
            throw Fail(sourceName, $"file is {got} bytes, shorter than the 8-byte header length prefix");
        }

        ulong declared = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        int headerLength = CheckHeaderLength(declared, available - PrefixBytes, available, sourceName, limits);
        byte[]? header = ReadBlock(stream, headerLength, available.HasValue, out long headerRead);
        if (header is null)
        {
            throw Fail(sourceName, $"header length {declared} extends past the end of the file ({PrefixBytes + headerRead} bytes)");
        }

        var parsed = HeaderParser.Parse(header, sourceName, limits);
        long? dataLength = available - PrefixBytes - headerLength;
        long declaredData = ValidateLayout(parsed.Entries, dataLength, sourceName);
        if (declaredData > limits.MaxFileBytes - PrefixBytes - headerLength)
        {
            throw Fail(sourceName, $"header declares {declaredData} bytes of tensor data, making the file larger than the limit of {limits.MaxFileBytes} bytes (MaxFileBytes)");
        }

        var tensors = new List<TensorEntry>(parsed.Entries.Count);
        long dataRead = 0;
        foreach (var entry in parsed.Entries)
        {
            if (entry.ByteCount > Array.MaxLength)
            {
                throw Fail(sourceName, $"tensor {TensorNames.Quote(entry.Name)} is {entry.ByteCount} bytes, more than the largest supported tensor ({Array.MaxLength} bytes)");
            }

            byte[]? data = ReadBlock(stream, (int)entry.ByteCount, available.HasValue, out long read);
            if (data is null)
            {
                throw Fail(sourceName, $"data is truncated: header declares {declaredData} bytes of tensor data but the input ended after {dataRead + read}");
            }

            dataRead += read;
            tensors.Add(entry.ToTensor(data));
        }

        if (!available.HasValue && stream.ReadByte() != -1)
        {
            throw Fail(sourceName, $"unused trailing bytes after the {declaredData} bytes of tensor data the header declares");
        }

        return new SafeTensorsFile(tensors, parsed.Metadata);
    }

    /// <summary>
    /// Parses a complete safetensors file held in memory. Tensor data is not copied: the returned entries share
    /// <paramref name="bytes"/>, which the caller must not modify afterwards.
    /// </summary>
    /// <param name="bytes">The whole file: prefix, header and data buffer, nothing after.</param>
    /// <param name="sourceName">Name used in error messages.</param>
    /// <param name="limits">Bounds to enforce; <see cref="SafeTensorsLimits.Default"/> when null.</param>
    /// <exception cref="SafeTensorsFormatException">The data is malformed or exceeds <paramref name="limits"/>.</exception>
    public static SafeTensorsFile Parse(ReadOnlyMemory<byte> bytes, string sourceName, SafeTensorsLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(sourceName);
        limits ??= SafeTensorsLimits.Default;
        if (bytes.Length > limits.MaxFileBytes)
        {
            throw Fail(sourceName, $"file is {bytes.Length} bytes, more than the limit of {limits.MaxFileBytes} bytes (MaxFileBytes)");
        }

        if (bytes.Length < PrefixBytes)
        {
            throw Fail(sourceName, $"file is {bytes.Length} bytes, shorter than the 8-byte header length prefix");
        }

        ulong declared = BinaryPrimitives.ReadUInt64LittleEndian(bytes.Span);
        int headerLength = CheckHeaderLength(declared, bytes.Length - PrefixBytes, bytes.Length, sourceName, limits);
        var parsed = HeaderParser.Parse(bytes.Span.Slice(PrefixBytes, headerLength), sourceName, limits);
        var data = bytes[(PrefixBytes + headerLength)..];
        ValidateLayout(parsed.Entries, data.Length, sourceName);

        var tensors = new List<TensorEntry>(parsed.Entries.Count);
        foreach (var entry in parsed.Entries)
        {
            tensors.Add(entry.ToTensor(data.Slice((int)entry.Begin, (int)entry.ByteCount)));
        }

        return new SafeTensorsFile(tensors, parsed.Metadata);
    }

    /// <summary>
    /// Writes <paramref name="file"/> to <paramref name="path"/> atomically: the bytes go to a temporary file in the
    /// same directory, are flushed to disk, and the temporary file then replaces <paramref name="path"/>
    /// (overwriting it). A crash leaves either the old file or the new one, never a torn file; on failure the
    /// temporary file is deleted.
    /// </summary>
    /// <exception cref="IOException">The file cannot be written or moved.</exception>
    public static void Write(string path, SafeTensorsFile file)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(file);
        string fullPath = Path.GetFullPath(path);
        string directory = Path.GetDirectoryName(fullPath) ?? throw new ArgumentException($"Path '{path}' has no directory.", nameof(path));
        string tempPath = Path.Combine(directory, $".{Path.GetFileName(fullPath)}.{Guid.NewGuid():N}.tmp");
        bool moved = false;
        try
        {
            using (var stream = new FileStream(tempPath, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 1 << 16))
            {
                Write(stream, file);
                stream.Flush(flushToDisk: true);
            }

            File.Move(tempPath, fullPath, overwrite: true);
            moved = true;
        }
        finally
        {
            if (!moved)
            {
                TryDelete(tempPath);
            }
        }
    }

    /// <summary>
    /// Writes <paramref name="file"/> to <paramref name="stream"/> (see <see cref="ToBytes(SafeTensorsFile)"/> for the layout). The
    /// stream is neither flushed nor closed.
    /// </summary>
    public static void Write(Stream stream, SafeTensorsFile file)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(file);
        byte[] header = BuildHeader(file);
        Span<byte> prefix = stackalloc byte[PrefixBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)header.Length);
        stream.Write(prefix);
        stream.Write(header);
        foreach (var tensor in file.Tensors)
        {
            stream.Write(tensor.Data.Span);
        }
    }

    /// <summary>
    /// Serializes <paramref name="file"/>. Output is deterministic: a compact JSON header with <c>__metadata__</c>
    /// first (omitted when empty; keys in ordinal order) and then the tensors in <see cref="SafeTensorsFile.Tensors"/>
    /// order, each as <c>{"dtype":..,"shape":[..],"data_offsets":[begin,end]}</c> with contiguous offsets from 0;
    /// the header is padded with spaces to a multiple of 8 bytes so the data buffer starts 8-byte aligned.
    /// </summary>
    /// <exception cref="InvalidOperationException">The result would be larger than the largest byte array.</exception>
    public static byte[] ToBytes(SafeTensorsFile file)
    {
        ArgumentNullException.ThrowIfNull(file);
        byte[] header = BuildHeader(file);
        long total = PrefixBytes + header.Length + file.TotalDataBytes;
        if (total > Array.MaxLength)
        {
            throw new InvalidOperationException($"A {total}-byte safetensors file does not fit in a byte array; write it to a stream instead.");
        }

        var result = new byte[total];
        BinaryPrimitives.WriteUInt64LittleEndian(result, (ulong)header.Length);
        header.CopyTo(result, PrefixBytes);
        int offset = PrefixBytes + header.Length;
        foreach (var tensor in file.Tensors)
        {
            tensor.Data.Span.CopyTo(result.AsSpan(offset));
            offset += tensor.Data.Length;
        }

        return result;
    }

    /// <summary>
    /// Serializes tensors whose bytes the caller writes straight into the result (<paramref name="writeData"/> is
    /// called once per tensor, in order, with its slice of the data buffer, and must fill all of it: the buffer is not
    /// zeroed first), so a model's weights are copied once
    /// instead of into entries first. The output is byte for byte what <see cref="ToBytes(SafeTensorsFile)"/> writes
    /// for the same tensors and metadata.
    /// </summary>
    /// <exception cref="ArgumentException">A name, shape or metadata entry is invalid, or two tensors share a name.</exception>
    /// <exception cref="InvalidOperationException">The result would be larger than the largest byte array.</exception>
    public static byte[] ToBytes(IReadOnlyList<TensorLayout> tensors, IReadOnlyDictionary<string, string>? metadata, TensorDataWriter writeData)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        ArgumentNullException.ThrowIfNull(writeData);
        var sortedMetadata = new SafeTensorsFile([], metadata).Metadata;
        var names = new HashSet<string>(StringComparer.Ordinal);
        var layouts = new List<(string Name, SafeTensorDType DType, IReadOnlyList<long> Shape, long ByteCount)>(tensors.Count);
        long dataBytes = 0;
        foreach (var tensor in tensors)
        {
            ArgumentNullException.ThrowIfNull(tensor, nameof(tensors));
            long bytes = TensorEntry.ValidatedByteCount(tensor.Name, tensor.DType, [.. tensor.Shape]);
            if (!names.Add(tensor.Name))
            {
                throw new ArgumentException($"Duplicate tensor name {TensorNames.Quote(tensor.Name)}.", nameof(tensors));
            }

            layouts.Add((tensor.Name, tensor.DType, tensor.Shape, bytes));
            dataBytes = checked(dataBytes + bytes);
        }

        byte[] header = BuildHeader(sortedMetadata, layouts);
        long total = PrefixBytes + header.Length + dataBytes;
        if (total > Array.MaxLength)
        {
            throw new InvalidOperationException($"A {total}-byte safetensors file does not fit in a byte array; write it to a stream instead.");
        }

        // Not zeroed: the prefix, the header and every tensor's slice are written below.
        byte[] result = GC.AllocateUninitializedArray<byte>((int)total);
        BinaryPrimitives.WriteUInt64LittleEndian(result, (ulong)header.Length);
        header.CopyTo(result, PrefixBytes);
        int offset = PrefixBytes + header.Length;
        for (int i = 0; i < layouts.Count; i++)
        {
            int length = (int)layouts[i].ByteCount;
            writeData(i, result.AsSpan(offset, length));
            offset += length;
        }

        return result;
    }

    private static byte[] BuildHeader(SafeTensorsFile file) =>
        BuildHeader(file.Metadata, file.Tensors.Select(t => (t.Name, t.DType, t.Shape, t.ByteCount)));

    private static byte[] BuildHeader(IReadOnlyDictionary<string, string> metadata, IEnumerable<(string Name, SafeTensorDType DType, IReadOnlyList<long> Shape, long ByteCount)> tensors)
    {
        var json = new StringBuilder();
        json.Append('{');
        bool first = true;
        if (metadata.Count > 0)
        {
            AppendJsonString(json, TensorNames.MetadataKey);
            json.Append(":{");
            bool firstPair = true;
            foreach (var (key, value) in metadata)
            {
                if (!firstPair)
                {
                    json.Append(',');
                }

                firstPair = false;
                AppendJsonString(json, key);
                json.Append(':');
                AppendJsonString(json, value);
            }

            json.Append('}');
            first = false;
        }

        long offset = 0;
        foreach (var tensor in tensors)
        {
            if (!first)
            {
                json.Append(',');
            }

            first = false;
            AppendJsonString(json, tensor.Name);
            json.Append(":{\"dtype\":\"").Append(SafeTensorDTypes.ToSpecString(tensor.DType)).Append("\",\"shape\":[");
            for (int i = 0; i < tensor.Shape.Count; i++)
            {
                if (i > 0)
                {
                    json.Append(',');
                }

                json.Append(tensor.Shape[i].ToString(CultureInfo.InvariantCulture));
            }

            long end = offset + tensor.ByteCount;
            json.Append(CultureInfo.InvariantCulture, $"],\"data_offsets\":[{offset},{end}]}}");
            offset = end;
        }

        json.Append('}');
        int length = s_strictUtf8.GetByteCount(json.ToString());
        int padded = checked((length + 7) & ~7);
        if (padded > SafeTensorsLimits.DefaultMaxHeaderBytes)
        {
            throw new InvalidOperationException(
                $"The header would be {padded} bytes, more than the {SafeTensorsLimits.DefaultMaxHeaderBytes} bytes readers accept.");
        }

        var bytes = new byte[padded];
        s_strictUtf8.GetBytes(json.ToString(), bytes);
        bytes.AsSpan(length).Fill((byte)' ');
        return bytes;
    }

    /// <summary>Appends a JSON string literal escaped as serde_json (and so Python's safetensors) escapes it.</summary>
    private static void AppendJsonString(StringBuilder json, string text)
    {
        json.Append('"');
        foreach (char c in text)
        {
            switch (c)
            {
                case '"':
                    json.Append("\\\"");
                    break;
                case '\\':
                    json.Append("\\\\");
                    break;
                case '\b':
                    json.Append("\\b");
                    break;
                case '\f':
                    json.Append("\\f");
                    break;
                case '\n':
                    json.Append("\\n");
                    break;
                case '\r':
                    json.Append("\\r");
                    break;
                case '\t':
                    json.Append("\\t");
                    break;
                default:
                    if (c < 0x20)
                    {
                        json.Append(CultureInfo.InvariantCulture, $"\\u{(int)c:x4}");
                    }
                    else
                    {
                        json.Append(c);
                    }

                    break;
            }
        }

        json.Append('"');
    }

    /// <summary>
    /// Checks the declared header length against the limit and, when known, the bytes that follow the prefix.
    /// </summary>
    private static int CheckHeaderLength(ulong declared, long? afterPrefix, long? fileLength, string sourceName, SafeTensorsLimits limits)
    {
        if (declared > (ulong)limits.MaxHeaderBytes)
        {
            throw Fail(sourceName, $"header length {declared} exceeds the limit of {limits.MaxHeaderBytes} bytes (MaxHeaderBytes)");
        }

        if (declared > (ulong)Array.MaxLength)
        {
            throw Fail(sourceName, $"header length {declared} is more than the largest supported header ({Array.MaxLength} bytes)");
        }

        if (afterPrefix.HasValue && declared > (ulong)afterPrefix.Value)
        {
            throw Fail(sourceName, $"header length {declared} extends past the end of the file ({fileLength} bytes)");
        }

        return (int)declared;
    }

    /// <summary>
    /// Sorts <paramref name="entries"/> by data offset and checks they tile the data buffer exactly: no overlap, no
    /// hole, nothing out of range, no unused trailing bytes. Returns the declared data length (the last end offset).
    /// </summary>
    private static long ValidateLayout(List<HeaderParser.RawEntry> entries, long? dataLength, string sourceName)
    {
        entries.Sort(static (a, b) =>
        {
            int order = a.Begin.CompareTo(b.Begin);
            if (order == 0)
            {
                order = a.End.CompareTo(b.End);
            }

            return order != 0 ? order : a.HeaderIndex.CompareTo(b.HeaderIndex);
        });

        long expected = 0;
        HeaderParser.RawEntry? previous = null;
        foreach (var entry in entries)
        {
            if (entry.End > dataLength)
            {
                throw Fail(sourceName, $"tensor {TensorNames.Quote(entry.Name)} has data_offsets [{entry.Begin},{entry.End}] out of range: the data buffer is {dataLength} bytes");
            }

            if (entry.Begin < expected)
            {
                throw Fail(sourceName, $"tensor {TensorNames.Quote(entry.Name)} data_offsets [{entry.Begin},{entry.End}] overlap tensor {TensorNames.Quote(previous!.Name)} [{previous.Begin},{previous.End}]");
            }

            if (entry.Begin > expected)
            {
                throw Fail(sourceName, $"hole of {entry.Begin - expected} unused bytes in the data buffer at offset {expected}, before tensor {TensorNames.Quote(entry.Name)}");
            }

            expected = entry.End;
            previous = entry;
        }

        if (expected < dataLength)
        {
            throw Fail(sourceName, $"{dataLength - expected} unused trailing bytes after the last tensor (data buffer is {dataLength} bytes, tensors cover {expected})");
        }

        return expected;
    }

    /// <summary>
    /// Reads exactly <paramref name="count"/> bytes. With a known length the buffer is allocated at once; otherwise it
    /// grows in step with the bytes received, so a lying header cannot force a large allocation. Returns null when the
    /// stream ends early, with <paramref name="read"/> set to the bytes that did arrive.
    /// </summary>
    private static byte[]? ReadBlock(Stream stream, int count, bool lengthKnown, out long read)
    {
        var buffer = new byte[lengthKnown ? count : Math.Min(count, GrowingReadChunk)];
        int filled = 0;
        while (true)
        {
            filled += stream.ReadAtLeast(buffer.AsSpan(filled), buffer.Length - filled, throwOnEndOfStream: false);
            if (filled < buffer.Length)
            {
                read = filled;
                return null;
            }

            if (filled == count)
            {
                read = filled;
                return buffer;
            }

            Array.Resize(ref buffer, (int)Math.Min(count, (long)buffer.Length * 2));
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
            // Best effort: the original exception matters more than a leftover temporary file.
        }
        catch (UnauthorizedAccessException)
        {
            // As above.
        }
    }

    internal static SafeTensorsFormatException Fail(string sourceName, string problem, Exception? inner = null)
        => new(sourceName, problem, inner);
}
