using System.Text;
using System.Text.Json;
using System.Text.Unicode;

namespace FedRebasin.Tensors;

/// <summary>
/// Parses and validates a safetensors JSON header with <see cref="Utf8JsonReader"/>, so duplicate keys, wrong
/// types and unknown fields are all caught (a DOM would silently keep one of two duplicate keys).
/// </summary>
internal static class HeaderParser
{
    // Root object, entry object, shape array: depth 3. One spare level so the reader reports deeper nesting as a
    // type error from our checks rather than as a depth error.
    private const int MaxJsonDepth = 4;

    /// <summary>A validated header entry whose offsets are not yet checked against the other entries.</summary>
    internal sealed record RawEntry(string Name, SafeTensorDType DType, long[] Shape, long ElementCount, long ByteCount, long Begin, long End, int HeaderIndex)
    {
        public TensorEntry ToTensor(ReadOnlyMemory<byte> data) => TensorEntry.CreateTrusted(Name, DType, Shape, ElementCount, data);
    }

    internal sealed record ParsedHeader(Dictionary<string, string> Metadata, List<RawEntry> Entries);

    public static ParsedHeader Parse(ReadOnlySpan<byte> header, string sourceName, SafeTensorsLimits limits)
    {
        if (!Utf8.IsValid(header))
        {
            throw Fail(sourceName, "header is not valid UTF-8");
        }

        if (header.IsEmpty || header[0] != (byte)'{')
        {
            throw Fail(sourceName, "header must be a JSON object starting with '{'");
        }

        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        var entries = new List<RawEntry>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        bool sawMetadata = false;
        var reader = new Utf8JsonReader(header, new JsonReaderOptions { MaxDepth = MaxJsonDepth });
        try
        {
            reader.Read();
            while (Next(ref reader) != JsonTokenType.EndObject)
            {
                string key = reader.GetString()!;
                if (key == TensorNames.MetadataKey)
                {
                    if (sawMetadata)
                    {
                        throw Fail(sourceName, "duplicate key '__metadata__' in header");
                    }

                    sawMetadata = true;
                    ParseMetadata(ref reader, metadata, sourceName);
                    continue;
                }

                string? problem = TensorNames.Problem(key);
                if (problem is not null)
                {
                    throw Fail(sourceName, problem);
                }

                if (!names.Add(key))
                {
                    throw Fail(sourceName, $"duplicate tensor name {TensorNames.Quote(key)}");
                }

                if (entries.Count >= limits.MaxTensorCount)
                {
                    throw Fail(sourceName, $"header declares more than {limits.MaxTensorCount} tensors (MaxTensorCount)");
                }

                entries.Add(ParseEntry(ref reader, key, entries.Count, sourceName, limits));
            }

            if (reader.Read())
            {
                throw Fail(sourceName, "header has content after the top-level JSON object");
            }
        }
        catch (JsonException ex)
        {
            throw Fail(sourceName, $"header is not valid JSON: {ex.Message}", ex);
        }
        catch (InvalidOperationException ex)
        {
            throw Fail(sourceName, $"header is not valid JSON: {ex.Message}", ex);
        }

        return new ParsedHeader(metadata, entries);
    }

    private static void ParseMetadata(ref Utf8JsonReader reader, Dictionary<string, string> metadata, string sourceName)
    {
        if (Next(ref reader) != JsonTokenType.StartObject)
        {
            throw Fail(sourceName, $"__metadata__ must be a JSON object of string values, found {Describe(ref reader)}");
        }

        while (Next(ref reader) != JsonTokenType.EndObject)
        {
            string key = reader.GetString()!;
            if (Next(ref reader) != JsonTokenType.String)
            {
                throw Fail(sourceName, $"__metadata__ value for key {TensorNames.Quote(key)} must be a string, found {Describe(ref reader)}");
            }

            if (!metadata.TryAdd(key, reader.GetString()!))
            {
                throw Fail(sourceName, $"duplicate __metadata__ key {TensorNames.Quote(key)}");
            }
        }
    }

