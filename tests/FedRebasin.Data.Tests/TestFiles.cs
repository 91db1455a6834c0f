using System.Buffers.Binary;
using System.IO.Compression;

namespace FedRebasin.Data.Tests;

/// <summary>A temporary directory deleted on dispose, plus writers for the binary formats under test.</summary>
internal sealed class TempDir : IDisposable
{
    public TempDir()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "fedrebasin-data-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public string SubDir(string name)
    {
        string dir = System.IO.Path.Combine(Path, name);
        Directory.CreateDirectory(dir);
        return dir;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

internal static class TestFiles
{
    public static byte[] Gzip(byte[] data)
    {
        using var output = new MemoryStream();
        using (var gz = new GZipStream(output, CompressionLevel.Fastest, leaveOpen: true))
        {
            gz.Write(data);
        }

        return output.ToArray();
    }

    /// <summary>IDX bytes: 00 00 typeCode dims.Length, big-endian dims, then data.</summary>
    public static byte[] Idx(byte typeCode, int[] dims, byte[] data)
    {
        var bytes = new byte[4 + (4 * dims.Length) + data.Length];
        bytes[2] = typeCode;
        bytes[3] = (byte)dims.Length;
        for (int d = 0; d < dims.Length; d++)
        {
            BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(4 + (4 * d)), dims[d]);
        }

        data.CopyTo(bytes, 4 + (4 * dims.Length));
        return bytes;
    }

    public static byte[] IdxImages(int count, int rows, int cols, byte[] pixels) => Idx(0x08, [count, rows, cols], pixels);

    public static byte[] IdxLabels(byte[] labels) => Idx(0x08, [labels.Length], labels);

    public static void Write(string path, byte[] bytes, bool gzip) => System.IO.File.WriteAllBytes(path, gzip ? Gzip(bytes) : bytes);

    public static byte[] Pattern(int length, int salt)
    {
        var bytes = new byte[length];
        for (int i = 0; i < length; i++)
        {
            bytes[i] = (byte)((i * 31) + (salt * 7) + (i >> 8));
        }

        return bytes;
    }

    /// <summary>Writes an IDX Fashion-MNIST-style pair (images then labels) with the given names.</summary>
    public static (byte[] Pixels, byte[] Labels) WriteIdxPair(string imagesPath, string labelsPath, int count, int rows, int cols, int classCount, bool gzip, int salt = 0)
    {
        byte[] pixels = Pattern(count * rows * cols, salt);
        byte[] labels = new byte[count];
        for (int i = 0; i < count; i++)
        {
            labels[i] = (byte)((i + salt) % classCount);
        }

        Write(imagesPath, IdxImages(count, rows, cols, pixels), gzip);
        Write(labelsPath, IdxLabels(labels), gzip);
        return (pixels, labels);
    }

    /// <summary>CIFAR records: labelBytes label bytes each, then 3072 pixel bytes.</summary>
    public static byte[] CifarRecords(byte[][] labelsPerRecord, int salt)
    {
        int labelBytes = labelsPerRecord[0].Length;
        int record = labelBytes + 3072;
        var bytes = new byte[labelsPerRecord.Length * record];
        for (int i = 0; i < labelsPerRecord.Length; i++)
        {
            labelsPerRecord[i].CopyTo(bytes, i * record);
            Pattern(3072, salt + i).CopyTo(bytes, (i * record) + labelBytes);
        }

        return bytes;
    }

    public static byte[] Cifar10(int rows, int salt) =>
        CifarRecords(Enumerable.Range(0, rows).Select(i => new[] { (byte)((i + salt) % 10) }).ToArray(), salt);

    public static byte[] Cifar100(int rows, int salt) =>
        CifarRecords(Enumerable.Range(0, rows).Select(i => new[] { (byte)((i + salt) % 20), (byte)(((i + salt) * 7) % 100) }).ToArray(), salt);
}
