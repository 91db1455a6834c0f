using System.Diagnostics;
using System.Globalization;
using FedRebasin.Data;
using FedRebasin.Federation.Strategies;
using FedRebasin.Merging;
using FedRebasin.Merging.Interpolation;
using FedRebasin.Merging.Matching;
using FedRebasin.Merging.Repair;
using FedRebasin.Models;
using FedRebasin.Models.Permutations;
using FedRebasin.Torch;
using FedRebasin.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace FedRebasin.Simulation;

/// <summary>One client of a one-shot run: its split, its own initialisation and how its model scores alone.</summary>
/// <param name="Index">Client index (0-based).</param>
/// <param name="Examples">Training examples in its split.</param>
/// <param name="InitialSeed">Seed of its initial weights (every client starts from its own).</param>
/// <param name="TrainingLoss">Mean training loss of its last epoch.</param>
/// <param name="Loss">Test loss of its model.</param>
/// <param name="Accuracy">Test accuracy of its model.</param>
/// <param name="Seconds">Its training time.</param>
public sealed record OneShotClient(int Index, int Examples, long InitialSeed, double TrainingLoss, double Loss, double Accuracy, double Seconds);

/// <summary>How a one-shot method was made.</summary>
public enum OneShotKind
{
    /// <summary>A merge of all client models (alignment, aggregation, repair).</summary>
    Merge,

    /// <summary>The client model with the best test accuracy (an oracle pick: a deployment could not see the test set).</summary>
    BestSingle,

    /// <summary>The mean test figures of the client models.</summary>
    ClientMean,

    /// <summary>The ensemble of all client models (mean of their softmax outputs): N models at inference.</summary>
    Ensemble,
}

/// <summary>One row of a one-shot comparison.</summary>
/// <param name="Name">Method name: a strategy (<c>fedavg</c>, <c>wm+repair</c>), its MergeMany twin (<c>mergemany+repair</c>), <c>best-single</c>, <c>client-mean</c> or <c>ensemble</c>.</param>
/// <param name="Kind">What it is.</param>
/// <param name="Loss">Test loss.</param>
/// <param name="Accuracy">Test accuracy.</param>
/// <param name="Seconds">Merge time (alignment, aggregation, repair; with a seed search, every trial and its validation); 0 for the other kinds.</param>
/// <param name="ReferenceClient">The reference of a weight-matching merge (the client with the most examples); null otherwise.</param>
/// <param name="MergeManyRounds">MergeMany rounds run (1 for other merges, 0 for the other kinds).</param>
/// <param name="IdentityFraction">Mean fraction of units weight matching to the reference left in place (NaN without a reference: naive and MergeMany).</param>
/// <param name="RepairPointsCorrected">Repair points whose statistics were corrected (0 without repair).</param>
/// <param name="MatchingSeed">The matching seed of a merge that aligns (the kept one after a seed search); null otherwise.</param>
/// <param name="SeedTrials">Every trial of the seed search that chose it (<see cref="SimulationOptions.SeedTrials"/> above 1); null otherwise.</param>
public sealed record OneShotMethod(
    string Name,
    OneShotKind Kind,
    double Loss,
    double Accuracy,
    double Seconds,
    int? ReferenceClient = null,
    int MergeManyRounds = 0,
    double IdentityFraction = double.NaN,
    int RepairPointsCorrected = 0,
    long? MatchingSeed = null,
    IReadOnlyList<SeedTrial>? SeedTrials = null);

/// <summary>A whole one-shot run.</summary>
/// <param name="Options">The settings used.</param>
/// <param name="Clients">Each client's model alone.</param>
/// <param name="Methods">Every merge and the comparison rows (best single, client mean, ensemble), in the order run.</param>
/// <param name="Groups">Per permutation group of the first weight-matching merge: objective gain and identity fraction, summed / averaged over the aligned clients.</param>
/// <param name="Interpolation">The interpolation curves between the reference and the next client (null with one client).</param>
/// <param name="CalibrationExamples">Training examples used to measure channel statistics for repair (0 when no strategy repairs).</param>
/// <param name="ValidationExamples">Training examples the seed searches ranked their merges on (0 without a search).</param>
/// <param name="Seconds">Wall time of everything.</param>
/// <param name="PeakWorkingSetBytes">Peak working set of this process.</param>
public sealed record OneShotResult(
    SimulationOptions Options,
    IReadOnlyList<OneShotClient> Clients,
    IReadOnlyList<OneShotMethod> Methods,
    IReadOnlyList<GroupMatch> Groups,
    ClientInterpolation? Interpolation,
    int CalibrationExamples,
    int ValidationExamples,
    double Seconds,
    long PeakWorkingSetBytes)
{
    /// <summary>The best single client's row.</summary>
    public OneShotMethod BestSingle => Methods.First(m => m.Kind == OneShotKind.BestSingle);

    /// <summary>The ensemble's row.</summary>
    public OneShotMethod Ensemble => Methods.First(m => m.Kind == OneShotKind.Ensemble);
}

