using System.Globalization;
using FedRebasin.Contracts;
using FedRebasin.Federation.Strategies;
using FedRebasin.Merging.Repair;
using Microsoft.Extensions.Options;

namespace FedRebasin.Coordinator;

/// <summary>Coordinator settings, bound from the configuration section <see cref="SectionName"/> and validated at start-up.</summary>
public sealed class CoordinatorOptions
{
    /// <summary>The configuration section.</summary>
    public const string SectionName = "Coordinator";

    /// <summary>Merge strategy, parsed by <see cref="StrategySpec.Parse"/> (e.g. "wm", "fedavg").</summary>
    public string Strategy { get; set; } = "wm";

    /// <summary>Rounds to run; at least 1.</summary>
    public int Rounds { get; set; } = 10;

    /// <summary>Registered clients needed before a round starts.</summary>
    public int MinClients { get; set; } = 2;

    /// <summary>Accepted updates a round needs; 0 means MinClients.</summary>
    public int MinResponses { get; set; }

    /// <summary>Fraction of registered clients picked per round, in (0, 1].</summary>
    public double FractionPerRound { get; set; } = 1.0;

    /// <summary>See <see cref="Federation.Rounds.RoundSettings.AvailabilityTimeout"/>.</summary>
    public TimeSpan AvailabilityTimeout { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>See <see cref="Federation.Rounds.RoundSettings.TrainingDeadline"/>.</summary>
    public TimeSpan TrainingDeadline { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>See <see cref="Federation.Rounds.RoundSettings.GracePeriod"/>.</summary>
    public TimeSpan GracePeriod { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Attempts of one round before the run stops as failed (see <see cref="Federation.Rounds.RoundSettings.MaxAttempts"/>); 0 retries without end.</summary>
    public int MaxRoundAttempts { get; set; }

    /// <summary>How long GetTask holds before answering WaitTask.</summary>
    public TimeSpan PollWindow { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Sent to clients in RegisterReply.</summary>
    public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Period of the background timer that drives the round state machine's time-based transitions.</summary>
    public TimeSpan TickInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Seed of the initial model and of the participant sampler.</summary>
    public int Seed { get; set; }

    /// <summary>The model trained.</summary>
    public CoordinatorModelOptions Model { get; set; } = new();

    /// <summary>Hyper-parameters sent with every TrainTask.</summary>
    public CoordinatorTrainingOptions Training { get; set; } = new();

    /// <summary>Client id → bearer token. When non-empty every call must carry a matching <c>authorization: Bearer</c> header.</summary>
    public Dictionary<string, string> Tokens { get; set; } = new(StringComparer.Ordinal);

    /// <summary>TLS and mutual TLS of the endpoint (section <c>Coordinator:Tls</c>); empty for plain HTTP/2.</summary>
    public CoordinatorTlsOptions Tls { get; set; } = new();

    /// <summary>Size of the chunks <c>DownloadModel</c> sends.</summary>
    public int DownloadChunkBytes { get; set; } = ModelChunker.DefaultDownloadChunkBytes;

    /// <summary>Largest chunk accepted in an upload (the client worker sends 64 KiB chunks; it sent 1 MiB before).</summary>
    public int MaxUploadChunkBytes { get; set; } = ModelChunker.DefaultMaxUploadChunkBytes;

    /// <summary>
    /// Port of a plain HTTP/1.1 listener serving <c>/metrics</c> in the Prometheus text format (OpenTelemetry
    /// exporter); null serves none. On the gRPC port the endpoint is not served.
    /// </summary>
    public int? MetricsPort { get; set; }

    /// <summary>Largest upload payload accepted.</summary>
    public long MaxModelBytes { get; set; } = 1L << 30;

    /// <summary>
    /// Uploads received and validated at once. Further uploads wait for a slot (their streams are not read, so gRPC flow
    /// control holds their bytes on the client) for up to <see cref="UploadSlotTimeout"/>, then get RESOURCE_EXHAUSTED.
    /// Bounds the coordinator's memory: about this many payloads are held at a time, whatever the number of clients.
    /// </summary>
    public int MaxConcurrentUploads { get; set; } = 2;

    /// <summary>
    /// LibTorch intra-op threads of the coordinator's tensor work (validation, folding, round closes, evaluation); 0:
    /// LibTorch's default (all cores). The one-box simulation sets it to its clients' share, so the process does not
    /// keep more OpenMP threads than cores (see <see cref="FedRebasin.Torch.TorchThreads"/>).
    /// </summary>
    public int TorchThreads { get; set; }

    /// <summary>How long an upload waits for one of the <see cref="MaxConcurrentUploads"/> slots.</summary>
    public TimeSpan UploadSlotTimeout { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>Longest time an upload may take once it holds a slot (a stalled stream gets DEADLINE_EXCEEDED and frees the slot).</summary>
    public TimeSpan UploadTimeout { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>Calls per second each caller may make (token bucket, see <see cref="RequestBurst"/>); 0 turns the limit off.</summary>
    public int MaxRequestsPerSecond { get; set; } = 50;

    /// <summary>Calls a caller may make at once before <see cref="MaxRequestsPerSecond"/> applies (bucket size).</summary>
    public int RequestBurst { get; set; } = 100;

    /// <summary>A client that sent no call (heartbeat or other) for this many <see cref="HeartbeatInterval"/>s is dropped from the run.</summary>
    public int MissedHeartbeats { get; set; } = 3;

    /// <summary>
    /// How clients' moments become repair targets: "pool" (one population over all clients' data, law of total
    /// variance) or "mix" (REPAIR's weighted mean of the stds, as between two models measured on the same data).
    /// </summary>
    public string RepairTargets { get; set; } = "pool";

    /// <summary>
    /// Rounds in which the strategy's repair runs: rounds 1 to this one; later rounds merge without it (and clients
    /// send no moments). 0: every round. Repairing every round of a long run lets the weights grow without bound
    /// (docs/EXPERIMENTS.md: REPAIR lifts the early rounds, then diverges after 15–18 rounds of non-IID clients).
    /// </summary>
    public int RepairRounds { get; set; }

    /// <summary>
    /// How far each round's repair moves the merged model's statistics toward the targets, α in (0, 1]: stds by the
    /// factor (σ*/σ̂)^α, means by the fraction α. 1 (default): all the way (REPAIR).
    /// </summary>
    public double RepairStrength { get; set; } = 1.0;

    /// <summary>Largest per-channel repair scale c (the scale is kept in [1/c, c]); 0 (default): no cap.</summary>
    public double RepairMaxScale { get; set; }

    /// <summary>How long clients have to answer a statistics task (federated repair) before the coordinator repairs with the answers it has.</summary>
    public TimeSpan StatisticsDeadline { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// Folder for checkpoints (global model, round state, audit trail); null or empty keeps none. When it holds a
    /// checkpoint at start-up, the run resumes after its last complete round.
    /// </summary>
    public string? CheckpointDirectory { get; set; }

    /// <summary>Global-model files kept in <see cref="CheckpointDirectory"/> (the newest ones; audit records are all kept).</summary>
    public int KeepModelCheckpoints { get; set; } = 2;

    /// <summary>
    /// Data the coordinator holds for repair (a sample of a training split): when set, the merged model's statistics are
    /// measured here (sequential REPAIR, exact); when not, clients answer a statistics task.
    /// </summary>
    public CoordinatorDataOptions? Calibration { get; set; }

    /// <summary>Test data for server-side evaluation of every published model (and of plain FedAvg beside it); none when null.</summary>
    public CoordinatorDataOptions? Evaluation { get; set; }

    /// <summary>
    /// With <see cref="Evaluation"/> data, also evaluate every accepted update, so each round reports its merge barrier
    /// (the merged model's loss minus the sample-weighted mean loss of the client models it came from). Costs one
    /// evaluation per update; off, the barrier is not reported.
    /// </summary>
    public bool EvaluateUpdates { get; set; } = true;
}

/// <summary>A data set the coordinator reads: a catalog name, its folder and how many examples to use.</summary>
public sealed class CoordinatorDataOptions
{
    /// <summary>Data set name (fashion-mnist, mnist, cifar10, cifar100, synthetic).</summary>
    public string Dataset { get; set; } = "fashion-mnist";

    /// <summary>Folder of the data set's files; null for the catalog's default.</summary>
    public string? Directory { get; set; }

    /// <summary>Examples used (a seeded sample; the whole split when larger).</summary>
    public int Examples { get; set; } = 2000;
}

/// <summary>The model: an architecture with input shape and classes, or a path to an initial .safetensors file.</summary>
public sealed class CoordinatorModelOptions
{
    /// <summary>Architecture name (see ModelRegistry.Names); ignored when <see cref="Path"/> is set.</summary>
    public string Architecture { get; set; } = "mlp";

    /// <summary>Input shape as "channels,height,width".</summary>
    public string InputShape { get; set; } = "3,32,32";

    /// <summary>Number of classes.</summary>
    public int Classes { get; set; } = 10;

    /// <summary>MLP hidden widths; empty for the default.</summary>
    public List<int> Hidden { get; set; } = [];

    /// <summary>Channel multiplier of convolutional models (1 = the standard widths; 0.5 halves every layer).</summary>
    public double WidthMultiplier { get; set; } = 1.0;

    /// <summary>Optional initial model file (.safetensors with FedRebasin metadata).</summary>
    public string? Path { get; set; }

    internal (int Channels, int Height, int Width) ParseInputShape()
    {
        string[] parts = InputShape.Split(',', StringSplitOptions.TrimEntries);
        if (parts.Length != 3
            || !int.TryParse(parts[0], NumberStyles.Integer, CultureInfo.InvariantCulture, out int c)
            || !int.TryParse(parts[1], NumberStyles.Integer, CultureInfo.InvariantCulture, out int h)
            || !int.TryParse(parts[2], NumberStyles.Integer, CultureInfo.InvariantCulture, out int w)
            || c <= 0 || h <= 0 || w <= 0)
        {
            throw new FormatException($"Coordinator:Model:InputShape must be 'channels,height,width' with positive integers, not '{InputShape}'.");
        }

        return (c, h, w);
    }
}

/// <summary>Hyper-parameters of the TrainTask.</summary>
public sealed class CoordinatorTrainingOptions
{
    /// <summary>Local epochs.</summary>
    public int LocalEpochs { get; set; } = 1;

    /// <summary>Mini-batch size.</summary>
    public int BatchSize { get; set; } = 64;

    /// <summary>Learning rate.</summary>
    public double LearningRate { get; set; } = 0.05;

    /// <summary>"sgd" or "adam".</summary>
    public string Optimizer { get; set; } = "sgd";

    /// <summary>SGD momentum.</summary>
    public double Momentum { get; set; } = 0.9;

    /// <summary>Weight decay.</summary>
    public double WeightDecay { get; set; }
}

/// <summary>Validates <see cref="CoordinatorOptions"/>; every message names the setting.</summary>
internal sealed class CoordinatorOptionsValidator : IValidateOptions<CoordinatorOptions>
{
    public ValidateOptionsResult Validate(string? name, CoordinatorOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var errors = new List<string>();
        void Check(bool ok, string setting, object? value, string rule)
        {
            if (!ok)
            {
                errors.Add(string.Create(CultureInfo.InvariantCulture, $"Coordinator:{setting} {rule}, not '{value}'."));
            }
        }

        try
        {
            var strategy = StrategySpec.Parse(options.Strategy ?? string.Empty);
            if (strategy.Repair == RepairMode.BnReset && options.Calibration is null)
            {
                // Clients answer repair/rescale/reshift statistics tasks in one pass; an exact BatchNorm reset needs one
                // pass per BatchNorm layer, which only the coordinator's own calibration data can give.
                errors.Add($"Coordinator:Strategy '{options.Strategy}' needs Coordinator:Calibration (bn-reset runs on the coordinator's calibration data).");
            }
        }
        catch (FormatException e)
        {
            errors.Add($"Coordinator:Strategy is invalid: {e.Message}");
        }

        Check(options.Rounds >= 1, nameof(options.Rounds), options.Rounds, "must be at least 1");
        Check(options.MinClients >= 1, nameof(options.MinClients), options.MinClients, "must be at least 1");
        Check(options.MinResponses >= 0 && options.MinResponses <= options.MinClients, nameof(options.MinResponses), options.MinResponses, "must be between 0 (= MinClients) and MinClients");
        Check(options.FractionPerRound > 0 && options.FractionPerRound <= 1, nameof(options.FractionPerRound), options.FractionPerRound, "must be in (0, 1]");
        Check(options.AvailabilityTimeout > TimeSpan.Zero, nameof(options.AvailabilityTimeout), options.AvailabilityTimeout, "must be positive");
        Check(options.TrainingDeadline > TimeSpan.Zero, nameof(options.TrainingDeadline), options.TrainingDeadline, "must be positive");
        Check(options.GracePeriod >= TimeSpan.Zero, nameof(options.GracePeriod), options.GracePeriod, "must not be negative");
        Check(options.MaxRoundAttempts >= 0, nameof(options.MaxRoundAttempts), options.MaxRoundAttempts, "must not be negative (0: no limit)");
        Check(options.PollWindow >= TimeSpan.Zero, nameof(options.PollWindow), options.PollWindow, "must not be negative");
        Check(options.HeartbeatInterval > TimeSpan.Zero, nameof(options.HeartbeatInterval), options.HeartbeatInterval, "must be positive");
        Check(options.TickInterval > TimeSpan.Zero, nameof(options.TickInterval), options.TickInterval, "must be positive");
        Check(options.DownloadChunkBytes > 0 && options.DownloadChunkBytes <= ModelChunker.MaxAllowedChunkBytes, nameof(options.DownloadChunkBytes), options.DownloadChunkBytes, $"must be in [1, {ModelChunker.MaxAllowedChunkBytes}]");
        Check(options.MaxUploadChunkBytes > 0 && options.MaxUploadChunkBytes <= ModelChunker.MaxAllowedChunkBytes, nameof(options.MaxUploadChunkBytes), options.MaxUploadChunkBytes, $"must be in [1, {ModelChunker.MaxAllowedChunkBytes}]");
        Check(options.MaxModelBytes > 0, nameof(options.MaxModelBytes), options.MaxModelBytes, "must be positive");
        Check(options.MetricsPort is null or (>= 1 and <= 65535), nameof(options.MetricsPort), options.MetricsPort, "must be a port in [1, 65535] (or unset)");
        Check(options.MaxConcurrentUploads >= 1, nameof(options.MaxConcurrentUploads), options.MaxConcurrentUploads, "must be at least 1");
        Check(options.TorchThreads >= 0, nameof(options.TorchThreads), options.TorchThreads, "must not be negative (0: LibTorch's default)");
        Check(options.UploadSlotTimeout > TimeSpan.Zero, nameof(options.UploadSlotTimeout), options.UploadSlotTimeout, "must be positive");
        Check(options.UploadTimeout > TimeSpan.Zero, nameof(options.UploadTimeout), options.UploadTimeout, "must be positive");
        Check(options.MaxRequestsPerSecond >= 0, nameof(options.MaxRequestsPerSecond), options.MaxRequestsPerSecond, "must not be negative (0 turns the limit off)");
        Check(options.RequestBurst >= 1, nameof(options.RequestBurst), options.RequestBurst, "must be at least 1");
        Check(options.MissedHeartbeats >= 1, nameof(options.MissedHeartbeats), options.MissedHeartbeats, "must be at least 1");
        Check(options.RepairRounds >= 0, nameof(options.RepairRounds), options.RepairRounds, "must not be negative (0 repairs every round)");
        Check(options.RepairStrength > 0 && options.RepairStrength <= 1, nameof(options.RepairStrength), options.RepairStrength, "must be in (0, 1] (1 is the full correction)");
        Check(options.RepairMaxScale == 0 || options.RepairMaxScale >= 1, nameof(options.RepairMaxScale), options.RepairMaxScale, "must be 0 (no cap) or at least 1");
        Check(options.RepairTargets is "pool" or "mix", nameof(options.RepairTargets), options.RepairTargets, "must be pool or mix");
        Check(options.StatisticsDeadline > TimeSpan.Zero, nameof(options.StatisticsDeadline), options.StatisticsDeadline, "must be positive");
        Check(options.KeepModelCheckpoints >= 1, nameof(options.KeepModelCheckpoints), options.KeepModelCheckpoints, "must be at least 1");
        CheckData(options.Calibration, nameof(options.Calibration));
        CheckData(options.Evaluation, nameof(options.Evaluation));
        void CheckData(CoordinatorDataOptions? data, string setting)
        {
            if (data is null)
            {
                return;
            }

            Check(Data.DatasetCatalog.KnownNames.Contains(data.Dataset), $"{setting}:Dataset", data.Dataset, $"must be one of {string.Join(", ", Data.DatasetCatalog.KnownNames)}");
            Check(data.Examples >= 1, $"{setting}:Examples", data.Examples, "must be at least 1");
            Check(data.Directory is null || Directory.Exists(data.Directory), $"{setting}:Directory", data.Directory, "must name an existing folder");
        }

        var model = options.Model;
        if (model is null)
        {
            errors.Add("Coordinator:Model is required.");
        }
        else if (string.IsNullOrWhiteSpace(model.Path))
        {
            Check(!string.IsNullOrWhiteSpace(model.Architecture), "Model:Architecture", model.Architecture, "is required when Model:Path is not set");
            Check(model.Classes >= 2, "Model:Classes", model.Classes, "must be at least 2");
            try
            {
                model.ParseInputShape();
            }
            catch (FormatException e)
            {
                errors.Add(e.Message);
            }
        }
        else
        {
            Check(File.Exists(model.Path), "Model:Path", model.Path, "must name an existing file");
        }

        var training = options.Training;
        if (training is not null)
        {
            Check(training.LocalEpochs > 0, "Training:LocalEpochs", training.LocalEpochs, "must be positive");
            Check(training.BatchSize > 0, "Training:BatchSize", training.BatchSize, "must be positive");
            Check(training.LearningRate > 0 && training.LearningRate <= Training.TrainingOptions.MaxLearningRate, "Training:LearningRate", training.LearningRate, "must be in (0, 10] (clients refuse larger ones)");
            Check(training.Optimizer is "sgd" or "adam", "Training:Optimizer", training.Optimizer, "must be sgd or adam");
            Check(training.Momentum >= 0 && training.Momentum < 1, "Training:Momentum", training.Momentum, "must be in [0, 1)");
            Check(training.WeightDecay >= 0, "Training:WeightDecay", training.WeightDecay, "must not be negative");
        }

        foreach (var (client, token) in options.Tokens ?? [])
        {
            // Never echo the token itself.
            Check(!string.IsNullOrWhiteSpace(token), $"Tokens:{client}", "(hidden)", "must not be empty");
        }

        CoordinatorTlsOptions.Validate(options.Tls, errors);
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
