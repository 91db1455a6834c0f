using System.Globalization;

namespace FedRebasin.Data;

/// <summary>Which CIFAR-100 label to use.</summary>
public enum Cifar100LabelKind
{
    /// <summary>The fine label: 100 classes (the usual choice).</summary>
    Fine,

    /// <summary>The coarse (superclass) label: 20 classes.</summary>
    Coarse,
}

/// <summary>
/// Reads the CIFAR-10 and CIFAR-100 binary versions. A CIFAR-10 record is 1 label byte followed by 3072 pixel bytes
/// (1024 red, 1024 green, 1024 blue, each a 32x32 row-major plane), so images come out in CHW order directly.
/// A CIFAR-100 record has 2 label bytes (coarse, fine) before the same 3072 pixel bytes.
/// </summary>
public static class CifarReader
{
    /// <summary>Image side length in pixels.</summary>
    public const int ImageSize = 32;

    /// <summary>Colour channels per image.</summary>
    public const int ChannelCount = 3;

    /// <summary>Pixel bytes per image: 3 x 32 x 32.</summary>
    public const int ImageBytes = ChannelCount * ImageSize * ImageSize;

    /// <summary>Bytes per CIFAR-10 record (1 label + 3072 pixels).</summary>
    public const int Cifar10RecordBytes = 1 + ImageBytes;

    /// <summary>Bytes per CIFAR-100 record (coarse label + fine label + 3072 pixels).</summary>
    public const int Cifar100RecordBytes = 2 + ImageBytes;

    /// <summary>Number of CIFAR-100 coarse classes.</summary>
    public const int Cifar100CoarseClasses = 20;

    /// <summary>Largest file accepted, guarding the allocation (1 GiB; the real files are about 150 MB at most).</summary>
    public const long MaxFileBytes = 1L << 30;

    /// <summary>CIFAR-10 training files, in the order they are concatenated.</summary>
    public static IReadOnlyList<string> Cifar10TrainFiles { get; } =
        ["data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"];

    /// <summary>CIFAR-10 test files.</summary>
    public static IReadOnlyList<string> Cifar10TestFiles { get; } = ["test_batch.bin"];

    /// <summary>CIFAR-100 training files.</summary>
    public static IReadOnlyList<string> Cifar100TrainFiles { get; } = ["train.bin"];

    /// <summary>CIFAR-100 test files.</summary>
    public static IReadOnlyList<string> Cifar100TestFiles { get; } = ["test.bin"];

    /// <summary>Folder name inside the official CIFAR-10 binary archive.</summary>
    public const string Cifar10FolderName = "cifar-10-batches-bin";

    /// <summary>Folder name inside the official CIFAR-100 binary archive.</summary>
    public const string Cifar100FolderName = "cifar-100-binary";

    /// <summary>Reads one CIFAR-10 binary file.</summary>
    /// <returns>Labels in <c>[0, 10)</c> and <c>Labels.Length * 3072</c> pixel bytes in NCHW order.</returns>
    /// <exception cref="DataFormatException">Length not a positive multiple of 3073 bytes, or a label above 9.</exception>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    public static (byte[] Pixels, int[] Labels) ReadCifar10File(string path) =>
        ReadFile(path, labelBytes: 1, labelIndex: 0, classCount: 10, "CIFAR-10");

    /// <summary>Reads one CIFAR-100 binary file, keeping the fine (100 classes) or coarse (20 classes) label.</summary>
    /// <returns>Labels and <c>Labels.Length * 3072</c> pixel bytes in NCHW order.</returns>
    /// <exception cref="DataFormatException">Length not a positive multiple of 3074 bytes, a coarse label above 19 or a fine label above 99.</exception>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    public static (byte[] Pixels, int[] Labels) ReadCifar100File(string path, Cifar100LabelKind labelKind = Cifar100LabelKind.Fine) =>
        labelKind == Cifar100LabelKind.Coarse
            ? ReadFile(path, labelBytes: 2, labelIndex: 0, classCount: Cifar100CoarseClasses, "CIFAR-100")
            : ReadFile(path, labelBytes: 2, labelIndex: 1, classCount: 100, "CIFAR-100");

    /// <summary>
    /// Loads a CIFAR-10 split from <paramref name="directory"/>, which may hold the <c>.bin</c> files directly or
    /// contain a <c>cifar-10-batches-bin</c> folder. Uses the published CIFAR-10 normalisation constants.
    /// </summary>
    /// <exception cref="DatasetNotFoundException">A required file is missing (one-line message with what to do).</exception>
    /// <exception cref="DataFormatException">A file is invalid.</exception>
    public static ImageDataset LoadCifar10(string directory, DataSplit split)
    {
        IReadOnlyList<string> files = split == DataSplit.Train ? Cifar10TrainFiles : Cifar10TestFiles;
        ArgumentException.ThrowIfNullOrEmpty(directory);
        string dir = FindDirectory(directory, Cifar10FolderName, files)
            ?? throw DatasetCatalog.NotFound("cifar10", [directory]);
        return LoadFiles(files.Select(f => Path.Combine(dir, f)).ToList(), isCifar100: false, Cifar100LabelKind.Fine, "cifar10");
    }

