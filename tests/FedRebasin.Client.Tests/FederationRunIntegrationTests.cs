using System.Text.Json;
using FedRebasin.Coordinator;
using FedRebasin.Data;
using FedRebasin.Tests.Shared;
using Microsoft.Extensions.DependencyInjection;

namespace FedRebasin.Client.Tests;

/// <summary>
/// Whole runs on loopback with real client workers: federated repair through statistics tasks or the coordinator's
/// calibration data, server-side evaluation with the shadow FedAvg, and checkpoints with their audit trail and resume.
/// The model takes the catalog's synthetic data (1x28x28, 10 classes), so the coordinator can load the same data by name.
/// </summary>
[Trait("Category", "Integration")]
public sealed class FederationRunIntegrationTests : IDisposable
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "fedrebasin-run-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_folder))
        {
            Directory.Delete(_folder, recursive: true);
        }
    }

    private Dictionary<string, string?> Settings(string strategy, int rounds) => new()
    {
        ["Coordinator:Strategy"] = strategy,
        ["Coordinator:Rounds"] = rounds.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["Coordinator:Model:InputShape"] = "1,28,28",
        ["Coordinator:Model:Classes"] = "10",
        ["Coordinator:Model:Hidden:0"] = "32",
        ["Coordinator:CheckpointDirectory"] = _folder,
        ["Coordinator:Evaluation:Dataset"] = "synthetic",
        ["Coordinator:Evaluation:Examples"] = "300",
    };

    private static async Task<long[]> RunClientsAsync(Uri address, int count, CancellationToken cancellationToken, int first = 0)
    {
        var dataset = SyntheticData.CreateDefault(DataSplit.Train);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(90));
        var workers = Enumerable.Range(first, count).Select(i => new ClientWorker(new ClientOptions
        {
            CoordinatorAddress = address,
            ClientId = $"client-{i}",
            Dataset = dataset,
            Partition = "dirichlet:0.5",
            Clients = 3,
            ClientIndex = i,
            PartitionSeed = 5,
            StatisticsExamples = 300,
            CallTimeout = TimeSpan.FromSeconds(20),
            PollTimeout = TimeSpan.FromSeconds(10),
            Retry = new RetrySettings { BaseDelay = TimeSpan.FromMilliseconds(50), MaxDelay = TimeSpan.FromMilliseconds(500) },
        }));
        return await Task.WhenAll(workers.Select(w => Task.Run(() => w.RunAsync(timeout.Token), timeout.Token)));
    }

    private JsonElement Audit(int round)
    {
        string path = Path.Combine(_folder, "audit", $"round-{round:D4}.json");
        return JsonDocument.Parse(File.ReadAllBytes(path)).RootElement;
    }

    [Fact]
    public async Task WmRepair_WithoutCalibration_ClientsAnswerStatisticsAndTheModelIsRepaired()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var coordinator = await LoopbackCoordinator.StartAsync(Settings("wm+repair", rounds: 2));

        long[] finals = await RunClientsAsync(coordinator.Address, 3, ct);

        Assert.All(finals, f => Assert.Equal(2, f));
        for (int round = 1; round <= 2; round++)
        {
            var audit = Audit(round);
            var repair = audit.GetProperty("repair");
            Assert.Equal("statistics", repair.GetProperty("source").GetString());
            Assert.Equal(3, repair.GetProperty("statistics_answers").GetInt32());
            Assert.True(repair.GetProperty("points_corrected").GetInt32() >= 1);
            Assert.Equal(3, audit.GetProperty("clients").GetArrayLength());
            Assert.All(audit.GetProperty("clients").EnumerateArray(), c => Assert.True(c.GetProperty("has_moments").GetBoolean()));
        }
    }

    [Fact]
    public async Task FedAvgRescale_WithCalibration_RepairsOnTheCoordinatorAndReportsTheShadow()
    {
        var ct = TestContext.Current.CancellationToken;
        var settings = Settings("wm+rescale", rounds: 1);
        settings["Coordinator:Calibration:Dataset"] = "synthetic";
        settings["Coordinator:Calibration:Examples"] = "200";
        await using var coordinator = await LoopbackCoordinator.StartAsync(settings);

        await RunClientsAsync(coordinator.Address, 3, ct);

        var audit = Audit(1);
        Assert.Equal("calibration", audit.GetProperty("repair").GetProperty("source").GetString());
        var evaluation = audit.GetProperty("evaluation");
        double accuracy = evaluation.GetProperty("accuracy").GetDouble();
        double shadow = evaluation.GetProperty("shadow_fed_avg_accuracy").GetDouble();
        Assert.InRange(accuracy, 0, 1);
        Assert.InRange(shadow, 0, 1);
        Assert.Equal(300, evaluation.GetProperty("examples").GetInt32());
        var run = coordinator.Services.GetRequiredService<CoordinatorRun>();
        Assert.Equal(accuracy, run.LastAccuracy);
    }

    [Fact]
    public async Task Checkpoints_AuditReplaysTheWeights_AndARestartResumesAfterTheLastRound()
    {
        var ct = TestContext.Current.CancellationToken;
        string runId;
        await using (var first = await LoopbackCoordinator.StartAsync(Settings("wm", rounds: 2)))
        {
            await RunClientsAsync(first.Address, 3, ct);
            runId = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(_folder, "checkpoint.json"))).RootElement.GetProperty("run_id").GetString()!;
        }

        // The audit holds each client's weight and permutation; the weights sum to the round's total.
        var audit = Audit(2);
        long total = audit.GetProperty("total_samples").GetInt64();
        Assert.Equal(total, audit.GetProperty("clients").EnumerateArray().Sum(c => c.GetProperty("sample_count").GetInt64()));
        Assert.All(audit.GetProperty("clients").EnumerateArray(), c => Assert.True(c.GetProperty("permutations").EnumerateObject().Any()));
        Assert.Equal("1", audit.GetProperty("reference_version").GetString());

        // Same settings with one more round: the run resumes after round 2 (same run id, version "2"), clients finish round 3.
        var more = Settings("wm", rounds: 3);
        await using var second = await LoopbackCoordinator.StartAsync(more);
        var run = second.Services.GetRequiredService<CoordinatorRun>();
        Assert.Equal("2", run.ModelVersion);
        Assert.Equal(3, run.Round);
        long[] finals = await RunClientsAsync(second.Address, 3, ct);
        Assert.All(finals, f => Assert.Equal(3, f));
        var manifest = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(_folder, "checkpoint.json"))).RootElement;
        Assert.Equal(runId, manifest.GetProperty("run_id").GetString());
        Assert.Equal(3, manifest.GetProperty("rounds").GetProperty("last_completed_round").GetInt32());
        Assert.Equal(["model-round-0002.safetensors", "model-round-0003.safetensors"], Directory.GetFiles(_folder, "model-round-*").Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task Checkpoints_OtherStrategyOrDamagedModel_RefusedAtStartNamingTheCause()
    {
        var ct = TestContext.Current.CancellationToken;
        await using (var first = await LoopbackCoordinator.StartAsync(Settings("wm", rounds: 1)))
        {
            await RunClientsAsync(first.Address, 3, ct);
        }

        var otherStrategy = await Assert.ThrowsAnyAsync<Exception>(() => LoopbackCoordinator.StartAsync(Settings("fedavg", rounds: 2)));
        Assert.Contains("Coordinator:Strategy", Flatten(otherStrategy), StringComparison.Ordinal);

        string model = Path.Combine(_folder, "model-round-0001.safetensors");
        byte[] bytes = await File.ReadAllBytesAsync(model, ct);
        bytes[^1] ^= 0x40;
        await File.WriteAllBytesAsync(model, bytes, ct);
        var damaged = await Assert.ThrowsAnyAsync<Exception>(() => LoopbackCoordinator.StartAsync(Settings("wm", rounds: 2)));
        Assert.Contains("model-round-0001.safetensors", Flatten(damaged), StringComparison.Ordinal);
        Assert.Contains("SHA-256", Flatten(damaged), StringComparison.Ordinal);
    }

    private static string Flatten(Exception e) => e.InnerException is null ? e.Message : e.Message + " | " + Flatten(e.InnerException);
}
