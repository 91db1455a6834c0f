using System.Buffers.Binary;
using System.Globalization;
using System.IO.Compression;

namespace FedRebasin.Data;

/// <summary>
/// Reads the IDX format used by MNIST and Fashion-MNIST: a big-endian magic <c>00 00 TT DD</c>
/// (TT = element type, only 0x08 unsigned byte is supported; DD = number of dimensions), then DD big-endian int32
/// sizes, then the data. Files may be gzip-compressed; compression is detected from the gzip magic bytes
/// (0x1f 0x8b), not from the file name. Every problem is reported as a <see cref="DataFormatException"/> naming the file.
/// </summary>
public static class IdxReader
{
    /// <summary>Magic number of an IDX image file (unsigned bytes, 3 dimensions: count, rows, columns).</summary>
    public const int ImagesMagic = 0x00000803;

    /// <summary>Magic number of an IDX label file (unsigned bytes, 1 dimension: count).</summary>
    public const int LabelsMagic = 0x00000801;

    /// <summary>The only supported IDX element type code: unsigned byte.</summary>
    public const byte UnsignedByteTypeCode = 0x08;

    /// <summary>
    /// Largest data payload (in bytes) a header may announce; anything larger is rejected before allocating,
    /// so a corrupt header cannot trigger a huge allocation. 1 GiB, about 20 times MNIST's training images.
    /// </summary>
    public const long MaxDataBytes = 1L << 30;

    /// <summary>
    /// Reads an IDX image file (magic <see cref="ImagesMagic"/>), raw or gzip-compressed.
    /// </summary>
    /// <returns>The image count, rows, columns and <c>Count * Rows * Cols</c> pixel bytes in row-major order.</returns>
    /// <exception cref="DataFormatException">Wrong magic, unsupported type, bad dimensions, truncated data, trailing bytes or corrupt gzip.</exception>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    public static (int Count, int Rows, int Cols, byte[] Pixels) ReadImages(string path)
    {
        (int[] dims, byte[] data) = Read(path, expectedDims: 3, expectedMagic: ImagesMagic, kind: "image");
        return (dims[0], dims[1], dims[2], data);
    }

    /// <summary>Reads an IDX label file (magic <see cref="LabelsMagic"/>), raw or gzip-compressed.</summary>
    /// <returns>One byte per label.</returns>
    /// <exception cref="DataFormatException">Wrong magic, unsupported type, bad dimensions, truncated data, trailing bytes or corrupt gzip.</exception>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    public static byte[] ReadLabels(string path)
    {
        (_, byte[] data) = Read(path, expectedDims: 1, expectedMagic: LabelsMagic, kind: "label");
        return data;
    }

    /// <summary>
    /// Reads an IDX label file and checks that every label is in <c>[0, classCount)</c>.
    /// </summary>
    /// <exception cref="DataFormatException">As <see cref="ReadLabels(string)"/>, or a label is out of range.</exception>
    public static byte[] ReadLabels(string path, int classCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(classCount);
        byte[] labels = ReadLabels(path);
        for (int i = 0; i < labels.Length; i++)
        {
            if (labels[i] >= classCount)
            {
                throw new DataFormatException(
                    path,
                    string.Create(CultureInfo.InvariantCulture, $"label {labels[i]} at position {i} is out of range 0..{classCount - 1}"),
                    null);
            }
        }

        return labels;
    }

    /// <summary>
    /// Loads a pair of IDX files (images and labels) as a single-channel <see cref="ImageDataset"/>.
    /// Normalisation constants are the published ones when <paramref name="name"/> is a known dataset
    /// (see <see cref="DatasetNormalization.TryGetKnown"/>), otherwise computed from the pixels.
    /// </summary>
    /// <exception cref="DataFormatException">Either file is invalid, a label is out of range, or the image and label counts differ (the message gives both counts and both files).</exception>
    public static ImageDataset LoadIdxPair(string imagesPath, string labelsPath, string name, int classCount)
    {
        ArgumentNullException.ThrowIfNull(imagesPath);
        ArgumentNullException.ThrowIfNull(labelsPath);
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(classCount);

        (int count, int rows, int cols, byte[] pixels) = ReadImages(imagesPath);
        byte[] labelBytes = ReadLabels(labelsPath, classCount);
        if (labelBytes.Length != count)
        {
            throw new DataFormatException(
                string.Create(
                    CultureInfo.InvariantCulture,
                    $"{imagesPath} holds {count} images but {labelsPath} holds {labelBytes.Length} labels; the counts must match."));
        }

        int[] labels = new int[labelBytes.Length];
        for (int i = 0; i < labels.Length; i++)
        {
            labels[i] = labelBytes[i];
        }

        if (!DatasetNormalization.TryGetKnown(name, out float[]? mean, out float[]? std))
        {
            (mean, std) = DatasetNormalization.Compute(pixels, 1, rows * cols);
        }

        return new ImageDataset(name, 1, rows, cols, classCount, pixels, labels, mean, std);
    }

