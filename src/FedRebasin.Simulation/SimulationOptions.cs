using System.Globalization;
using FedRebasin.Data;
using FedRebasin.Federation.Strategies;
using FedRebasin.Models;

namespace FedRebasin.Simulation;

/// <summary>What a simulation runs: the data and its split, the model, the training, the strategies compared.</summary>
public sealed record SimulationOptions
{
    /// <summary>Data set name (see <see cref="DatasetCatalog.KnownNames"/>).</summary>
    public string Dataset { get; init; } = "fashion-mnist";

    /// <summary>Folder of the data set's files; null for the catalog's default.</summary>
    public string? DataDirectory { get; init; }

    /// <summary>Architecture (mlp, vgg11, vgg16, resnet20).</summary>
    public string Model { get; init; } = ModelRegistry.Mlp;

    /// <summary>MLP hidden widths; empty for the default.</summary>
    public IReadOnlyList<int> Hidden { get; init; } = [];

    /// <summary>Channel multiplier of convolutional models (1 = the standard widths).</summary>
    public double WidthMultiplier { get; init; } = 1.0;

    /// <summary>Number of clients; the training split is divided among them.</summary>
    public int Clients { get; init; } = 5;

    /// <summary>Partition spec: iid, dirichlet:A, shards:K.</summary>
    public string Partition { get; init; } = "dirichlet:0.3";

    /// <summary>Fraction of the clients picked per round, in (0, 1].</summary>
    public double FractionPerRound { get; init; } = 1.0;

    /// <summary>Rounds per strategy.</summary>
    public int Rounds { get; init; } = 5;

    /// <summary>Local epochs per round.</summary>
    public int LocalEpochs { get; init; } = 1;

    /// <summary>Client mini-batch size.</summary>
    public int BatchSize { get; init; } = 64;

    /// <summary>Client learning rate.</summary>
    public double LearningRate { get; init; } = 0.05;

    /// <summary>Strategies compared, in order (every one starts from the same initial model and the same splits).</summary>
    public IReadOnlyList<StrategySpec> Strategies { get; init; } = [StrategySpec.FedAvg, StrategySpec.WeightMatching, StrategySpec.Parse("wm+repair")];

    /// <summary>Seed of the initial model, the split, the client sampling and the local training.</summary>
    public int Seed { get; init; }

    /// <summary>Clients that train (or measure) at once; the others wait (memory and cores of one device).</summary>
    public int MaxConcurrentClients { get; init; } = 2;

    /// <summary>
    /// LibTorch intra-op threads of each client's training, and of the coordinator's work in this process; 0: the
    /// machine's threads shared out among the <see cref="MaxConcurrentClients"/> (at least 1 each), so the process keeps
    /// no more OpenMP threads than cores (see <see cref="FedRebasin.Torch.TorchThreads"/>). Results depend on it in the
    /// last digits: a run is reproduced with the same value (settings.json records the one used).
    /// </summary>
    public int TorchThreadsPerClient { get; init; }

    /// <summary>The intra-op threads used: <see cref="TorchThreadsPerClient"/>, or when it is 0 the machine's share per concurrent client.</summary>
    public int EffectiveTorchThreadsPerClient =>
        TorchThreadsPerClient > 0 ? TorchThreadsPerClient : FedRebasin.Torch.TorchThreads.PerConcurrentWork(Math.Max(1, MaxConcurrentClients));

    /// <summary>
    /// Training examples the coordinator holds to measure the merged model for repair (exact sequential REPAIR on that
    /// sample); 0: clients answer statistics tasks on their own data instead.
    /// </summary>
    public int CalibrationExamples { get; init; }

    /// <summary>How clients' moments become repair targets: "pool" or "mix" (see the coordinator's RepairTargets setting).</summary>
    public string RepairTargets { get; init; } = "pool";

    /// <summary>Repair only in rounds 1 to this one (the coordinator's RepairRounds setting); 0: every round.</summary>
    public int RepairRounds { get; init; }

    /// <summary>How far each repair moves the statistics toward the targets, α in (0, 1] (the coordinator's RepairStrength); 1: all the way.</summary>
    public double RepairStrength { get; init; } = 1.0;

    /// <summary>Largest per-channel repair scale (the coordinator's RepairMaxScale); 0: no cap.</summary>
    public double RepairMaxScale { get; init; }

    /// <summary>Test examples each published model is evaluated on.</summary>
    public int EvaluationExamples { get; init; } = 10_000;

    /// <summary>
    /// Evaluate every client's update too (the coordinator's EvaluateUpdates setting), for the merge barrier of each
    /// round; costs one evaluation per update, on 2 cores about a tenth of a small MLP client's epoch. Off, the barrier
    /// columns are NaN.
    /// </summary>
    public bool EvaluateUpdates { get; init; } = true;

    /// <summary>Compute device of the clients: auto, cpu, cuda.</summary>
    public string Device { get; init; } = "cpu";

    /// <summary>
    /// One-shot merging instead of rounds: every client trains its own model from its own initialisation for
    /// <see cref="LocalEpochs"/> epochs and the models are merged once (<see cref="OneShotRunner"/>).
    /// </summary>
    public bool OneShot { get; init; }