    private static RawEntry ParseEntry(ref Utf8JsonReader reader, string name, int headerIndex, string sourceName, SafeTensorsLimits limits)
    {
        string tensor = $"tensor {TensorNames.Quote(name)}";
        if (Next(ref reader) != JsonTokenType.StartObject)
        {
            throw Fail(sourceName, $"{tensor}: entry must be a JSON object, found {Describe(ref reader)}");
        }

        string? dtypeText = null;
        List<long>? shape = null;
        long[]? offsets = null;
        while (Next(ref reader) != JsonTokenType.EndObject)
        {
            string field = reader.GetString()!;
            switch (field)
            {
                case "dtype":
                    EnsureFirst(dtypeText is null, tensor, field, sourceName);
                    if (Next(ref reader) != JsonTokenType.String)
                    {
                        throw Fail(sourceName, $"{tensor}: field 'dtype' must be a string, found {Describe(ref reader)}");
                    }

                    dtypeText = reader.GetString()!;
                    break;
                case "shape":
                    EnsureFirst(shape is null, tensor, field, sourceName);
                    shape = ReadIntegerArray(ref reader, tensor, "shape", "must be an array of non-negative integers", limits.MaxDimensions, sourceName);
                    if (shape.Count > limits.MaxDimensions)
                    {
                        throw Fail(sourceName, $"{tensor}: shape has more than {limits.MaxDimensions} dimensions (MaxDimensions)");
                    }

                    break;
                case "data_offsets":
                    EnsureFirst(offsets is null, tensor, field, sourceName);
                    var list = ReadIntegerArray(ref reader, tensor, "data_offsets", "must be an array of 2 non-negative integers", 2, sourceName);
                    if (list.Count != 2)
                    {
                        throw Fail(sourceName, $"{tensor}: field 'data_offsets' must be an array of 2 non-negative integers, found {list.Count} values");
                    }

                    offsets = [list[0], list[1]];
                    break;
                default:
                    throw Fail(sourceName, $"{tensor}: unknown field {TensorNames.Quote(field)} (expected dtype, shape, data_offsets)");
            }
        }

        if (dtypeText is null)
        {
            throw Fail(sourceName, $"{tensor}: missing field 'dtype'");
        }

        if (shape is null)
        {
            throw Fail(sourceName, $"{tensor}: missing field 'shape'");
        }

        if (offsets is null)
        {
            throw Fail(sourceName, $"{tensor}: missing field 'data_offsets'");
        }

        if (!SafeTensorDTypes.TryParse(dtypeText, out var dtype))
        {
            throw Fail(sourceName, $"{tensor}: unknown dtype {TensorNames.Quote(dtypeText)}");
        }

        long[] dims = [.. shape];
        string shapeText = TensorShape.Format(dims);
        if (!TensorShape.TryGetElementCount(dims, out long count))
        {
            throw Fail(sourceName, $"{tensor}: shape {shapeText} has more elements than fit in a 64-bit integer (overflow)");
        }

        if (!TensorShape.TryGetByteCount(count, dtype, out long bytes))
        {
            throw Fail(sourceName, $"{tensor}: shape {shapeText} of {dtypeText} needs more bytes than fit in a 64-bit integer (overflow)");
        }

        long begin = offsets[0];
        long end = offsets[1];
        if (begin > end)
        {
            throw Fail(sourceName, $"{tensor}: data_offsets [{begin},{end}] have begin greater than end");
        }

        if (end - begin != bytes)
        {
            throw Fail(sourceName, $"{tensor} has shape {shapeText} ({count} elements of {dtypeText} = {bytes} bytes) but data_offsets span {end - begin} bytes");
        }

        return new RawEntry(name, dtype, dims, count, bytes, begin, end, headerIndex);
    }

    /// <summary>
    /// Reads a JSON array of non-negative 64-bit integers. Stops (returning <paramref name="maxCount"/> + 1 values)
    /// as soon as the array is longer than <paramref name="maxCount"/>, so a huge array costs nothing.
    /// </summary>
    private static List<long> ReadIntegerArray(ref Utf8JsonReader reader, string tensor, string field, string rule, int maxCount, string sourceName)
    {
        if (Next(ref reader) != JsonTokenType.StartArray)
        {
            throw Fail(sourceName, $"{tensor}: field '{field}' {rule}, found {Describe(ref reader)}");
        }

        var values = new List<long>();
        while (Next(ref reader) != JsonTokenType.EndArray)
        {
            if (reader.TokenType != JsonTokenType.Number || !reader.TryGetInt64(out long value) || value < 0)
            {
                throw Fail(sourceName, $"{tensor}: field '{field}' {rule}; {Describe(ref reader)} is not a non-negative integer");
            }

            values.Add(value);
            if (values.Count > maxCount)
            {
                break;
            }
        }

        return values;
    }

    private static void EnsureFirst(bool first, string tensor, string field, string sourceName)
    {
        if (!first)
        {
            throw Fail(sourceName, $"{tensor}: duplicate field '{field}'");
        }
    }

    private static JsonTokenType Next(ref Utf8JsonReader reader)
    {
        if (!reader.Read())
        {
            throw new JsonException("Unexpected end of the header.");
        }

        return reader.TokenType;
    }

    /// <summary>A short description of the current token for error messages, for example <c>number 1.5</c>.</summary>
    private static string Describe(ref Utf8JsonReader reader)
    {
        const int MaxShown = 40;
        switch (reader.TokenType)
        {
            case JsonTokenType.Number:
                string text = Encoding.UTF8.GetString(reader.ValueSpan[..Math.Min(reader.ValueSpan.Length, MaxShown)]);
                return reader.ValueSpan.Length > MaxShown ? $"number {text}..." : $"number {text}";
            case JsonTokenType.String:
                return "a string";
            case JsonTokenType.True:
            case JsonTokenType.False:
                return "a boolean";
            case JsonTokenType.Null:
                return "null";
            case JsonTokenType.StartObject:
                return "an object";
            case JsonTokenType.StartArray:
                return "an array";
            default:
                return reader.TokenType.ToString();
        }
    }

    private static SafeTensorsFormatException Fail(string sourceName, string problem, Exception? inner = null)
        => SafeTensors.Fail(sourceName, problem, inner);
}
