using System.Text.Json;
using FedRebasin.Client;
using FedRebasin.Coordinator;
using FedRebasin.Data;
using FedRebasin.Federation.Strategies;
using FedRebasin.Models;
using FedRebasin.Tensors;
using FedRebasin.Training;

namespace FedRebasin.Simulation.Tests;

public sealed class SimulationOptionsTests
{
    [Fact]
    public void Validate_BadSettings_NameEachOption()
    {
        var options = new SimulationOptions { Dataset = "imagenet", Clients = 0, Partition = "zipf", Rounds = 0, Strategies = [StrategySpec.FedAvg, StrategySpec.FedAvg], WidthMultiplier = 0, LearningRate = 11, RepairRounds = -1, RepairStrength = 2, RepairMaxScale = 0.9, TorchThreadsPerClient = -1 };

        var error = Assert.Throws<ArgumentException>(options.Validate);

        foreach (string option in new[] { "--dataset", "--clients", "--partition", "--rounds", "--strategies", "--width", "--lr", "--repair-rounds", "--repair-strength", "--repair-max-scale", "--torch-threads" })
        {
            Assert.Contains(option, error.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void EffectiveTorchThreadsPerClient_ZeroSharesTheMachineOutAmongConcurrentClients_ElseAsGiven()
    {
        Assert.Equal(FedRebasin.Torch.TorchThreads.PerConcurrentWork(2), new SimulationOptions { MaxConcurrentClients = 2 }.EffectiveTorchThreadsPerClient);
        Assert.Equal(FedRebasin.Torch.TorchThreads.Budget, new SimulationOptions { MaxConcurrentClients = 1 }.EffectiveTorchThreadsPerClient);
        Assert.Equal(1, new SimulationOptions { MaxConcurrentClients = 1_000 }.EffectiveTorchThreadsPerClient);
        Assert.Equal(3, new SimulationOptions { MaxConcurrentClients = 2, TorchThreadsPerClient = 3 }.EffectiveTorchThreadsPerClient);
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

    [Fact]
    public void Ranking_StoppedRunsLastAndSaySo()
    {
        RoundSummary Round(int round, double accuracy) => new(round, 3, 300, accuracy, 1.0, accuracy, 1.0, 1.0, 1.0, 1000, double.NaN, double.NaN, "none");
        var result = new SimulationResult(new SimulationOptions(), [
            new StrategyResult("wm+repair", [Round(1, 0.9)], 10, "x", "The run stopped: round 2 was abandoned 3 times (...)."),
            new StrategyResult("fedavg", [Round(1, 0.5), Round(2, 0.6)], 10, "y"),
        ], 20, 0);

        var rows = SimulationReport.Ranking(result);

        Assert.Equal(["fedavg", "wm+repair"], rows.Select(r => r.Strategy));
        Assert.Equal("60.00 %", rows[0].Final);
        Assert.Equal("stopped after round 1 (90.00 %)", rows[1].Final);
    }
}

/// <summary>Whole simulations on the catalog's synthetic data (1x28x28, 10 classes): real coordinator, real clients.</summary>
[Trait("Category", "Integration")]
public sealed class SimulationRunTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("fedrebasin-sim-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    /// <summary>A small run on the catalog's synthetic data: 3 clients, Dirichlet 0.5, fedavg and wm+repair, 2 rounds.</summary>
    internal static SimulationOptions Small(string outputDirectory, int seed) => new()
    {
        Dataset = "synthetic",
        Hidden = [32],
        Clients = 3,
        Partition = "dirichlet:0.5",
        Rounds = 2,
        Strategies = [StrategySpec.FedAvg, StrategySpec.Parse("wm+repair")],
        Seed = seed,
        EvaluationExamples = 500,
        OutputDirectory = outputDirectory,
    };

    private SimulationOptions Small(string name) => Small(Path.Combine(_folder, name), seed: 3);

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
        // From the clients' statistics answers: the merge kept a positive share of the clients' variance; nothing is
        // measured after the one-pass correction.
        Assert.All(result.Runs[1].Rounds, x => Assert.InRange(x.VarianceRatioBefore, 1e-6, 10.0));
        Assert.All(result.Runs[1].Rounds, x => Assert.True(double.IsNaN(x.VarianceRatioAfter)));
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
        using var settings = JsonDocument.Parse(await File.ReadAllBytesAsync(Path.Combine(_folder, "a", "settings.json"), TestContext.Current.CancellationToken));
        Assert.Equal(result.Options.EffectiveTorchThreadsPerClient, settings.RootElement.GetProperty("effective_torch_threads_per_client").GetInt32());
        Assert.Equal(2, json.RootElement.GetProperty("strategies").GetArrayLength());
        Assert.True(json.RootElement.GetProperty("complete").GetBoolean());
        Assert.Equal(3, (await File.ReadAllLinesAsync(Path.Combine(_folder, "a", "wm+repair", "rounds.csv"), TestContext.Current.CancellationToken)).Length);
        // Per-group alignment: every round of the aligned strategy names its groups; the unaligned one has none.
        Assert.All(result.Runs[1].Rounds, x => Assert.NotEmpty(x.Groups!));
        Assert.All(result.Runs[1].Rounds.SelectMany(x => x.Groups!), g => Assert.InRange(g.IdentityFraction, 0.0, 1.0));
        Assert.All(result.Runs[0].Rounds, x => Assert.Empty(x.Groups!));
        int groups = result.Runs[1].Rounds[0].Groups!.Count;
        Assert.Equal(1 + (2 * groups), (await File.ReadAllLinesAsync(Path.Combine(_folder, "a", "wm+repair", "alignment.csv"), TestContext.Current.CancellationToken)).Length);
        Assert.Contains(Path.Combine(_folder, "a", "wm+repair", "alignment-gain.png"), files);
        Assert.DoesNotContain(Path.Combine(_folder, "a", "fedavg", "alignment-gain.png"), files);
        // The last merge's interpolation curve runs between the final round's two largest clients' models; weight
        // matching only relabels hidden units, so both curves start at the same model and end at equivalent ones.
        var splits = Partitioner.Partition(DatasetCatalog.Load("synthetic", DataSplit.Train), 3, PartitionSpec.Parse("dirichlet:0.5"), 3);
        int[] largest = [.. Enumerable.Range(0, 3).OrderByDescending(i => splits[i].Length).ThenBy(i => i).Take(2)];
        Assert.All(result.Runs, r =>
        {
            var line = r.LastMerge!;
            Assert.Equal((largest[0], largest[1]), (line.From, line.To));
            Assert.Equal(ClientInterpolation.Steps, line.Alphas.Count);
            Assert.Equal(line.Naive.Loss[0], line.Aligned.Loss[0], 12);
            Assert.Equal(line.Naive.Loss[^1], line.Aligned.Loss[^1], 4);
            Assert.Equal(line.Naive.Accuracy[^1], line.Aligned.Accuracy[^1], 3);
            Assert.True(double.IsFinite(line.Naive.LossBarrier) && double.IsFinite(line.Aligned.LossBarrier));
            Assert.Contains(Path.Combine(_folder, "a", r.Strategy, "interpolation.png"), files);
        });
        var lastMerge = json.RootElement.GetProperty("strategies")[0].GetProperty("last_merge_interpolation");
        Assert.Equal(ClientInterpolation.Steps, lastMerge.GetProperty("aligned").GetProperty("accuracy").GetArrayLength());
        Assert.Contains("→", SimulationReport.Ranking(result)[0].LastMergeBarrier, StringComparison.Ordinal);
        foreach (string png in files.Where(f => f.EndsWith(".png", StringComparison.Ordinal)))
        {
            byte[] head = (await File.ReadAllBytesAsync(png, TestContext.Current.CancellationToken))[..4];
            Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, head);
        }
    }

    [Fact]
    public async Task RunAsync_StoppedInTheSecondStrategy_TheFirstStrategysResultsAreOnDisk()
    {
        // Stop the run as a user's Ctrl+C would, once the second strategy's coordinator starts.
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        var options = Small("stopped");
        var progress = new SynchronousProgress(p =>
        {
            if (p.StrategyIndex == 1)
            {
                stop.Cancel();
            }
        });

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => SimulationRunner.RunAsync(options, progress, stop.Token));

        using var results = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(options.OutputDirectory, "results.json")));
        Assert.False(results.RootElement.GetProperty("complete").GetBoolean());
        var strategies = results.RootElement.GetProperty("strategies").EnumerateArray().ToList();
        Assert.Equal(["fedavg"], strategies.Select(x => x.GetProperty("strategy").GetString()));
        Assert.Equal([1, 2], strategies[0].GetProperty("rounds").EnumerateArray().Select(r => r.GetProperty("round").GetInt32()));
        Assert.True(File.Exists(Path.Combine(options.OutputDirectory, "fedavg", "rounds.csv")));
    }

    [Fact]
    public async Task RunAsync_RepairRounds_RepairsOnlyTheFirstRounds()
    {
        var options = Small("r") with { Rounds = 3, Strategies = [StrategySpec.Parse("wm+repair")], RepairRounds = 1 };

        var run = (await SimulationRunner.RunAsync(options, null, TestContext.Current.CancellationToken)).Runs[0];

        Assert.Equal(["statistics", "none", "none"], run.Rounds.Select(r => r.Repair));
        Assert.True(run.Rounds[0].RepairPointsCorrected > 0);
        Assert.All(run.Rounds.Skip(1), r => Assert.Equal(0, r.RepairPointsCorrected));
        // Later rounds ask clients for no moments and measure nothing for repair.
        Assert.All(run.Rounds.Skip(1), r => Assert.True(double.IsNaN(r.VarianceRatioBefore)));
    }

    [Fact]
    public void FinalRoundModels_KeepsTheTwoLargestOfTheFinalRound_ARetryReplaces()
    {
        var kept = new FinalRoundModels(finalRound: 4);

        kept.Offer(Model(0, 3, 900, 1));
        kept.Offer(Model(1, 4, 100, 2));
        kept.Offer(Model(2, 4, 300, 3));
        kept.Offer(Model(3, 4, 300, 4));
        kept.Offer(Model(4, 4, 200, 5));
        kept.Offer(Model(2, 4, 300, 6));

        Assert.Equal([(2, 6f), (3, 4f)], kept.Kept().Select(m => (m.ClientIndex, Tag(m))));
    }

    [Theory]
    [InlineData(float.NaN)]
    [InlineData(float.PositiveInfinity)]
    public void FinalRoundModels_ADivergedModel_IsNotKept(float bad)
    {
        // A diverged client's model was kept as an interpolation endpoint, and weight matching on it failed the whole
        // run after its last round ("Cost matrix entry (0, 0) is NaN"), losing every result.
        var kept = new FinalRoundModels(finalRound: 4);

        kept.Offer(Model(0, 4, 900, bad));
        kept.Offer(Model(1, 4, 200, 2));
        kept.Offer(Model(2, 4, 100, 3));

        Assert.Equal([1, 2], kept.Kept().Select(m => m.ClientIndex));
    }

    /// <summary>A one-tensor model whose first weight is <paramref name="tag"/>.</summary>
    private static TrainedModel Model(int index, long round, long samples, float tag) =>
        new($"client-{index}", index, round, samples, SafeTensors.ToBytes(new SafeTensorsFile([TensorEntry.FromFloat32("w", [2], [tag, 0.5f])])));

    private static float Tag(TrainedModel model) => SafeTensors.Parse(model.SafeTensors, model.ClientId)["w"].ToFloat32Array()[0];

    [Fact]
    public async Task RunAsync_SameSeedTwice_SameNumbers()
    {
        var options = Small("b") with { Strategies = [StrategySpec.Parse("wm+repair")] };

        var first = await SimulationRunner.RunAsync(options, null, TestContext.Current.CancellationToken);
        var second = await SimulationRunner.RunAsync(options with { OutputDirectory = Path.Combine(_folder, "c") }, null, TestContext.Current.CancellationToken);

        Assert.Equal(first.Runs[0].Rounds.Select(r => (r.Accuracy, r.Loss)), second.Runs[0].Rounds.Select(r => (r.Accuracy, r.Loss)));
    }

    /// <summary>Calls <paramref name="report"/> on the reporting thread (Progress&lt;T&gt; would post it later).</summary>
    private sealed class SynchronousProgress(Action<SimulationProgress> report) : IProgress<SimulationProgress>
    {
        public void Report(SimulationProgress value) => report(value);
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

/// <summary>One-shot merging on the catalog's synthetic data: real training from separate initialisations, real merges.</summary>
[Trait("Category", "Integration")]
public sealed class OneShotRunTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("fedrebasin-oneshot-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private SimulationOptions Small(string name) =>
        SimulationRunTests.Small(Path.Combine(_folder, name), seed: 5) with { LocalEpochs = 1, CalibrationExamples = 300, OneShot = true };

    [Fact]
    public async Task RunAsync_MergesOnce_ComparesWithBestSingleAndEnsemble_WritesFiles()
    {
        var lines = new List<string>();
        var options = Small("a") with { SaveClientModels = true };
        var result = await OneShotRunner.RunAsync(options, new Lines(lines), TestContext.Current.CancellationToken);
        var files = OneShotReport.Write(result);

        Assert.Equal(["fedavg", "wm+repair", "mergemany+repair", "best-single", "client-mean", "ensemble"], result.Methods.Select(m => m.Name));
        Assert.Equal(3, result.Clients.Count);
        Assert.Equal(3, result.Clients.Select(c => c.InitialSeed).Distinct().Count());
        Assert.All(result.Methods, m => Assert.InRange(m.Accuracy, 0.0, 1.0));
        Assert.Equal(result.Clients.Max(c => c.Accuracy), result.BestSingle.Accuracy);
        Assert.Equal(result.Clients.Average(c => c.Accuracy), result.Methods.Single(m => m.Kind == OneShotKind.ClientMean).Accuracy, 12);
        var wm = result.Methods.Single(m => m.Name == "wm+repair");
        // The reference of weight matching is the client with the most examples.
        Assert.Equal(result.Clients.MaxBy(c => c.Examples)!.Index, wm.ReferenceClient);
        Assert.InRange(wm.IdentityFraction, 0.0, 1.0);
        Assert.True(wm.RepairPointsCorrected > 0);
        Assert.True(result.Methods.Single(m => m.Name == "mergemany+repair").MergeManyRounds >= 1);
        Assert.Null(result.Methods.Single(m => m.Name == "fedavg").ReferenceClient);
        Assert.Equal(300, result.CalibrationExamples);
        Assert.NotEmpty(result.Groups);
        // Interpolation: the endpoints of both curves are the two client models themselves.
        var curve = result.Interpolation!;
        var from = result.Clients[curve.From];
        var to = result.Clients[curve.To];
        Assert.Equal(from.Accuracy, curve.Naive.Accuracy[0], 12);
        Assert.Equal(to.Accuracy, curve.Naive.Accuracy[^1], 12);
        Assert.Equal(to.Accuracy, curve.Aligned.Accuracy[^1], 12);
        Assert.Equal(3, lines.Count(l => l.StartsWith("client ", StringComparison.Ordinal)));

        foreach (string name in new[] { "settings.json", "results.json", "one-shot.csv", "one-shot-accuracy.png", "interpolation.png", "alignment-gain.png" })
        {
            Assert.Contains(Path.Combine(Path.GetFullPath(Small("a").OutputDirectory), name), files);
        }

        using var json = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(_folder, "a", "results.json")));
        Assert.Equal("one-shot", json.RootElement.GetProperty("mode").GetString());
        Assert.Equal(6, json.RootElement.GetProperty("methods").GetArrayLength());
        Assert.Equal(7, File.ReadAllLines(Path.Combine(_folder, "a", "one-shot.csv")).Length);
        var ranking = OneShotReport.Ranking(result);
        Assert.Equal(6, ranking.Count);

        // The saved client models are the trained ones: evaluated on the same test sample, the same accuracy.
        using var testData = TensorData.Sample(
            DatasetCatalog.Load(options.Dataset, DataSplit.Test, options.DataDirectory), options.EvaluationExamples, options.Seed, TorchSharp.torch.CPU);
        foreach (var client in result.Clients)
        {
            using var model = ModelFile.Load(OneShotRunner.ClientModelPath(options.OutputDirectory, client.Index));
            Assert.Equal(client.Accuracy, Evaluator.Evaluate(model, testData).Accuracy, 12);
        }
    }

    [Fact]
    public void Validate_SaveClientModelsWithoutOneShot_Refused()
    {
        var error = Assert.Throws<ArgumentException>(() => (Small("d") with { OneShot = false, SaveClientModels = true }).Validate());

        Assert.Contains("--save-client-models", error.Message, StringComparison.Ordinal);
        Assert.Contains("needs --one-shot", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RunAsync_SameSeedAndThreadsTwice_SameNumbers_WhateverTheConcurrency()
    {
        // The thread count is fixed: left to its default it follows the concurrency, and LibTorch's results depend on it
        // in the last digits.
        var options = Small("b") with { MaxConcurrentClients = 3, TorchThreadsPerClient = 1 };
        var first = await OneShotRunner.RunAsync(options, null, TestContext.Current.CancellationToken);
        var second = await OneShotRunner.RunAsync(options with { MaxConcurrentClients = 1 }, null, TestContext.Current.CancellationToken);

        Assert.Equal(first.Methods.Select(m => (m.Name, m.Accuracy, m.Loss)), second.Methods.Select(m => (m.Name, m.Accuracy, m.Loss)));
        Assert.Equal(first.Clients.Select(c => c.TrainingLoss), second.Clients.Select(c => c.TrainingLoss));
    }

    [Fact]
    public async Task RunAsync_SeedTrials_EachAlignedMergeIsTheBestOfItsTrialsOnValidation_ReportedInResults()
    {
        var lines = new List<string>();
        var options = Small("e") with { SeedTrials = 3, ValidationExamples = 200 };

        var result = await OneShotRunner.RunAsync(options, new Lines(lines), TestContext.Current.CancellationToken);
        OneShotReport.Write(result);

        Assert.Equal(200, result.ValidationExamples);
        var fedavg = result.Methods.Single(m => m.Name == "fedavg");
        Assert.Null(fedavg.MatchingSeed);
        Assert.Null(fedavg.SeedTrials);
        foreach (string name in new[] { "wm+repair", "mergemany+repair" })
        {
            var method = result.Methods.Single(m => m.Name == name);
            Assert.Equal([5L, 6, 7], method.SeedTrials!.Select(t => t.Seed));
            Assert.Equal(method.SeedTrials!.OrderByDescending(t => t.ValidationAccuracy).ThenBy(t => t.ValidationLoss).First().Seed, method.MatchingSeed);
            Assert.Contains(lines, l => l.StartsWith(name + ": ", StringComparison.Ordinal) && l.Contains($"seed {method.MatchingSeed} kept of 3", StringComparison.Ordinal));
        }

        using var json = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(_folder, "e", "results.json")));
        Assert.Equal(200, json.RootElement.GetProperty("validation_examples").GetInt32());
        var wmJson = json.RootElement.GetProperty("methods").EnumerateArray().Single(m => m.GetProperty("name").GetString() == "wm+repair");
        Assert.Equal(3, wmJson.GetProperty("seed_trials").GetArrayLength());
        Assert.Equal(result.Methods.Single(m => m.Name == "wm+repair").MatchingSeed, wmJson.GetProperty("matching_seed").GetInt64());
        string[] csv = File.ReadAllLines(Path.Combine(_folder, "e", "one-shot.csv"));
        Assert.EndsWith(",matching_seed,seed_trials", csv[0], StringComparison.Ordinal);
        Assert.EndsWith(",,0", csv.Single(l => l.StartsWith("fedavg,", StringComparison.Ordinal)), StringComparison.Ordinal);
        Assert.EndsWith($",{result.Methods.Single(m => m.Name == "wm+repair").MatchingSeed},3", csv.Single(l => l.StartsWith("wm+repair,", StringComparison.Ordinal)), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(false, 2, 100, "--seed-trials", "needs --one-shot")]
    [InlineData(true, 0, 100, "--seed-trials", "must be at least 1")]
    [InlineData(true, 2, 0, "--validation", "must be at least 1")]
    public void Validate_BadSeedSearch_NamesTheOption(bool oneShot, int trials, int validation, string option, string rule)
    {
        var error = Assert.Throws<ArgumentException>(() => (Small("f") with { OneShot = oneShot, SeedTrials = trials, ValidationExamples = validation }).Validate());

        Assert.Contains($"{option} {rule}", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RunAsync_SeedTrialsWithCalibrationTakingEveryExample_RefusedBeforeTraining()
    {
        var lines = new List<string>();

        var error = await Assert.ThrowsAsync<ArgumentException>(() => OneShotRunner.RunAsync(Small("g") with { SeedTrials = 2, CalibrationExamples = 1_000_000 }, new Lines(lines), TestContext.Current.CancellationToken));

        Assert.Contains("leaves none for --validation", error.Message, StringComparison.Ordinal);
        Assert.Empty(lines);
    }

    [Fact]
    public void Validate_OneShotWithOneClient_Refused()
    {
        var error = Assert.Throws<ArgumentException>(() => (Small("c") with { Clients = 1 }).Validate());

        Assert.Contains("--clients", error.Message, StringComparison.Ordinal);
        Assert.Contains("--one-shot", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void MergePlan_EveryStrategy_ThenMergeManyTwinsOfTheAligned()
    {
        var options = Small("d") with { Strategies = StrategySpec.ParseList("fedavg,wm,wm+rescale,fedavg+repair,wm+median") };

        var plan = OneShotRunner.MergePlan(options);

        Assert.Equal(["fedavg", "wm", "wm+rescale", "fedavg+repair", "wm+median", "mergemany", "mergemany+rescale", "mergemany+median"], plan.Select(p => p.Name));
    }

    private sealed class Lines(List<string> lines) : IProgress<string>
    {
        public void Report(string value)
        {
            lock (lines)
            {
                lines.Add(value);
            }
        }
    }
}