/// <summary>
/// The Git Re-Basin split-data setting on one box: every client trains its own model from its own initialisation on its
/// own split (<see cref="SimulationOptions.LocalEpochs"/> epochs, no communication), then the models are merged once
/// with each strategy and with MergeMany, and compared with the best single client and the ensemble of all clients.
/// </summary>
/// <remarks>
/// The clients train with the same trainer, split and hyper-parameters as the federation's client workers, and the
/// merges run the merge engine (weight matching, aggregation, REPAIR family) that the coordinator runs. Unlike the
/// multi-round simulation no coordinator is started: a one-shot merge needs a reference among the client models
/// (there is no previous global model) and the whole set of models at once for MergeMany and the ensemble, which the
/// streaming coordinator does not keep. Repair statistics come from a calibration sample of the training split
/// (<see cref="SimulationOptions.CalibrationExamples"/>, <see cref="DefaultCalibrationExamples"/> when 0).
/// </remarks>
public static class OneShotRunner
{
    /// <summary>Calibration sample for repair when <see cref="SimulationOptions.CalibrationExamples"/> is 0.</summary>
    public const int DefaultCalibrationExamples = 2_000;

    /// <summary>Seed of client <paramref name="index"/>'s initial weights in a run seeded <paramref name="seed"/>.</summary>
    public static long InitialSeed(int seed, int index) => ((long)seed * 1_000_003) + 10_000 + index;

