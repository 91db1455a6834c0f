using System.Diagnostics;
using System.Globalization;
using FedRebasin.Client;
using FedRebasin.Coordinator;
using FedRebasin.Data;
using FedRebasin.Federation.Strategies;
using FedRebasin.Models;
using FedRebasin.Tensors;
using FedRebasin.Torch;
using FedRebasin.Training;

namespace FedRebasin.Simulation;

/// <summary>Where a running simulation is.</summary>
/// <param name="Strategy">The strategy being run.</param>
/// <param name="StrategyIndex">Its position (0-based) among the strategies.</param>
/// <param name="Strategies">How many strategies there are.</param>
/// <param name="Round">The last completed round (0 before the first).</param>
/// <param name="Rounds">Rounds per strategy.</param>
/// <param name="Accuracy">Test accuracy after that round (NaN before the first).</param>
/// <param name="Failure">Set once when the strategy's run stopped early (see <see cref="StrategyResult.Failure"/>).</param>
public sealed record SimulationProgress(string Strategy, int StrategyIndex, int Strategies, int Round, int Rounds, double Accuracy, string? Failure = null);

/// <summary>
/// Runs the one-box simulation: for every strategy, the real coordinator (<see cref="CoordinatorServer"/> on
/// 127.0.0.1) and <see cref="SimulationOptions.Clients"/> real <see cref="ClientWorker"/>s in this process, talking
/// gRPC over loopback exactly as in a multi-node run. Every strategy starts from the same initial model (same seed) and
/// the same splits; at most <see cref="SimulationOptions.MaxConcurrentClients"/> clients compute at once.
/// </summary>
public static class SimulationRunner
{
    /// <summary>Attempts of one round before a strategy's run is reported as failed (Coordinator:MaxRoundAttempts).</summary>
    public const int MaxRoundAttempts = 3;

    /// <summary>
    /// Runs every strategy in turn and returns the results, to be written to the output folder by
    /// <see cref="SimulationReport.Write"/>; the results of the strategies finished so far are written there after each
    /// one but the last (<c>complete</c> false in <c>results.json</c>).
    /// </summary>
    /// <exception cref="ArgumentException">The options are invalid.</exception>
    /// <param name="options">What to run.</param>
    /// <param name="progress">Told after each round; may be null.</param>
    /// <param name="cancellationToken">Stops the run.</param>
    /// <param name="clientMetrics">Instruments every client worker records into (the one-box run shares one set); may be null.</param>
    public static async Task<SimulationResult> RunAsync(SimulationOptions options, IProgress<SimulationProgress>? progress, CancellationToken cancellationToken, ClientMetrics? clientMetrics = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        // Before the first tensor op: threads LibTorch has not seen yet start with this count too.
        TorchThreads.UseOnThisThread(options.EffectiveTorchThreadsPerClient);
        var train = DatasetCatalog.Load(options.Dataset, DataSplit.Train, options.DataDirectory);
        var test = DatasetCatalog.Load(options.Dataset, DataSplit.Test, options.DataDirectory);
        var started = Stopwatch.StartNew();
        var runs = new List<StrategyResult>();
        using var testData = TensorData.Sample(test, options.EvaluationExamples, options.Seed, TorchDevices.Resolve(options.Device));
        for (int i = 0; i < options.Strategies.Count; i++)
        {
            runs.Add(await RunStrategyAsync(options, train, testData, options.Strategies[i], i, progress, clientMetrics, cancellationToken).ConfigureAwait(false));
            if (i < options.Strategies.Count - 1)
            {
                // The results so far, so that a run stopped (Ctrl+C) or failed in a later strategy keeps the finished ones.
                SimulationReport.Write(Result(options, [.. runs], started));
            }
        }

        return Result(options, runs, started);
    }

    private static SimulationResult Result(SimulationOptions options, IReadOnlyList<StrategyResult> runs, Stopwatch started)
    {
        using var self = Process.GetCurrentProcess();
        return new SimulationResult(options, runs, started.Elapsed.TotalSeconds, self.PeakWorkingSet64);
    }

