using System.Text.Json;
using FedRebasin.Coordinator;
using FedRebasin.Federation.Strategies;

namespace FedRebasin.Simulation.Tests;

public sealed class SimulationOptionsTests
{
    [Fact]
    public void Validate_BadSettings_NameEachOption()
    {
        var options = new SimulationOptions { Dataset = "imagenet", Clients = 0, Partition = "zipf", Rounds = 0, Strategies = [StrategySpec.FedAvg, StrategySpec.FedAvg] };

        var error = Assert.Throws<ArgumentException>(options.Validate);

        foreach (string option in new[] { "--dataset", "--clients", "--partition", "--rounds", "--strategies" })
        {
            Assert.Contains(option, error.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void ToCsv_OneLinePerRound_BytesMovedCountDownloadAndUpload()
    {
        var rounds = new[]
        {
            new RoundSummary(1, 4, 400, 0.5, 1.25, 0.45, 1.5, 2.0, 1.25, 1000, 1.0, 0.0, "calibration", 1.0, 0.625, 0.25, 0.125, 6, 0.5, 1.0),
            new RoundSummary(2, 3, 300, 0.625, 1.0, 0.6, 1.1, 1.5, 0.75, 1000, double.NaN, double.NaN, "none"),
        };

        string[] lines = SimulationReport.ToCsv(rounds).TrimEnd('\n').Split('\n');

        Assert.Equal(3, lines.Length);
        Assert.StartsWith("round,clients,accuracy,loss,", lines[0], StringComparison.Ordinal);
        Assert.EndsWith(",repair,client_models_loss,client_models_accuracy,loss_barrier,accuracy_barrier,repair_points_corrected,variance_ratio_before,variance_ratio_after", lines[0], StringComparison.Ordinal);
        Assert.Equal("1,4,0.5,1.25,0.45,1.5,2,1.25,8000,1,0,calibration,1,0.625,0.25,0.125,6,0.5,1", lines[1]);
        Assert.Equal("2,3,0.625,1,0.6,1.1,1.5,0.75,6000,NaN,NaN,none,NaN,NaN,NaN,NaN,0,NaN,NaN", lines[2]);
    }
}

/// <summary>Whole simulations on the catalog's synthetic data (1x28x28, 10 classes): real coordinator, real clients.</summary>
[Trait("Category", "Integration")]
public sealed class SimulationRunTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("fedrebasin-sim-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private SimulationOptions Small(string name) => new()
    {
        Dataset = "synthetic",
        Hidden = [32],
        Clients = 3,
        Partition = "dirichlet:0.5",
        Rounds = 2,
        Strategies = [StrategySpec.FedAvg, StrategySpec.Parse("wm+repair")],
        Seed = 3,
        EvaluationExamples = 500,
        OutputDirectory = Path.Combine(_folder, name),
    };

    [Fact]
    public async Task RunAsync_TwoStrategies_ResultsCsvAndPlotsWritten()
    {
        var progress = new List<SimulationProgress>();
        var result = await SimulationRunner.RunAsync(Small("a"), new Progress(progress), TestContext.Current.CancellationToken);
        var files = SimulationReport.Write(result);

        Assert.Equal(["fedavg", "wm+repair"], result.Runs.Select(r => r.Strategy));
        Assert.All(result.Runs, r => Assert.Equal([1, 2], r.Rounds.Select(x => x.Round)));
        Assert.All(result.Runs.SelectMany(r => r.Rounds), x => Assert.InRange(x.Accuracy, 0.0, 1.0));
        Assert.All(result.Runs.SelectMany(r => r.Rounds), x => Assert.Equal(3, x.Clients));
        Assert.Equal("statistics", result.Runs[1].Rounds[0].Repair);
        // Every update was evaluated, so each round reports its merge barrier against the client models it merged.
        Assert.All(result.Runs.SelectMany(r => r.Rounds), x =>
        {
            Assert.True(double.IsFinite(x.ClientModelsLoss), $"round {x.Round}: client models' loss {x.ClientModelsLoss}");
            Assert.Equal(x.Loss - x.ClientModelsLoss, x.LossBarrier, 12);
            Assert.Equal(x.ClientModelsAccuracy - x.Accuracy, x.AccuracyBarrier, 12);
        });
        Assert.True(result.Runs[1].Rounds[0].RepairPointsCorrected > 0);
        Assert.Contains(progress, p => p.Strategy == "wm+repair" && p.Round == 2);
        using var json = JsonDocument.Parse(await File.ReadAllBytesAsync(Path.Combine(_folder, "a", "results.json"), TestContext.Current.CancellationToken));
        Assert.Equal(2, json.RootElement.GetProperty("strategies").GetArrayLength());
        Assert.Equal(3, (await File.ReadAllLinesAsync(Path.Combine(_folder, "a", "wm+repair", "rounds.csv"), TestContext.Current.CancellationToken)).Length);
        foreach (string png in files.Where(f => f.EndsWith(".png", StringComparison.Ordinal)))
        {
            byte[] head = (await File.ReadAllBytesAsync(png, TestContext.Current.CancellationToken))[..4];
            Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, head);
        }
    }

    [Fact]
    public async Task RunAsync_SameSeedTwice_SameNumbers()
    {
        var options = Small("b") with { Strategies = [StrategySpec.Parse("wm+repair")] };

        var first = await SimulationRunner.RunAsync(options, null, TestContext.Current.CancellationToken);
        var second = await SimulationRunner.RunAsync(options with { OutputDirectory = Path.Combine(_folder, "c") }, null, TestContext.Current.CancellationToken);

        Assert.Equal(first.Runs[0].Rounds.Select(r => (r.Accuracy, r.Loss)), second.Runs[0].Rounds.Select(r => (r.Accuracy, r.Loss)));
    }

    private sealed class Progress(List<SimulationProgress> seen) : IProgress<SimulationProgress>
    {
        public void Report(SimulationProgress value)
        {
            lock (seen)
            {
                seen.Add(value);
            }
        }
    }
}