    /// <summary>
    /// One-shot only: write each client's trained model to <c>clients/client-I.safetensors</c> under
    /// <see cref="OutputDirectory"/>, for merging again offline (<c>fedrebasin merge</c>) or evaluating (<c>eval</c>).
    /// </summary>
    public bool SaveClientModels { get; init; }

    /// <summary>
    /// One-shot only: every merge that aligns is made with this many matching seeds (<see cref="Seed"/>,
    /// <see cref="Seed"/> + 1, ...) and the one most accurate on <see cref="ValidationExamples"/> training examples is
    /// kept (<see cref="MatchingSeedSearch"/>). 1 (the default) merges once with <see cref="Seed"/>.
    /// </summary>
    public int SeedTrials { get; init; } = 1;

    /// <summary>Training examples the <see cref="SeedTrials"/> merges are ranked on (apart from the calibration sample).</summary>
    public int ValidationExamples { get; init; } = 5_000;

    /// <summary>Folder for settings, results, CSV files, plots and the coordinators' checkpoints.</summary>
    public string OutputDirectory { get; init; } = "simulation";

    /// <summary>Checks every setting; the message names the CLI option.</summary>
    /// <exception cref="ArgumentException">A setting is invalid.</exception>
    public void Validate()
    {
        var errors = new List<string>();
        void Check(bool ok, string option, object? value, string rule)
        {
            if (!ok)
            {
                errors.Add(string.Create(CultureInfo.InvariantCulture, $"{option} {rule}, not '{value}'"));
            }
        }

        Check(DatasetCatalog.KnownNames.Contains(Dataset), "--dataset", Dataset, $"must be one of {string.Join(", ", DatasetCatalog.KnownNames)}");
        Check(ModelRegistry.Names.Contains(Model), "--model", Model, $"must be one of {string.Join(", ", ModelRegistry.Names)}");
        Check(WidthMultiplier > 0 && WidthMultiplier <= 16, "--width", WidthMultiplier, "must be in (0, 16]");
        Check(Clients >= (OneShot ? 2 : 1), "--clients", Clients, OneShot ? "must be at least 2 for --one-shot (a merge needs two models)" : "must be at least 1");
        Check(PartitionSpec.TryParse(Partition, out _), "--partition", Partition, "must be iid, dirichlet:A or shards:K");
        Check(FractionPerRound > 0 && FractionPerRound <= 1, "--fraction", FractionPerRound, "must be in (0, 1]");
        Check(Rounds >= 1, "--rounds", Rounds, "must be at least 1");
        Check(LocalEpochs >= 1, "--local-epochs", LocalEpochs, "must be at least 1");
        Check(BatchSize >= 1, "--batch-size", BatchSize, "must be at least 1");
        Check(LearningRate > 0 && LearningRate <= Training.TrainingOptions.MaxLearningRate, "--lr", LearningRate, "must be in (0, 10]");
        Check(Strategies.Count >= 1, "--strategies", Strategies.Count, "must name at least one strategy");
        Check(Strategies.Distinct().Count() == Strategies.Count, "--strategies", string.Join(",", Strategies), "must not repeat a strategy");
        Check(MaxConcurrentClients >= 1, "--max-concurrent-clients", MaxConcurrentClients, "must be at least 1");
        Check(TorchThreadsPerClient >= 0, "--torch-threads", TorchThreadsPerClient, "must not be negative (0: the machine's threads shared out among the concurrent clients)");
        Check(RepairTargets is "pool" or "mix", "--repair-targets", RepairTargets, "must be pool or mix");
        Check(RepairRounds >= 0, "--repair-rounds", RepairRounds, "must not be negative (0 repairs every round)");
        Check(RepairStrength > 0 && RepairStrength <= 1, "--repair-strength", RepairStrength, "must be in (0, 1] (1 is the full correction)");
        Check(RepairMaxScale == 0 || RepairMaxScale >= 1, "--repair-max-scale", RepairMaxScale, "must be 0 (no cap) or at least 1");
        Check(CalibrationExamples >= 0, "--calibration", CalibrationExamples, "must not be negative");
        Check(EvaluationExamples >= 1, "--eval-examples", EvaluationExamples, "must be at least 1");
        Check(!string.IsNullOrWhiteSpace(OutputDirectory), "--out", OutputDirectory, "is required");
        Check(!SaveClientModels || OneShot, "--save-client-models", SaveClientModels, "needs --one-shot (federated rounds keep their models in the checkpoints)");
        Check(SeedTrials >= 1, "--seed-trials", SeedTrials, "must be at least 1");
        Check(SeedTrials == 1 || OneShot, "--seed-trials", SeedTrials, "needs --one-shot (a federated round merges as updates arrive, once)");
        Check(ValidationExamples >= 1, "--validation", ValidationExamples, "must be at least 1");
        if (errors.Count > 0)
        {
            throw new ArgumentException(string.Join("; ", errors) + ".");
        }
    }
}
