using FedRebasin.Tests.Shared;

namespace FedRebasin.Data.Tests;

public sealed class DatasetCatalogTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static void WriteFashion(string dir, bool gzip, int trainCount = 12, int testCount = 5)
    {
        string ext = gzip ? ".gz" : string.Empty;
        TestFiles.WriteIdxPair(Path.Combine(dir, "train-images-idx3-ubyte" + ext), Path.Combine(dir, "train-labels-idx1-ubyte" + ext), trainCount, 28, 28, 10, gzip, salt: 1);
        TestFiles.WriteIdxPair(Path.Combine(dir, "t10k-images-idx3-ubyte" + ext), Path.Combine(dir, "t10k-labels-idx1-ubyte" + ext), testCount, 28, 28, 10, gzip, salt: 2);
    }

    [Fact]
    public void Load_FashionMnistFilesInDataDir_LoadsBothSplits()
    {
        WriteFashion(_dir.Path, gzip: true);

        ImageDataset train = DatasetCatalog.Load("fashion-mnist", DataSplit.Train, _dir.Path);
        ImageDataset test = DatasetCatalog.Load("Fashion-MNIST", DataSplit.Test, _dir.Path);

        Assert.Equal(12, train.Count);
        Assert.Equal(5, test.Count);
        Assert.Equal("fashion-mnist", train.Name);
        Assert.Equal((1, 28, 28, 10), (test.Channels, test.Height, test.Width, test.ClassCount));
        Assert.Equal(2, test.Labels[0]);
        Assert.Equal([0.2860f], train.Mean);
    }

    [Fact]
    public void Load_UngzippedNamesInSubfolder_Loads()
    {
        WriteFashion(_dir.SubDir("mnist"), gzip: false);

        ImageDataset train = DatasetCatalog.Load("mnist", DataSplit.Train, _dir.Path);

        Assert.Equal(12, train.Count);
        Assert.Equal([0.1307f], train.Mean);
        Assert.Equal([0.3081f], train.Std);
    }

    [Fact]
    public void Load_MissingDirectory_ThrowsOneLineHint()
    {
        string missing = Path.Combine(_dir.Path, "does-not-exist");

        var ex = Assert.Throws<DatasetNotFoundException>(() => DatasetCatalog.Load("fashion-mnist", DataSplit.Train, missing));

        Assert.DoesNotContain('\n', ex.Message);
        Assert.DoesNotContain('\r', ex.Message);
        Assert.StartsWith("Fashion-MNIST not found in " + missing, ex.Message, StringComparison.Ordinal);
        Assert.Contains("sudo apt-get install dataset-fashion-mnist", ex.Message, StringComparison.Ordinal);
        Assert.Contains("--data DIR", ex.Message, StringComparison.Ordinal);
        Assert.Contains("train-images-idx3-ubyte.gz", ex.Message, StringComparison.Ordinal);
        Assert.Equal("fashion-mnist", ex.DatasetName);
        Assert.Equal([missing, Path.Combine(missing, "fashion-mnist")], ex.SearchedDirectories);
    }

    [Fact]
    public void Load_OnlyTrainFilesPresent_TestSplitNotFound()
    {
        WriteFashion(_dir.Path, gzip: true);
        File.Delete(_dir.File("t10k-labels-idx1-ubyte.gz"));

        Assert.Equal(12, DatasetCatalog.Load("fashion-mnist", DataSplit.Train, _dir.Path).Count);
        Assert.Throws<DatasetNotFoundException>(() => DatasetCatalog.Load("fashion-mnist", DataSplit.Test, _dir.Path));
    }

    [Theory]
    [InlineData("mnist", "ossci-datasets")]
    [InlineData("cifar10", "cifar-10-binary.tar.gz")]
    [InlineData("cifar100", "cifar-100-binary.tar.gz")]
    public void Load_OtherDatasetsMissing_ThrowsOneLineHintWithDownload(string name, string hint)
    {
        var ex = Assert.Throws<DatasetNotFoundException>(() => DatasetCatalog.Load(name, DataSplit.Test, _dir.Path));

        Assert.DoesNotContain('\n', ex.Message);
        Assert.Contains(hint, ex.Message, StringComparison.Ordinal);
        Assert.Contains(_dir.Path, ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("imagenet")]
    [InlineData("")]
    [InlineData("cifar-10")]
    public void Load_UnknownName_ThrowsArgumentExceptionListingKnownNames(string name)
    {
        var ex = Assert.Throws<ArgumentException>(() => DatasetCatalog.Load(name, DataSplit.Train, _dir.Path));

        foreach (string known in DatasetCatalog.KnownNames)
        {
            Assert.Contains(known, ex.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void KnownNames_Always_ListsTheFiveDatasets()
    {
        Assert.Equal(["fashion-mnist", "mnist", "cifar10", "cifar100", "synthetic"], DatasetCatalog.KnownNames);
    }

    [Fact]
    public void Load_EnvironmentRoot_UsesNamedSubfolder()
    {
        WriteFashion(_dir.SubDir("fashion-mnist"), gzip: true, trainCount: 3);

        ImageDataset train = DatasetCatalog.Load("fashion-mnist", DataSplit.Train, dataDir: null, environmentRoot: _dir.Path, Cifar100LabelKind.Fine);

        Assert.Equal(3, train.Count);
    }

    [Fact]
    public void CandidateDirectories_NoDataDir_TriesEnvironmentThenSystemFolder()
    {
        IReadOnlyList<string> dirs = DatasetCatalog.CandidateDirectories("fashion-mnist", null, "/data/root");

        Assert.Equal([Path.Combine("/data/root", "fashion-mnist"), DatasetCatalog.FashionMnistSystemDirectory], dirs);
        Assert.Equal([DatasetCatalog.MnistSystemDirectory], DatasetCatalog.CandidateDirectories("mnist", null, null));
        Assert.Empty(DatasetCatalog.CandidateDirectories("cifar10", null, null));
    }

    [Fact]
    public void Load_Cifar10InEnvironmentRootArchiveFolder_Loads()
    {
        string dir = Path.Combine(_dir.SubDir("cifar10"), CifarReader.Cifar10FolderName);
        Directory.CreateDirectory(dir);
        File.WriteAllBytes(Path.Combine(dir, "test_batch.bin"), TestFiles.Cifar10(7, 1));

        ImageDataset test = DatasetCatalog.Load("cifar10", DataSplit.Test, null, _dir.Path, Cifar100LabelKind.Fine);

        Assert.Equal(7, test.Count);
        Assert.Equal("cifar10", test.Name);
    }

    [Fact]
    public void LoadCifar100_CoarseFromDataDir_HasTwentyClasses()
    {
        File.WriteAllBytes(_dir.File("train.bin"), TestFiles.Cifar100(7, 4));

        ImageDataset coarse = DatasetCatalog.LoadCifar100(DataSplit.Train, _dir.Path, Cifar100LabelKind.Coarse);
        ImageDataset fine = DatasetCatalog.Load("cifar100", DataSplit.Train, _dir.Path);

        Assert.Equal(20, coarse.ClassCount);
        Assert.Equal(100, fine.ClassCount);
    }

    [Fact]
    public void Load_Synthetic_IgnoresDataDirAndIsDeterministic()
    {
        ImageDataset a = DatasetCatalog.Load("synthetic", DataSplit.Train, "/nonexistent");
        ImageDataset b = DatasetCatalog.Load("synthetic", DataSplit.Train, null);
        ImageDataset test = DatasetCatalog.Load("synthetic", DataSplit.Test, null);

        Assert.Equal(SyntheticData.DefaultTrainCount, a.Count);
        Assert.Equal(SyntheticData.DefaultTestCount, test.Count);
        Assert.Equal(a.Pixels, b.Pixels);
        Assert.Equal(a.Labels, b.Labels);
    }

    [Fact]
    [Trait("Category", "Integration")]
    public void Load_RealFashionMnist_HasPublishedShape()
    {
        Requirements.RequireFashionMnist();

        ImageDataset train = DatasetCatalog.Load("fashion-mnist", DataSplit.Train, DatasetCatalog.FashionMnistSystemDirectory);
        ImageDataset test = DatasetCatalog.Load("fashion-mnist", DataSplit.Test, DatasetCatalog.FashionMnistSystemDirectory);

        Assert.Equal(60000, train.Count);
        Assert.Equal(10000, test.Count);
        Assert.Equal((1, 28, 28, 10), (train.Channels, train.Height, train.Width, train.ClassCount));
        Assert.All(train.Labels.CountBy(l => l), kv => Assert.Equal(6000, kv.Value));
        Assert.All(test.Labels.CountBy(l => l), kv => Assert.Equal(1000, kv.Value));

        (float[] mean, float[] std) = DatasetNormalization.Compute(train.Pixels, 1, 28 * 28);
        Assert.Equal(0.2860, mean[0], 3);
        Assert.Equal(0.3530, std[0], 3);

        // The partitioners at real scale: 100 clients, as in the federated-learning literature.
        foreach (string spec in new[] { "iid", "dirichlet:0.1", "shards:2" })
        {
            Partitioning p = Partitioner.Partition(train, 100, PartitionSpec.Parse(spec), seed: 0);
            p.Validate(train.Count);
            Assert.All(p, part => Assert.True(part.Length >= 10, $"{spec}: client with {part.Length} examples"));
        }
    }
}