    /// <summary>
    /// Loads a CIFAR-100 split from <paramref name="directory"/>, which may hold <c>train.bin</c>/<c>test.bin</c>
    /// directly or contain a <c>cifar-100-binary</c> folder. Uses the published CIFAR-100 normalisation constants.
    /// </summary>
    /// <exception cref="DatasetNotFoundException">A required file is missing (one-line message with what to do).</exception>
    /// <exception cref="DataFormatException">A file is invalid.</exception>
    public static ImageDataset LoadCifar100(string directory, DataSplit split, Cifar100LabelKind labelKind = Cifar100LabelKind.Fine)
    {
        IReadOnlyList<string> files = split == DataSplit.Train ? Cifar100TrainFiles : Cifar100TestFiles;
        ArgumentException.ThrowIfNullOrEmpty(directory);
        string dir = FindDirectory(directory, Cifar100FolderName, files)
            ?? throw DatasetCatalog.NotFound("cifar100", [directory]);
        return LoadFiles(files.Select(f => Path.Combine(dir, f)).ToList(), isCifar100: true, labelKind, "cifar100");
    }

    /// <summary>
    /// Reads and concatenates CIFAR binary files (in the given order) into one dataset named <paramref name="name"/>
    /// with the published normalisation constants of CIFAR-10 or CIFAR-100.
    /// </summary>
    /// <exception cref="DataFormatException">A file is invalid.</exception>
    /// <exception cref="FileNotFoundException">A file does not exist.</exception>
    public static ImageDataset LoadFiles(IReadOnlyList<string> files, bool isCifar100, Cifar100LabelKind labelKind, string name)
    {
        ArgumentNullException.ThrowIfNull(files);
        ArgumentOutOfRangeException.ThrowIfZero(files.Count);
        var parts = new List<(byte[] Pixels, int[] Labels)>(files.Count);
        long total = 0;
        foreach (string file in files)
        {
            var part = isCifar100 ? ReadCifar100File(file, labelKind) : ReadCifar10File(file);
            total += part.Labels.Length;
            if (total * ImageBytes > int.MaxValue)
            {
                throw new DataFormatException(file, "together with the previous files this is more data than one dataset can hold", null);
            }

            parts.Add(part);
        }

        byte[] pixels = new byte[total * ImageBytes];
        int[] labels = new int[total];
        int at = 0;
        foreach ((byte[] p, int[] l) in parts)
        {
            p.CopyTo(pixels, (long)at * ImageBytes);
            l.CopyTo(labels, at);
            at += l.Length;
        }

        int classCount = !isCifar100 ? 10 : labelKind == Cifar100LabelKind.Coarse ? Cifar100CoarseClasses : 100;
        DatasetNormalization.TryGetKnown(isCifar100 ? "cifar100" : "cifar10", out float[]? mean, out float[]? std);
        return new ImageDataset(name, ChannelCount, ImageSize, ImageSize, classCount, pixels, labels, mean!, std!);
    }

    internal static string? FindDirectory(string directory, string archiveFolder, IReadOnlyList<string> files)
    {
        foreach (string candidate in new[] { directory, Path.Combine(directory, archiveFolder) })
        {
            if (files.All(f => File.Exists(Path.Combine(candidate, f))))
            {
                return candidate;
            }
        }

        return null;
    }

    private static (byte[] Pixels, int[] Labels) ReadFile(string path, int labelBytes, int labelIndex, int classCount, string format)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        int recordBytes = labelBytes + ImageBytes;
        using FileStream stream = File.OpenRead(path);
        long length = stream.Length;
        if (length == 0 || length % recordBytes != 0)
        {
            throw new DataFormatException(
                path,
                string.Create(
                    CultureInfo.InvariantCulture,
                    $"file length {length} is not a positive multiple of the {recordBytes}-byte {format} record ({length / recordBytes} whole records + {length % recordBytes} bytes); the file is truncated or not {format} binary"),
                null);
        }

        if (length > MaxFileBytes)
        {
            throw new DataFormatException(
                path,
                string.Create(CultureInfo.InvariantCulture, $"file length {length} exceeds the {MaxFileBytes}-byte limit (CifarReader.MaxFileBytes)"),
                null);
        }

        int count = (int)(length / recordBytes);
        byte[] pixels = new byte[(long)count * ImageBytes];
        int[] labels = new int[count];
        byte[] record = new byte[recordBytes];
        for (int i = 0; i < count; i++)
        {
            int got = stream.ReadAtLeast(record, recordBytes, throwOnEndOfStream: false);
            if (got < recordBytes)
            {
                throw new DataFormatException(
                    path,
                    string.Create(CultureInfo.InvariantCulture, $"truncated: file ended inside record {i}"),
                    null);
            }

            for (int b = 0; b < labelBytes; b++)
            {
                int limit = labelBytes == 1 ? classCount : b == 0 ? Cifar100CoarseClasses : 100;
                if (record[b] >= limit)
                {
                    string which = labelBytes == 1 ? "label" : b == 0 ? "coarse label" : "fine label";
                    throw new DataFormatException(
                        path,
                        string.Create(CultureInfo.InvariantCulture, $"record {i} has {which} {record[b]}, outside 0..{limit - 1}"),
                        null);
                }
            }

            labels[i] = record[labelIndex];
            record.AsSpan(labelBytes).CopyTo(pixels.AsSpan(i * ImageBytes, ImageBytes));
        }

        return (pixels, labels);
    }
}