    /// <summary>Trains the clients, merges them with every method, evaluates everything.</summary>
    /// <exception cref="ArgumentException">The options are invalid.</exception>
    /// <param name="options">What to run (rounds and fraction are not used).</param>
    /// <param name="progress">Receives a status line after each client and each method; may be null.</param>
    /// <param name="cancellationToken">Stops the training.</param>
    public static async Task<OneShotResult> RunAsync(SimulationOptions options, IProgress<string>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        int threads = options.EffectiveTorchThreadsPerClient;
        TorchThreads.UseOnThisThread(threads);
        var started = Stopwatch.StartNew();
        var train = DatasetCatalog.Load(options.Dataset, DataSplit.Train, options.DataDirectory);
        var test = DatasetCatalog.Load(options.Dataset, DataSplit.Test, options.DataDirectory);
        var device = TorchDevices.Resolve(options.Device);
        var spec = ModelRegistry.DefaultSpec(options.Model, train.Channels, train.Height, train.Width, train.ClassCount, options.Hidden.Count > 0 ? options.Hidden : null, options.WidthMultiplier);
        var splits = Partitioner.Partition(train, options.Clients, PartitionSpec.Parse(options.Partition), options.Seed);
        bool repairs = options.Strategies.Any(s => s.Repair != RepairMode.None);
        int calibrationExamples = repairs ? (options.CalibrationExamples > 0 ? options.CalibrationExamples : DefaultCalibrationExamples) : 0;
        if (options.SeedTrials > 1)
        {
            MatchingSeedSearch.RequireValidationRoom(train.Count, calibrationExamples);
        }

        using var testData = TensorData.Sample(test, options.EvaluationExamples, options.Seed, device);
        var models = new ClassifierModel?[options.Clients];
        try
        {
            var clients = await TrainClientsAsync(options, train, splits, spec, device, testData, models, progress, cancellationToken).ConfigureAwait(false);
            // The merges run on whichever thread resumed here: the same thread count, so they are reproducible.
            TorchThreads.UseOnThisThread(threads);
            var trained = models.Select(m => m!).ToList();
            if (options.SaveClientModels)
            {
                SaveClientModels(trained, options.OutputDirectory, progress);
            }

            double[] weights = [.. clients.Select(c => (double)c.Examples)];
            using var calibration = repairs ? CalibrationData.Create(train, calibrationExamples, options.Seed, device) : null;
            // A seed search ranks merges on training examples after the calibration ones in the same seeded order: never the test sample.
            using var validation = options.SeedTrials > 1 ? TensorData.Sample(train, options.ValidationExamples, options.Seed, device, skip: calibrationExamples) : null;

            var methods = new List<OneShotMethod>();
            IReadOnlyList<GroupMatch> groups = [];
            foreach (var (name, mergeOptions, repair) in MergePlan(options))
            {
                cancellationToken.ThrowIfCancellationRequested();
                var clock = Stopwatch.StartNew();
                bool aligns = mergeOptions.Method != MergeMethod.Naive;
                var search = aligns && validation is not null
                    ? MatchingSeedSearch.Run(trained, weights, mergeOptions, repair, calibration is null ? null : calibration.Batches, validation, options.Seed, options.SeedTrials)
                    : null;
                var merged = search?.Best ?? ModelMerging.Merge(trained, weights, mergeOptions, repair, calibration is null ? null : calibration.Batches);
                double seconds = clock.Elapsed.TotalSeconds;
                using var model = merged.Model;
                var evaluation = Evaluator.Evaluate(model, testData);
                var matches = merged.Merge.Matches.Where(m => m is not null).Select(m => m!).ToList();
                if (groups.Count == 0 && mergeOptions.Method == MergeMethod.WeightMatching && matches.Count > 0)
                {
                    groups = SumGroups(matches);
                }

                var row = new OneShotMethod(
                    name,
                    OneShotKind.Merge,
                    evaluation.Loss,
                    evaluation.Accuracy,
                    seconds,
                    merged.Merge.ReferenceIndex,
                    merged.Merge.Rounds,
                    // MergeMany's last matches are those of its final, unchanged round: their identity fraction says nothing.
                    matches.Count > 0 && mergeOptions.Method == MergeMethod.WeightMatching ? matches.Average(m => m.Groups.Sum(g => g.IdentityFraction * g.Size) / m.Groups.Sum(g => g.Size)) : double.NaN,
                    merged.Repair?.Points.Count(p => p.Corrected) ?? 0,
                    aligns ? search?.BestSeed ?? mergeOptions.Matching.Seed : null,
                    search?.Trials);
                methods.Add(row);
                string chosen = search is null ? "" : string.Create(CultureInfo.InvariantCulture,
                    $", seed {search.BestSeed} kept of {search.Trials.Count} ({search.Trials.Max(t => t.ValidationAccuracy):P2} on validation, worst {search.Trials.Min(t => t.ValidationAccuracy):P2})");
                progress?.Report(string.Create(CultureInfo.InvariantCulture, $"{name}: test accuracy {row.Accuracy:P2}, loss {row.Loss:0.####} ({row.Seconds:0.0} s{chosen})"));
            }

            var best = clients.MaxBy(c => c.Accuracy)!;
            methods.Add(new OneShotMethod("best-single", OneShotKind.BestSingle, best.Loss, best.Accuracy, 0, best.Index));
            methods.Add(new OneShotMethod("client-mean", OneShotKind.ClientMean, clients.Average(c => c.Loss), clients.Average(c => c.Accuracy), 0));
            var ensemble = Evaluator.EvaluateEnsemble(trained, testData);
            methods.Add(new OneShotMethod("ensemble", OneShotKind.Ensemble, ensemble.Loss, ensemble.Accuracy, 0));
            progress?.Report(string.Create(CultureInfo.InvariantCulture, $"best single client {best.Index}: {best.Accuracy:P2}; ensemble of {trained.Count}: {ensemble.Accuracy:P2}"));

            var interpolation = trained.Count > 1 ? Interpolate(trained, weights, testData, options.Seed) : null;
            using var self = Process.GetCurrentProcess();
            return new OneShotResult(options, clients, methods, groups, interpolation, calibrationExamples, validation?.Count ?? 0, started.Elapsed.TotalSeconds, self.PeakWorkingSet64);
        }
        finally
        {
            foreach (var model in models)
            {
                model?.Dispose();
            }
        }
    }

    /// <summary>
    /// The merges of a run: each strategy as given (weight matching to the client with the most examples), then, for each
    /// strategy that aligns, the same strategy with MergeMany instead (no reference).
    /// </summary>
    public static IReadOnlyList<(string Name, MergeOptions Options, RepairMode Repair)> MergePlan(SimulationOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var matching = new WeightMatchingOptions { Seed = options.Seed };
        var plan = options.Strategies
            .Select(s => (s.ToString(), new MergeOptions
            {
                Method = s.Alignment == AlignmentKind.WeightMatching ? MergeMethod.WeightMatching : MergeMethod.Naive,
                Aggregation = s.Aggregation,
                Matching = matching,
            }, s.Repair))
            .ToList();
        plan.AddRange(options.Strategies
            .Where(s => s.Alignment == AlignmentKind.WeightMatching)
            .Select(s => ("mergemany" + s.ToString()[2..], new MergeOptions { Method = MergeMethod.MergeMany, Aggregation = s.Aggregation, Matching = matching }, s.Repair)));
        return plan;
    }

