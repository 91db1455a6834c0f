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
        using var json = JsonDocument.Parse(eval.Output);
        Assert.InRange(json.RootElement.GetProperty("accuracy").GetDouble(), 0.3, 1.0);
        Assert.Equal(10000, json.RootElement.GetProperty("examples").GetInt32());
    }
}
