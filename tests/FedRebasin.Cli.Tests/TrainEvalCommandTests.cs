using System.Text.Json;
using FedRebasin.Models;
using FedRebasin.Tests.Shared;

namespace FedRebasin.Cli.Tests;

public sealed class TrainEvalCommandTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("fedrebasin-cli-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public void TrainThenEval_SyntheticData_WritesModelAndPrintsJson()
    {
        // Arrange
        string model = Path.Combine(_directory, "m.safetensors");

        // Act
        var train = CliRunner.Run("train", "--model", "mlp", "--hidden", "32", "--dataset", "synthetic", "--epochs", "2", "--seed", "4", "--out", model, "--device", "cpu");
        var eval = CliRunner.Run("eval", model, "--dataset", "synthetic", "--json");

        // Assert
        Assert.True(train.ExitCode == 0, train.Error);
        Assert.Contains("Saved", train.Output, StringComparison.Ordinal);
        Assert.True(eval.ExitCode == 0, eval.Error);
        using var json = JsonDocument.Parse(eval.Output);
        double accuracy = json.RootElement.GetProperty("accuracy").GetDouble();
        Assert.InRange(accuracy, 0.5, 1.0);
        Assert.True(json.RootElement.GetProperty("loss").GetDouble() > 0);
        using var loaded = ModelFile.Load(model);
        Assert.Equal("mlp 784-32-10", loaded.Spec.Describe());
    }

    [Fact]
    public void Eval_JsonPath_WritesFile()
    {
        string model = Path.Combine(_directory, "m.safetensors");
        string json = Path.Combine(_directory, "eval.json");
        Assert.Equal(0, CliRunner.Run("train", "--hidden", "16", "--dataset", "synthetic", "--epochs", "1", "--out", model).ExitCode);

        var eval = CliRunner.Run("eval", model, "--dataset", "synthetic", "--json", json);

        Assert.Equal(0, eval.ExitCode);
        using var document = JsonDocument.Parse(File.ReadAllText(json));
        Assert.True(document.RootElement.TryGetProperty("accuracy", out _));
    }

    [Theory]
    [InlineData("error: ", "train", "--dataset", "synthetic")]
    [InlineData("--partition, --clients and --client go together", "train", "--dataset", "synthetic", "--partition", "iid", "--out", "x.safetensors")]
    [InlineData("--client must be in [0, 9]", "train", "--dataset", "synthetic", "--partition", "iid", "--clients", "10", "--client", "10", "--out", "x.safetensors")]
    [InlineData("dirichlet", "train", "--dataset", "synthetic", "--partition", "dirichlet:abc", "--clients", "10", "--client", "1", "--out", "x.safetensors")]
    [InlineData("--dataset must be one of", "train", "--dataset", "imagenet", "--out", "x.safetensors")]
    [InlineData("unknown architecture", "train", "--model", "gpt", "--dataset", "synthetic", "--out", "x.safetensors")]
    [InlineData("--epochs must be", "train", "--dataset", "synthetic", "--epochs", "0", "--out", "x.safetensors")]
    [InlineData("--device must be one of", "train", "--dataset", "synthetic", "--device", "tpu", "--out", "x.safetensors")]
    [InlineData("--optimizer must be", "train", "--dataset", "synthetic", "--optimizer", "lion", "--out", "x.safetensors")]
    [InlineData("Unrecognized command or argument", "train", "--bogus", "--out", "x.safetensors")]
    public void Train_BadArguments_OneLineErrorAndUsageExit(string expected, params string[] args)
    {
        var (code, _, error) = CliRunner.Run(args);

        Assert.Equal(ExitCodes.Usage, code);
        Assert.Contains(expected, error, StringComparison.Ordinal);
        Assert.Single(error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public void Train_MissingData_SaysHowToGetIt()
    {
        var (code, _, error) = CliRunner.Run("train", "--dataset", "fashion-mnist", "--data", Path.Combine(_directory, "nothing-here"), "--out", Path.Combine(_directory, "m.safetensors"));

        Assert.Equal(ExitCodes.Failure, code);
        Assert.Contains("dataset-fashion-mnist", error, StringComparison.Ordinal);
        Assert.Single(error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public void Eval_MissingFile_NamesIt()
    {
        string path = Path.Combine(_directory, "none.safetensors");

        var (code, _, error) = CliRunner.Run("eval", path, "--dataset", "synthetic");

        Assert.Equal(ExitCodes.Failure, code);
        Assert.Contains(path, error, StringComparison.Ordinal);
    }

    [Fact]
    public void Eval_CorruptFile_NamesFileAndProblem()
    {
        string path = Path.Combine(_directory, "bad.safetensors");
        File.WriteAllBytes(path, [1, 2, 3]);

        var (code, _, error) = CliRunner.Run("eval", path, "--dataset", "synthetic");

        Assert.Equal(ExitCodes.Failure, code);
        Assert.Contains("bad.safetensors", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Eval_ModelForOtherImages_SaysWhy()
    {
        string path = Path.Combine(_directory, "cifar.safetensors");
        using (var model = ModelRegistry.Create(ModelRegistry.DefaultSpec("mlp", 3, 32, 32, 10, hidden: [8])))
        {
            ModelFile.Save(model, path);
        }

        var (code, _, error) = CliRunner.Run("eval", path, "--dataset", "synthetic");

        Assert.Equal(ExitCodes.Usage, code);
        Assert.Contains("3x32x32", error, StringComparison.Ordinal);
        Assert.Contains("1x28x28", error, StringComparison.Ordinal);
    }

    [Fact]
    [Trait("Category", "Integration")]
    public void Train_FashionMnistClientSplit_TrainsAndEvaluates()
    {
        // Arrange
        Requirements.RequireFashionMnist();
        string model = Path.Combine(_directory, "client3.safetensors");

        // Act
        var train = CliRunner.Run("train", "--model", "mlp", "--hidden", "128", "--dataset", "fashion-mnist", "--partition", "dirichlet:0.5", "--clients", "10", "--client", "3", "--epochs", "1", "--seed", "1", "--out", model);
        var eval = CliRunner.Run("eval", model, "--dataset", "fashion-mnist", "--json");

        // Assert
        Assert.True(train.ExitCode == 0, train.Error);
        Assert.Contains("client 3 of 10 (dirichlet:0.5", train.Output, StringComparison.Ordinal);
        Assert.Contains("labels of this split (class: examples): 0:", train.Output, StringComparison.Ordinal);
        using var json = JsonDocument.Parse(eval.Output);
        Assert.InRange(json.RootElement.GetProperty("accuracy").GetDouble(), 0.3, 1.0);
        Assert.Equal(10000, json.RootElement.GetProperty("examples").GetInt32());
    }
}

public sealed class MergeCommandTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("fedrebasin-merge-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private string Train(int seed, string hidden = "32,32")
    {
        string path = Path.Combine(_directory, $"m{seed}-{hidden.Replace(',', '_')}.safetensors");
        var result = CliRunner.Run("train", "--hidden", hidden, "--dataset", "synthetic", "--epochs", "1", "--seed", seed.ToString(System.Globalization.CultureInfo.InvariantCulture), "--out", path);
        Assert.True(result.ExitCode == 0, result.Error);
        return path;
    }

    [Theory]
    [InlineData("naive", "none")]
    [InlineData("wm", "repair")]
    [InlineData("mergemany", "rescale")]
    public void Merge_TwoModels_WritesModelAndReport(string method, string repair)
    {
        // Arrange
        string a = Train(1);
        string b = Train(2);
        string merged = Path.Combine(_directory, "merged.safetensors");
        string report = Path.Combine(_directory, "report.json");

        // Act
        var result = CliRunner.Run("merge", a, b, "--method", method, "--repair", repair, "--dataset", "synthetic", "--calibration", "500", "--out", merged, "--report", report);

        // Assert
        Assert.True(result.ExitCode == 0, result.Error);
        using var json = JsonDocument.Parse(File.ReadAllText(report));
        var root = json.RootElement;
        Assert.Equal(method, root.GetProperty("method").GetString());
        foreach (string field in new[] { "objective_before", "objective_after", "sweeps", "seconds", "groups" })
        {
            Assert.True(root.TryGetProperty(field, out _), field);
        }

        if (method != "naive")
        {
            Assert.True(root.GetProperty("objective_after").GetDouble() >= root.GetProperty("objective_before").GetDouble());
            var group = root.GetProperty("groups")[0];
            Assert.Equal("P0", group.GetProperty("name").GetString());
            Assert.Equal(32, group.GetProperty("size").GetInt32());
            Assert.InRange(group.GetProperty("identity_fraction").GetDouble(), 0, 1);
        }

        Assert.InRange(root.GetProperty("merged").GetProperty("test_accuracy").GetDouble(), 0, 1);
        using var model = ModelFile.Load(merged);
        Assert.Equal("mlp 784-32-32-10", model.Spec.Describe());
    }

    [Fact]
    public void Merge_DifferentArchitectures_NamesTheTensor()
    {
        string a = Train(1, "32,32");
        string b = Train(2, "32,16");

        var (code, _, error) = CliRunner.Run("merge", a, b, "--out", Path.Combine(_directory, "x.safetensors"));

        Assert.NotEqual(0, code);
        Assert.Contains("'2.weight'", error, StringComparison.Ordinal);
        Assert.Single(error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [Theory]
    [InlineData("--repair needs", "--repair", "repair")]
    [InlineData("--weights has 3 values", "--weights", "1,2,3")]
    [InlineData("--method must be", "--method", "average")]
    public void Merge_BadOptions_OneLine(string expected, string option, string value)
    {
        string a = Train(1);
        string b = Train(2);

        var (code, _, error) = CliRunner.Run("merge", a, b, option, value, "--out", Path.Combine(_directory, "x.safetensors"));

        Assert.Equal(ExitCodes.Usage, code);
        Assert.Contains(expected.Replace("--repair needs", "--repair repair measures", StringComparison.Ordinal), error, StringComparison.Ordinal);
    }

    [Fact]
    public void Merge_SeedTrials_ReportsEveryTrial_KeepsTheBestOnValidation()
    {
        // Arrange
        string a = Train(1);
        string b = Train(2);
        string merged = Path.Combine(_directory, "searched.safetensors");
        string report = Path.Combine(_directory, "searched.json");

        // Act
        var result = CliRunner.Run("merge", a, b, "--method", "wm", "--seed", "5", "--seed-trials", "3", "--dataset", "synthetic", "--validation", "300", "--out", merged, "--report", report);

        // Assert
        Assert.True(result.ExitCode == 0, result.Error);
        Assert.Contains("ranked on 300 training examples", result.Output, StringComparison.Ordinal);
        using var json = JsonDocument.Parse(File.ReadAllText(report));
        var trials = json.RootElement.GetProperty("seed_trials").EnumerateArray().Select(t => (
            Seed: t.GetProperty("seed").GetInt64(),
            Accuracy: t.GetProperty("validation_accuracy").GetDouble(),
            Loss: t.GetProperty("validation_loss").GetDouble())).ToList();
        Assert.Equal([5L, 6, 7], trials.Select(t => t.Seed));
        long best = trials.OrderByDescending(t => t.Accuracy).ThenBy(t => t.Loss).First().Seed;
        Assert.Equal(best, json.RootElement.GetProperty("matching_seed").GetInt64());
        Assert.Contains($"kept seed {best}", result.Output, StringComparison.Ordinal);
        Assert.Equal(best.ToString(System.Globalization.CultureInfo.InvariantCulture), FedRebasin.Tensors.SafeTensors.Read(merged).Metadata["fedrebasin.matching_seed"]);
    }

    [Theory]
    [InlineData("--seed-trials must be at least 1", "--seed-trials", "0")]
    [InlineData("--seed-trials needs --method wm or mergemany", "--seed-trials", "2", "--method", "naive", "--dataset", "synthetic")]
    [InlineData("--seed-trials ranks the merges on training examples: add --dataset", "--seed-trials", "2")]
    [InlineData("--validation must be at least 1", "--seed-trials", "2", "--dataset", "synthetic", "--validation", "0")]
    [InlineData("leaves none for --validation", "--seed-trials", "2", "--dataset", "synthetic", "--repair", "repair", "--calibration", "100000")]
    public void Merge_BadSeedSearch_OneLineNamingTheOption(string expected, params string[] options)
    {
        string a = Train(1);
        string b = Train(2);

        var (code, _, error) = CliRunner.Run(["merge", a, b, .. options, "--out", Path.Combine(_directory, "x.safetensors")]);

        Assert.Equal(ExitCodes.Usage, code);
        Assert.Contains(expected, error, StringComparison.Ordinal);
        Assert.Single(error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.False(File.Exists(Path.Combine(_directory, "x.safetensors")));
    }
}

public sealed class PyTorchMergeTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("fedrebasin-ptmerge-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    [Trait("Category", "Integration")]
    public void Merge_PyTorchSequentialMlps_WithoutMetadata_Works()
    {
        // Arrange: two MLPs trained by PyTorch and saved with nn.Sequential keys and no metadata.
        PythonRunner.RequireModule("torch");
        string a = Path.Combine(_directory, "a.safetensors");
        string b = Path.Combine(_directory, "b.safetensors");
        PythonRunner.RunScript("interop.py", "make-mlp", a, Path.Combine(_directory, "a-io.safetensors"), "1");
        PythonRunner.RunScript("interop.py", "make-mlp", b, Path.Combine(_directory, "b-io.safetensors"), "2");
        string merged = Path.Combine(_directory, "m.safetensors");
        string report = Path.Combine(_directory, "r.json");

        // Act
        var result = CliRunner.Run("merge", a, b, "--method", "wm", "--out", merged, "--report", report);

        // Assert
        Assert.True(result.ExitCode == 0, result.Error);
        using var json = JsonDocument.Parse(File.ReadAllText(report));
        Assert.True(json.RootElement.GetProperty("objective_after").GetDouble() > json.RootElement.GetProperty("objective_before").GetDouble());
        using var model = ModelFile.Load(merged);
        Assert.Equal("mlp 784-64-32-10", model.Spec.Describe());
    }
}

public sealed class BatchNormMergeTests : IDisposable
{
    private const int MaxTrainingAttempts = 3;

    private readonly string _directory = Directory.CreateTempSubdirectory("fedrebasin-bnmerge-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Theory]
    [InlineData("naive", "bn-reset")]
    [InlineData("wm", "bn-reset")]
    [InlineData("wm", "repair")]
    public void Merge_BatchNormModels_WritesValidReport(string method, string repair)
    {
        // Arrange: two small BatchNorm ResNets, each trained by a CLI process of its own on a tenth of the data. Under
        // the test suite's load, LibTorch's convolution backward has now and then returned NaN gradients (an open
        // problem, docs/TORCHSHARP-LOADING.md); this test is about merging BatchNorm models, so it keeps its training
        // short (fewer backward passes) and out of this busy process, and repeats a training that `train` refused as
        // diverged (it saves no such model), at most three attempts.
        var paths = new List<string>();
        foreach (int seed in new[] { 1, 2 })
        {
            string path = Path.Combine(_directory, $"r{seed}.safetensors");
            (int ExitCode, string Output, string Error) train = default;
            for (int attempt = 1; attempt <= MaxTrainingAttempts; attempt++)
            {
                train = CliRunner.RunProcess(TimeSpan.FromMinutes(3), "train", "--model", "resnet20", "--width", "0.25", "--norm", "batch", "--dataset", "synthetic", "--partition", "iid", "--clients", "10", "--client", "0", "--epochs", "1", "--seed", seed.ToString(System.Globalization.CultureInfo.InvariantCulture), "--out", path);
                if (train.ExitCode == 0 || !train.Error.Contains("training diverged", StringComparison.Ordinal))
                {
                    break;
                }
            }

            Assert.True(train.ExitCode == 0, train.Error);
            paths.Add(path);
        }

        string report = Path.Combine(_directory, "report.json");

        // Act
        var result = CliRunner.Run("merge", paths[0], paths[1], "--method", method, "--repair", repair, "--dataset", "synthetic", "--calibration", "200", "--out", Path.Combine(_directory, "m.safetensors"), "--report", report);

        // Assert
        Assert.True(result.ExitCode == 0, result.Error);
        using var json = JsonDocument.Parse(File.ReadAllText(report));
        Assert.Equal(repair, json.RootElement.GetProperty("repair").GetString());
        Assert.NotEmpty(json.RootElement.GetProperty("repair_points").EnumerateArray());
    }
}

public sealed class InterpolateCommandTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("fedrebasin-interp-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Theory]
    [InlineData("none", "none")]
    [InlineData("wm", "repair")]
    public void Interpolate_TwoModels_WritesCurveAndPlot(string align, string repair)
    {
        // Arrange
        var paths = new[] { 1, 2 }.Select(seed =>
        {
            string path = Path.Combine(_directory, $"m{seed}.safetensors");
            var train = CliRunner.Run("train", "--hidden", "32", "--dataset", "synthetic", "--epochs", "1", "--seed", seed.ToString(System.Globalization.CultureInfo.InvariantCulture), "--out", path);
            Assert.True(train.ExitCode == 0, train.Error);
            return path;
        }).ToArray();
        string json = Path.Combine(_directory, "curve.json");
        string png = Path.Combine(_directory, "curve.png");

        // Act
        var result = CliRunner.Run("interpolate", paths[0], paths[1], "--align", align, "--repair", repair, "--steps", "5", "--dataset", "synthetic", "--calibration", "300", "--json", json, "--png", png);

        // Assert
        Assert.True(result.ExitCode == 0, result.Error);
        using var document = JsonDocument.Parse(File.ReadAllText(json));
        var root = document.RootElement;
        Assert.Equal([0, 0.25, 0.5, 0.75, 1], root.GetProperty("alphas").EnumerateArray().Select(a => a.GetDouble()));
        Assert.Equal(5, root.GetProperty("loss").GetArrayLength());
        Assert.Equal(5, root.GetProperty("accuracy").GetArrayLength());
        Assert.True(root.GetProperty("loss_barrier").GetDouble() >= -1e-9);
        Assert.True(root.GetProperty("accuracy_barrier").GetDouble() >= 0);
        byte[] header = File.ReadAllBytes(png).Take(8).ToArray();
        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A }, header);
    }

    [Fact]
    public void Interpolate_BadAlign_OneLine()
    {
        var (code, _, error) = CliRunner.Run("interpolate", "a.safetensors", "b.safetensors", "--align", "stf", "--dataset", "synthetic");

        Assert.Equal(ExitCodes.Usage, code);
        Assert.Contains("--align must be none or wm", error, StringComparison.Ordinal);
    }
}