    private static async Task<IReadOnlyList<OneShotClient>> TrainClientsAsync(
        SimulationOptions options,
        ImageDataset train,
        Partitioning splits,
        ModelSpec spec,
        Device device,
        TensorData testData,
        ClassifierModel?[] models,
        IProgress<string>? progress,
        CancellationToken cancellationToken)
    {
        var clients = new OneShotClient[options.Clients];
        int done = 0;
        int threads = options.EffectiveTorchThreadsPerClient;
        using var slots = new SemaphoreSlim(options.MaxConcurrentClients, options.MaxConcurrentClients);
        var tasks = Enumerable.Range(0, options.Clients).Select(i => Task.Run(async () =>
        {
            await slots.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                TorchThreads.UseOnThisThread(threads);
                long initialSeed = InitialSeed(options.Seed, i);
                using var data = TensorData.From(train, splits[i], device);
                var model = ModelRegistry.Create(spec, device, initialSeed);
                models[i] = model;
                var training = new TrainingOptions
                {
                    Optimizer = OptimizerKind.Sgd,
                    LearningRate = options.LearningRate,
                    Momentum = 0.9,
                    BatchSize = options.BatchSize,
                    Epochs = options.LocalEpochs,
                    Seed = initialSeed,
                };
                var report = Trainer.Train(model, data, training, cancellationToken: cancellationToken);
                TrainingDivergedException.ThrowIfDiverged(report, model);
                var evaluation = Evaluator.Evaluate(model, testData);
                clients[i] = new OneShotClient(i, data.Count, initialSeed, report.Epochs[^1].Loss, evaluation.Loss, evaluation.Accuracy, report.Seconds);
                int count = Interlocked.Increment(ref done);
                progress?.Report(string.Create(CultureInfo.InvariantCulture,
                    $"client {i} trained ({count}/{options.Clients} done): {data.Count} examples, test accuracy {evaluation.Accuracy:P2} ({report.Seconds:0.0} s)"));
            }
            finally
            {
                slots.Release();
            }
        }, cancellationToken)).ToList();
        await Task.WhenAll(tasks).ConfigureAwait(false);
        return clients;
    }

    /// <summary>The file a one-shot run with <see cref="SimulationOptions.SaveClientModels"/> writes client <paramref name="index"/>'s model to.</summary>
    public static string ClientModelPath(string outputDirectory, int index) =>
        Path.Combine(ClientModelFolder(outputDirectory), string.Create(CultureInfo.InvariantCulture, $"client-{index}.safetensors"));

    private static string ClientModelFolder(string outputDirectory) => Path.Combine(Path.GetFullPath(outputDirectory), "clients");

    private static void SaveClientModels(IReadOnlyList<ClassifierModel> models, string outputDirectory, IProgress<string>? progress)
    {
        string folder = ClientModelFolder(outputDirectory);
        Directory.CreateDirectory(folder);
        for (int i = 0; i < models.Count; i++)
        {
            ModelFile.Save(models[i], ClientModelPath(outputDirectory, i));
        }

        progress?.Report($"saved the client models in {folder}");
    }

    private static List<GroupMatch> SumGroups(IReadOnlyList<WeightMatchingResult> matches) =>
        [.. matches[0].Groups.Select((g, k) => new GroupMatch(g.Name, g.Size, matches.Sum(m => m.Groups[k].Gain), matches.Average(m => m.Groups[k].IdentityFraction)))];

    /// <summary>The line from the reference (most examples) to the next largest client, as trained and after weight matching.</summary>
    private static ClientInterpolation Interpolate(IReadOnlyList<ClassifierModel> models, IReadOnlyList<double> weights, TensorData testData, int seed)
    {
        int[] bySize = [.. Enumerable.Range(0, models.Count).OrderByDescending(i => weights[i]).ThenBy(i => i)];
        return ClientInterpolation.Compute(bySize[0], models[bySize[0]], bySize[1], models[bySize[1]], testData, seed);
    }
}
