namespace FedRebasin.Data;

/// <summary>
/// Loads datasets by name: <c>fashion-mnist</c>, <c>mnist</c>, <c>cifar10</c>, <c>cifar100</c> and <c>synthetic</c>.
/// </summary>
/// <remarks>
/// Where files are looked for, in order, stopping at the first folder that has every file the split needs:
/// <list type="bullet">
/// <item>if <c>dataDir</c> is given: <c>dataDir</c> itself, then <c>dataDir/NAME</c> (nothing else);</item>
/// <item>otherwise: <c>$FEDREBASIN_DATA/NAME</c> when that variable is set, then the system folder
/// (<c>/usr/share/datasets/fashion-mnist</c> from the Debian package <c>dataset-fashion-mnist</c>, or
/// <c>/usr/share/datasets/mnist</c>).</item>
/// </list>
/// IDX files are accepted gzip-compressed (<c>.gz</c>) or raw; CIFAR files may also sit inside the archive's own folder
/// (<c>cifar-10-batches-bin</c>, <c>cifar-100-binary</c>).
/// </remarks>
public static class DatasetCatalog
{
    /// <summary>Environment variable naming a root folder with <c>fashion-mnist/</c>, <c>mnist/</c>, <c>cifar10/</c>, <c>cifar100/</c> subfolders.</summary>
    public const string DataEnvironmentVariable = "FEDREBASIN_DATA";

    /// <summary>Where the Debian package <c>dataset-fashion-mnist</c> installs Fashion-MNIST.</summary>
    public const string FashionMnistSystemDirectory = "/usr/share/datasets/fashion-mnist";

    /// <summary>System folder also searched for MNIST.</summary>
    public const string MnistSystemDirectory = "/usr/share/datasets/mnist";

    /// <summary>Download location of the MNIST IDX files.</summary>
    public const string MnistUrl = "https://ossci-datasets.s3.amazonaws.com/mnist/";

    /// <summary>Download location of the CIFAR-10 binary version.</summary>
    public const string Cifar10Url = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz";

    /// <summary>Download location of the CIFAR-100 binary version.</summary>
    public const string Cifar100Url = "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz";

    /// <summary>The names <see cref="Load(string, DataSplit, string?)"/> accepts (case-insensitive).</summary>
    public static IReadOnlyList<string> KnownNames { get; } = ["fashion-mnist", "mnist", "cifar10", "cifar100", "synthetic"];

    /// <summary>
    /// Loads split <paramref name="split"/> of dataset <paramref name="name"/> (one of <see cref="KnownNames"/>,
    /// case-insensitive). <paramref name="dataDir"/> is ignored for <c>synthetic</c>, which is generated
    /// (see <see cref="SyntheticData.CreateDefault"/>). CIFAR-100 uses the fine (100-class) labels; see
    /// <see cref="LoadCifar100"/> for the coarse ones.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="name"/> is not a known dataset (the message lists the known names).</exception>
    /// <exception cref="DatasetNotFoundException">The files are not in any searched folder; the message is one line saying what to do.</exception>
    /// <exception cref="DataFormatException">The files are there but invalid.</exception>
    public static ImageDataset Load(string name, DataSplit split, string? dataDir = null) =>
        Load(name, split, dataDir, Environment.GetEnvironmentVariable(DataEnvironmentVariable), Cifar100LabelKind.Fine);

    /// <summary>Loads CIFAR-100 with the chosen label kind (fine: 100 classes, coarse: 20); otherwise as <see cref="Load(string, DataSplit, string?)"/>.</summary>
    /// <exception cref="DatasetNotFoundException">The files are not in any searched folder.</exception>
    /// <exception cref="DataFormatException">The files are there but invalid.</exception>
    public static ImageDataset LoadCifar100(DataSplit split, string? dataDir, Cifar100LabelKind labelKind) =>
        Load("cifar100", split, dataDir, Environment.GetEnvironmentVariable(DataEnvironmentVariable), labelKind);

    /// <summary>The folders <see cref="Load(string, DataSplit, string?)"/> searches for <paramref name="name"/>, in order (empty for <c>synthetic</c>).</summary>
    /// <exception cref="ArgumentException"><paramref name="name"/> is not a known dataset.</exception>
    public static IReadOnlyList<string> CandidateDirectories(string name, string? dataDir) =>
        CandidateDirectories(Canonical(name), dataDir, Environment.GetEnvironmentVariable(DataEnvironmentVariable));