    private static (int[] Dims, byte[] Data) Read(string path, int expectedDims, int expectedMagic, string kind)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        using FileStream file = File.OpenRead(path);
        Span<byte> peek = stackalloc byte[2];
        int peeked = file.ReadAtLeast(peek, 2, throwOnEndOfStream: false);
        file.Position = 0;
        bool gzip = peeked == 2 && peek[0] == 0x1f && peek[1] == 0x8b;
        using Stream stream = gzip ? new GZipStream(file, CompressionMode.Decompress) : file;
        try
        {
            return ReadFrom(stream, path, expectedDims, expectedMagic, kind, gzip);
        }
        catch (InvalidDataException ex)
        {
            throw new DataFormatException(path, "corrupt gzip data (" + ex.Message + ")", ex);
        }
    }

    private static (int[] Dims, byte[] Data) ReadFrom(Stream stream, string path, int expectedDims, int expectedMagic, string kind, bool gzip)
    {
        string what = gzip ? "decompressed data" : "file";
        Span<byte> header = stackalloc byte[4];
        int got = stream.ReadAtLeast(header, 4, throwOnEndOfStream: false);
        if (got < 4)
        {
            throw new DataFormatException(
                path,
                string.Create(CultureInfo.InvariantCulture, $"{what} is only {got} bytes long, too short for an IDX header"),
                null);
        }

        int magic = BinaryPrimitives.ReadInt32BigEndian(header);
        if (header[0] != 0 || header[1] != 0)
        {
            throw new DataFormatException(
                path,
                string.Create(CultureInfo.InvariantCulture, $"wrong magic number 0x{magic:X8}: not an IDX file (expected 0x{expectedMagic:X8} for an IDX {kind} file)"),
                null);
        }

        if (header[2] != UnsignedByteTypeCode)
        {
            throw new DataFormatException(
                path,
                string.Create(CultureInfo.InvariantCulture, $"unsupported IDX type code 0x{header[2]:X2} (magic 0x{magic:X8}); only 0x08 (unsigned byte) is supported"),
                null);
        }

        if (header[3] != expectedDims)
        {
            throw new DataFormatException(
                path,
                string.Create(CultureInfo.InvariantCulture, $"wrong magic number 0x{magic:X8}: an IDX {kind} file has {expectedDims} dimension(s) (magic 0x{expectedMagic:X8}), this one has {header[3]}"),
                null);
        }

        Span<byte> dimBytes = stackalloc byte[4 * expectedDims];
        got = stream.ReadAtLeast(dimBytes, dimBytes.Length, throwOnEndOfStream: false);
        if (got < dimBytes.Length)
        {
            throw new DataFormatException(path, $"truncated: {what} ends inside the IDX header", null);
        }

        var dims = new int[expectedDims];
        long total = 1;
        for (int d = 0; d < expectedDims; d++)
        {
            dims[d] = BinaryPrimitives.ReadInt32BigEndian(dimBytes.Slice(4 * d, 4));
            if (dims[d] <= 0)
            {
                throw new DataFormatException(
                    path,
                    string.Create(CultureInfo.InvariantCulture, $"dimension {d} is {dims[d]}; IDX dimensions must be positive"),
                    null);
            }

            total *= dims[d];
            if (total > MaxDataBytes)
            {
                throw new DataFormatException(
                    path,
                    string.Create(CultureInfo.InvariantCulture, $"dimensions [{string.Join(", ", dims[..(d + 1)])}...] announce more than the {MaxDataBytes}-byte limit (IdxReader.MaxDataBytes); the header is probably corrupt"),
                    null);
            }
        }

        var data = new byte[total];
        got = stream.ReadAtLeast(data, data.Length, throwOnEndOfStream: false);
        if (got < data.Length)
        {
            throw new DataFormatException(
                path,
                string.Create(CultureInfo.InvariantCulture, $"truncated: dimensions [{string.Join(", ", dims)}] need {total} data bytes but the {what} has only {got}"),
                null);
        }

        // Reading to the end also makes GZipStream verify the gzip CRC and length trailer.
        Span<byte> extra = stackalloc byte[256];
        long trailing = 0;
        int n;
        while ((n = stream.Read(extra)) > 0)
        {
            trailing += n;
            if (trailing > MaxDataBytes)
            {
                break;
            }
        }

        if (trailing > 0)
        {
            throw new DataFormatException(
                path,
                string.Create(CultureInfo.InvariantCulture, $"{trailing}{(trailing > MaxDataBytes ? "+" : string.Empty)} unexpected trailing bytes after the {total} data bytes announced by dimensions [{string.Join(", ", dims)}]"),
                null);
        }

        return (dims, data);
    }
}