    private static async Task<StrategyResult> RunStrategyAsync(
        SimulationOptions options, ImageDataset train, TensorData testData, StrategySpec strategy, int index, IProgress<SimulationProgress>? progress, ClientMetrics? clientMetrics, CancellationToken cancellationToken)
    {
        string name = strategy.ToString();
        string folder = Path.Combine(Path.GetFullPath(options.OutputDirectory), SimulationReport.FolderName(strategy), "checkpoints");
        if (Directory.Exists(folder))
        {
            // A fresh run: an old checkpoint would make the coordinator resume instead.
            Directory.Delete(folder, recursive: true);
        }

        progress?.Report(new SimulationProgress(name, index, options.Strategies.Count, 0, options.Rounds, double.NaN));
        var watch = Stopwatch.StartNew();
        await using var server = await CoordinatorServer.StartAsync(CoordinatorSettings(options, train, strategy, folder), cancellationToken: cancellationToken).ConfigureAwait(false);
        using var slots = new SemaphoreSlim(options.MaxConcurrentClients, options.MaxConcurrentClients);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var lastRound = new FinalRoundModels(options.Rounds);
        var workers = Enumerable.Range(0, options.Clients)
            .Select(i => Task.Run(() => new ClientWorker(ClientSettings(options, train, server.Address, slots, i, lastRound.Offer), metrics: clientMetrics).RunAsync(stop.Token), stop.Token))
            .ToList();
        var run = server.Run;
        var done = run.WaitUntilDoneAsync(stop.Token);
        int reported = 0;
        while (!done.IsCompleted)
        {
            await Task.WhenAny(done, Task.Delay(TimeSpan.FromMilliseconds(250), stop.Token)).ConfigureAwait(false);
            var rounds = run.CompletedRounds;
            if (rounds.Count > reported)
            {
                reported = rounds.Count;
                progress?.Report(new SimulationProgress(name, index, options.Strategies.Count, rounds[^1].Round, options.Rounds, rounds[^1].Accuracy));
            }

            if (workers.FindIndex(w => w.IsFaulted) is int failed and >= 0)
            {
                // A client that gave up would leave the run waiting forever: stop and report its error.
                await stop.CancelAsync().ConfigureAwait(false);
                var error = workers[failed].Exception!.GetBaseException();
                throw new InvalidOperationException(string.Create(CultureInfo.InvariantCulture,
                    $"{name}: client {failed} stopped after round {run.CompletedRounds.Count}: {error.Message}"), error);
            }
        }

        string? failure = null;
        try
        {
            await done.ConfigureAwait(false);
        }
        catch (InvalidOperationException e) when (run.StopReason is not null)
        {
            // The strategy's run gave up (every client's training diverged, round after round): report it with the
            // rounds it completed and go on with the next strategy; the workers were told the run is over.
            failure = e.Message;
            progress?.Report(new SimulationProgress(name, index, options.Strategies.Count, run.CompletedRounds.Count, options.Rounds, double.NaN, failure));
        }

        await Task.WhenAll(workers).WaitAsync(TimeSpan.FromMinutes(1), cancellationToken).ConfigureAwait(false);
        double seconds = watch.Elapsed.TotalSeconds;
        // After the awaits this may be any thread: the same thread count as the run's, so its curve is reproducible.
        TorchThreads.UseOnThisThread(options.EffectiveTorchThreadsPerClient);
        var interpolation = failure is null ? InterpolateLastMerge(lastRound.Kept(), testData, options.Seed) : null;
        return new StrategyResult(name, run.CompletedRounds, seconds, folder, failure, interpolation);
    }

    /// <summary>
    /// The line between the final round's two largest clients' models, as trained and weight-matched (after the run, so
    /// not in its time); null with fewer than two.
    /// </summary>
    private static ClientInterpolation? InterpolateLastMerge(IReadOnlyList<TrainedModel> kept, TensorData testData, int seed)
    {
        if (kept.Count < 2)
        {
            return null;
        }

        using var a = Load(kept[0]);
        using var b = Load(kept[1]);
        return ClientInterpolation.Compute(kept[0].ClientIndex, a, kept[1].ClientIndex, b, testData, seed);
        ClassifierModel Load(TrainedModel m) =>
            ModelFile.FromSafeTensors(SafeTensors.Parse(m.SafeTensors, m.ClientId), $"{m.ClientId}'s round {m.Round} model", testData.Features.device);
    }

