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

    /// <summary>Chunk size of downloads and largest chunk accepted in uploads.</summary>
    public int ChunkBytes { get; set; } = ModelChunker.DefaultChunkBytes;

    /// <summary>Largest upload payload accepted.</summary>
    public long MaxModelBytes { get; set; } = 1L << 30;
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
            if (strategy.Repair != RepairMode.None)
            {
                // Refused rather than silently skipped: the statistics round trip is not wired into the service yet.
                errors.Add($"Coordinator:Strategy '{options.Strategy}': the coordinator does not run federated repair yet; use {StrategySpec.FedAvg}, {StrategySpec.WeightMatching}, median or wm+median (offline repair: fedrebasin merge --repair).");
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
        Check(options.PollWindow >= TimeSpan.Zero, nameof(options.PollWindow), options.PollWindow, "must not be negative");
        Check(options.HeartbeatInterval > TimeSpan.Zero, nameof(options.HeartbeatInterval), options.HeartbeatInterval, "must be positive");
        Check(options.TickInterval > TimeSpan.Zero, nameof(options.TickInterval), options.TickInterval, "must be positive");
        Check(options.ChunkBytes > 0 && options.ChunkBytes <= ModelChunker.MaxAllowedChunkBytes, nameof(options.ChunkBytes), options.ChunkBytes, $"must be in [1, {ModelChunker.MaxAllowedChunkBytes}]");
        Check(options.MaxModelBytes > 0, nameof(options.MaxModelBytes), options.MaxModelBytes, "must be positive");
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
            Check(training.LearningRate > 0 && double.IsFinite(training.LearningRate), "Training:LearningRate", training.LearningRate, "must be positive and finite");
            Check(training.Optimizer is "sgd" or "adam", "Training:Optimizer", training.Optimizer, "must be sgd or adam");
            Check(training.Momentum >= 0 && training.Momentum < 1, "Training:Momentum", training.Momentum, "must be in [0, 1)");
            Check(training.WeightDecay >= 0, "Training:WeightDecay", training.WeightDecay, "must not be negative");
        }

        foreach (var (client, token) in options.Tokens ?? [])
        {
            // Never echo the token itself.
            Check(!string.IsNullOrWhiteSpace(token), $"Tokens:{client}", "(hidden)", "must not be empty");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