    internal static ImageDataset Load(string name, DataSplit split, string? dataDir, string? environmentRoot, Cifar100LabelKind cifar100Labels)
    {
        string key = Canonical(name);
        if (key == "synthetic")
        {
            return SyntheticData.CreateDefault(split);
        }

        IReadOnlyList<string> candidates = CandidateDirectories(key, dataDir, environmentRoot);
        switch (key)
        {
            case "fashion-mnist":
            case "mnist":
                {
                    string prefix = split == DataSplit.Train ? "train" : "t10k";
                    foreach (string dir in candidates)
                    {
                        string? images = FindIdx(dir, prefix + "-images-idx3-ubyte");
                        string? labels = FindIdx(dir, prefix + "-labels-idx1-ubyte");
                        if (images is not null && labels is not null)
                        {
                            return IdxReader.LoadIdxPair(images, labels, key, 10);
                        }
                    }

                    break;
                }

            case "cifar10":
                {
                    var files = split == DataSplit.Train ? CifarReader.Cifar10TrainFiles : CifarReader.Cifar10TestFiles;
                    foreach (string dir in candidates)
                    {
                        string? found = CifarReader.FindDirectory(dir, CifarReader.Cifar10FolderName, files);
                        if (found is not null)
                        {
                            return CifarReader.LoadFiles(files.Select(f => Path.Combine(found, f)).ToList(), false, Cifar100LabelKind.Fine, key);
                        }
                    }

                    break;
                }

            case "cifar100":
                {
                    var files = split == DataSplit.Train ? CifarReader.Cifar100TrainFiles : CifarReader.Cifar100TestFiles;
                    foreach (string dir in candidates)
                    {
                        string? found = CifarReader.FindDirectory(dir, CifarReader.Cifar100FolderName, files);
                        if (found is not null)
                        {
                            return CifarReader.LoadFiles(files.Select(f => Path.Combine(found, f)).ToList(), true, cifar100Labels, key);
                        }
                    }

                    break;
                }
        }

        throw NotFound(key, candidates);
    }

    internal static IReadOnlyList<string> CandidateDirectories(string key, string? dataDir, string? environmentRoot)
    {
        if (key == "synthetic")
        {
            return [];
        }

        if (!string.IsNullOrWhiteSpace(dataDir))
        {
            return [dataDir, Path.Combine(dataDir, key)];
        }

        var list = new List<string>();
        if (!string.IsNullOrWhiteSpace(environmentRoot))
        {
            list.Add(Path.Combine(environmentRoot, key));
        }

        if (key == "fashion-mnist")
        {
            list.Add(FashionMnistSystemDirectory);
        }
        else if (key == "mnist")
        {
            list.Add(MnistSystemDirectory);
        }

        return list;
    }

    internal static DatasetNotFoundException NotFound(string key, IReadOnlyList<string> searched)
    {
        const string idxFiles = "train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz (or the same names without .gz)";
        string where = searched.Count == 0
            ? $"(no folder to search: pass --data DIR or set {DataEnvironmentVariable})"
            : "in " + string.Join(", ", searched);
        string env = $"or set {DataEnvironmentVariable} to a folder with a {key}/ subfolder";
        string message = key switch
        {
            "fashion-mnist" => $"Fashion-MNIST not found {where}: install it with 'sudo apt-get install dataset-fashion-mnist' or pass --data DIR containing {idxFiles} ({env}).",
            "mnist" => $"MNIST not found {where}: download {idxFiles} from {MnistUrl} and pass --data DIR pointing at the folder holding them ({env}).",
            "cifar10" => $"CIFAR-10 not found {where}: download {Cifar10Url}, extract it and pass --data DIR pointing at the folder with {CifarReader.Cifar10FolderName}/ or its data_batch_1.bin..data_batch_5.bin and test_batch.bin ({env}).",
            _ => $"CIFAR-100 not found {where}: download {Cifar100Url}, extract it and pass --data DIR pointing at the folder with {CifarReader.Cifar100FolderName}/ or its train.bin and test.bin ({env}).",
        };
        return new DatasetNotFoundException(key, searched, message.ReplaceLineEndings(" "));
    }

    private static string Canonical(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        string trimmed = name.Trim();
        foreach (string known in KnownNames)
        {
            if (string.Equals(known, trimmed, StringComparison.OrdinalIgnoreCase))
            {
                return known;
            }
        }

        throw new ArgumentException($"Unknown dataset '{name}'. Known datasets: {string.Join(", ", KnownNames)}.", nameof(name));
    }

    private static string? FindIdx(string dir, string baseName)
    {
        string gz = Path.Combine(dir, baseName + ".gz");
        if (File.Exists(gz))
        {
            return gz;
        }

        string raw = Path.Combine(dir, baseName);
        return File.Exists(raw) ? raw : null;
    }
}