    private static Dictionary<string, string?> CoordinatorSettings(SimulationOptions options, ImageDataset train, StrategySpec strategy, string checkpoints)
    {
        string Invariant(FormattableString text) => FormattableString.Invariant(text);
        var settings = new Dictionary<string, string?>
        {
            ["Coordinator:Strategy"] = strategy.ToString(),
            ["Coordinator:Rounds"] = Invariant($"{options.Rounds}"),
            ["Coordinator:MinClients"] = Invariant($"{options.Clients}"),
            ["Coordinator:FractionPerRound"] = options.FractionPerRound.ToString("R", CultureInfo.InvariantCulture),
            ["Coordinator:Seed"] = Invariant($"{options.Seed}"),
            ["Coordinator:Model:Architecture"] = options.Model,
            ["Coordinator:Model:InputShape"] = Invariant($"{train.Channels},{train.Height},{train.Width}"),
            ["Coordinator:Model:Classes"] = Invariant($"{train.ClassCount}"),
            ["Coordinator:Model:WidthMultiplier"] = options.WidthMultiplier.ToString("R", CultureInfo.InvariantCulture),
            ["Coordinator:Training:LocalEpochs"] = Invariant($"{options.LocalEpochs}"),
            ["Coordinator:Training:BatchSize"] = Invariant($"{options.BatchSize}"),
            ["Coordinator:Training:LearningRate"] = options.LearningRate.ToString("R", CultureInfo.InvariantCulture),
            ["Coordinator:Evaluation:Dataset"] = options.Dataset,
            ["Coordinator:Evaluation:Directory"] = options.DataDirectory,
            ["Coordinator:Evaluation:Examples"] = Invariant($"{options.EvaluationExamples}"),
            ["Coordinator:EvaluateUpdates"] = options.EvaluateUpdates ? "true" : "false",
            ["Coordinator:CheckpointDirectory"] = checkpoints,
            ["Coordinator:RepairTargets"] = options.RepairTargets,
            ["Coordinator:RepairRounds"] = Invariant($"{options.RepairRounds}"),
            ["Coordinator:RepairStrength"] = options.RepairStrength.ToString("R", CultureInfo.InvariantCulture),
            ["Coordinator:RepairMaxScale"] = options.RepairMaxScale.ToString("R", CultureInfo.InvariantCulture),
            // One process, one box: short polls and ticks keep the round overhead low; callers are our own workers.
            ["Coordinator:PollWindow"] = "00:00:02",
            ["Coordinator:TickInterval"] = "00:00:00.050",
            ["Coordinator:MaxRequestsPerSecond"] = "0",
            ["Coordinator:TorchThreads"] = Invariant($"{options.EffectiveTorchThreadsPerClient}"),
            // Clients wait for compute slots, so a round waits for every participant however long it takes (no grace
            // period cutting off the slow ones, which would make runs differ); a participant whose update is refused
            // for diverged weights is excluded, and the round closes with the others.
            ["Coordinator:TrainingDeadline"] = "7.00:00:00",
            ["Coordinator:GracePeriod"] = "7.00:00:00",
            ["Coordinator:MinResponses"] = "1",
            // Retries of a round whose every client diverged diverge the same way (same model, same seeds).
            ["Coordinator:MaxRoundAttempts"] = Invariant($"{MaxRoundAttempts}"),
        };
        if (options.CalibrationExamples > 0)
        {
            settings["Coordinator:Calibration:Dataset"] = options.Dataset;
            settings["Coordinator:Calibration:Directory"] = options.DataDirectory;
            settings["Coordinator:Calibration:Examples"] = Invariant($"{options.CalibrationExamples}");
        }

        for (int i = 0; i < options.Hidden.Count; i++)
        {
            settings[Invariant($"Coordinator:Model:Hidden:{i}")] = Invariant($"{options.Hidden[i]}");
        }

        return settings;
    }

    private static ClientOptions ClientSettings(SimulationOptions options, ImageDataset train, Uri address, SemaphoreSlim slots, int index, Action<TrainedModel> modelTrained) => new()
    {
        ModelTrained = modelTrained,
        CoordinatorAddress = address,
        ClientId = string.Create(CultureInfo.InvariantCulture, $"client-{index:D3}"),
        Dataset = train,
        Partition = options.Partition,
        Clients = options.Clients,
        ClientIndex = index,
        PartitionSeed = options.Seed,
        Device = options.Device,
        ComputeSlots = slots,
        TorchThreads = options.EffectiveTorchThreadsPerClient,
        PollTimeout = TimeSpan.FromSeconds(10),
        Retry = new RetrySettings { BaseDelay = TimeSpan.FromMilliseconds(100), MaxDelay = TimeSpan.FromSeconds(2) },
    };
}
