namespace FedRebasin.Data.Tests;

public sealed class CifarReaderTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void ReadCifar10File_SevenRows_ReturnsLabelsAndPlanes()
    {
        string path = _dir.File("data_batch_1.bin");
        byte[] bytes = TestFiles.Cifar10(7, salt: 3);
        File.WriteAllBytes(path, bytes);

        (byte[] pixels, int[] labels) = CifarReader.ReadCifar10File(path);

        Assert.Equal([3, 4, 5, 6, 7, 8, 9], labels);
        Assert.Equal(7 * 3072, pixels.Length);
        for (int i = 0; i < 7; i++)
        {
            Assert.Equal(bytes.AsSpan((i * 3073) + 1, 3072).ToArray(), pixels.AsSpan(i * 3072, 3072).ToArray());
        }
    }

    [Theory]
    [InlineData(Cifar100LabelKind.Fine)]
    [InlineData(Cifar100LabelKind.Coarse)]
    public void ReadCifar100File_SevenRows_UsesChosenLabel(Cifar100LabelKind kind)
    {
        string path = _dir.File("train.bin");
        byte[] bytes = TestFiles.Cifar100(7, salt: 15);
        File.WriteAllBytes(path, bytes);

        (byte[] pixels, int[] labels) = CifarReader.ReadCifar100File(path, kind);

        int[] expected = Enumerable.Range(0, 7)
            .Select(i => kind == Cifar100LabelKind.Coarse ? (i + 15) % 20 : ((i + 15) * 7) % 100)
            .ToArray();
        Assert.Equal(expected, labels);
        Assert.Equal(bytes.AsSpan(2 + 3074, 3072).ToArray(), pixels.AsSpan(3072, 3072).ToArray());
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void ReadFile_LengthNotMultipleOfRecord_ThrowsTruncated(bool cifar100)
    {
        string path = _dir.File("cut.bin");
        byte[] bytes = cifar100 ? TestFiles.Cifar100(3, 0) : TestFiles.Cifar10(3, 0);
        File.WriteAllBytes(path, bytes[..^100]);

        var ex = Assert.Throws<DataFormatException>(() =>
            cifar100 ? CifarReader.ReadCifar100File(path) : CifarReader.ReadCifar10File(path));

        Assert.Contains(path, ex.Message, StringComparison.Ordinal);
        Assert.Contains("truncated", ex.Message, StringComparison.Ordinal);
        Assert.Contains(cifar100 ? "3074" : "3073", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ReadCifar10File_EmptyFile_Throws()
    {
        string path = _dir.File("empty.bin");
        File.WriteAllBytes(path, []);

        var ex = Assert.Throws<DataFormatException>(() => CifarReader.ReadCifar10File(path));

        Assert.Contains(path, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ReadCifar10File_LabelOutOfRange_Throws()
    {
        string path = _dir.File("bad-label.bin");
        byte[] bytes = TestFiles.Cifar10(7, 0);
        bytes[4 * 3073] = 10;
        File.WriteAllBytes(path, bytes);

        var ex = Assert.Throws<DataFormatException>(() => CifarReader.ReadCifar10File(path));

        Assert.Contains(path, ex.Message, StringComparison.Ordinal);
        Assert.Contains("record 4 has label 10", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0, 20, "coarse label 20")]
    [InlineData(1, 100, "fine label 100")]
    public void ReadCifar100File_LabelOutOfRange_Throws(int labelByte, byte value, string expected)
    {
        string path = _dir.File("bad-label-100.bin");
        byte[] bytes = TestFiles.Cifar100(7, 0);
        bytes[(2 * 3074) + labelByte] = value;
        File.WriteAllBytes(path, bytes);

        var ex = Assert.Throws<DataFormatException>(() => CifarReader.ReadCifar100File(path));

        Assert.Contains(path, ex.Message, StringComparison.Ordinal);
        Assert.Contains("record 2 has " + expected, ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void LoadCifar10_DirectoryOrArchiveFolder_ConcatenatesBatchesInOrder(bool nested)
    {
        string dir = nested ? _dir.SubDir(CifarReader.Cifar10FolderName) : _dir.Path;
        for (int b = 1; b <= 5; b++)
        {
            File.WriteAllBytes(Path.Combine(dir, $"data_batch_{b}.bin"), TestFiles.Cifar10(b, salt: b));
        }

        File.WriteAllBytes(Path.Combine(dir, "test_batch.bin"), TestFiles.Cifar10(7, salt: 0));

        ImageDataset train = CifarReader.LoadCifar10(_dir.Path, DataSplit.Train);
        ImageDataset test = CifarReader.LoadCifar10(_dir.Path, DataSplit.Test);

        Assert.Equal(1 + 2 + 3 + 4 + 5, train.Count);
        Assert.Equal((3, 32, 32, 10), (train.Channels, train.Height, train.Width, train.ClassCount));
        Assert.Equal([1, 2, 3, 3, 4, 5], train.Labels[..6]);
        Assert.Equal(TestFiles.Pattern(3072, 5), train.Pixels.AsSpan(5 * 3072, 3072).ToArray());
        Assert.Equal(7, test.Count);
        Assert.Equal([0.4914f, 0.4822f, 0.4465f], train.Mean);
    }

    [Fact]
    public void LoadCifar10_MissingBatch_ThrowsDatasetNotFoundWithOneLineHint()
    {
        for (int b = 1; b <= 4; b++)
        {
            File.WriteAllBytes(_dir.File($"data_batch_{b}.bin"), TestFiles.Cifar10(1, b));
        }

        var ex = Assert.Throws<DatasetNotFoundException>(() => CifarReader.LoadCifar10(_dir.Path, DataSplit.Train));

        Assert.DoesNotContain('\n', ex.Message);
        Assert.Contains(_dir.Path, ex.Message, StringComparison.Ordinal);
        Assert.Contains(DatasetCatalog.Cifar10Url, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void LoadCifar100_CoarseLabels_HasTwentyClasses()
    {
        string dir = _dir.SubDir(CifarReader.Cifar100FolderName);
        File.WriteAllBytes(Path.Combine(dir, "test.bin"), TestFiles.Cifar100(7, salt: 2));

        ImageDataset fine = CifarReader.LoadCifar100(_dir.Path, DataSplit.Test);
        ImageDataset coarse = CifarReader.LoadCifar100(_dir.Path, DataSplit.Test, Cifar100LabelKind.Coarse);

        Assert.Equal(100, fine.ClassCount);
        Assert.Equal(20, coarse.ClassCount);
        Assert.Equal(Enumerable.Range(2, 7).Select(i => i % 20), coarse.Labels);
        Assert.Equal([0.5071f, 0.4865f, 0.4409f], fine.Mean);
    }
}
