using System.Globalization;

namespace FedRebasin.Training;

/// <summary>The optimiser used for local training.</summary>
public enum OptimizerKind
{
    /// <summary>Stochastic gradient descent with (optional) momentum.</summary>
    Sgd,

    /// <summary>Adam (Kingma and Ba); weight decay is L2 added to the gradient, as in <c>torch.optim.Adam</c>.</summary>
    Adam,
}

/// <summary>How the learning rate changes over training.</summary>
public enum ScheduleKind
{
    /// <summary>The learning rate stays at its initial value.</summary>
    Constant,

    /// <summary>Cosine annealing from the initial value to 0 over all steps of the run.</summary>
    Cosine,

    /// <summary>Multiplied by <see cref="TrainingOptions.StepGamma"/> every <see cref="TrainingOptions.StepEpochs"/> epochs.</summary>
    Step,
}

/// <summary>Settings of one local training run. Defaults follow Git Re-Basin's MNIST MLP (Adam, lr 1e-3, batch 128).</summary>
public sealed record TrainingOptions
{
    /// <summary>The optimiser. Default <see cref="OptimizerKind.Adam"/>.</summary>
    public OptimizerKind Optimizer { get; init; } = OptimizerKind.Adam;

    /// <summary>Initial learning rate. Default 1e-3; must be in (0, 10].</summary>
    public double LearningRate { get; init; } = 1e-3;

    /// <summary>SGD momentum. Default 0.9; must be in [0, 1).</summary>
    public double Momentum { get; init; } = 0.9;

    /// <summary>L2 weight decay. Default 0; must be in [0, 1].</summary>
    public double WeightDecay { get; init; }

    /// <summary>Learning-rate schedule. Default constant.</summary>
    public ScheduleKind Schedule { get; init; } = ScheduleKind.Constant;

    /// <summary>Step schedule: epochs between decays. Default 1.</summary>
    public int StepEpochs { get; init; } = 1;

    /// <summary>Step schedule: decay factor. Default 0.1; must be in (0, 1].</summary>
    public double StepGamma { get; init; } = 0.1;

    /// <summary>Mini-batch size. Default 128; must be in [1, 65536].</summary>
    public int BatchSize { get; init; } = 128;

    /// <summary>Passes over the data. Default 1; must be in [1, 10000].</summary>
    public int Epochs { get; init; } = 1;

    /// <summary>Seed of the batch order. Default 0.</summary>
    public long Seed { get; init; }

    /// <summary>Largest learning rate accepted (larger ones only diverge); coordinators check against it too.</summary>
    public const double MaxLearningRate = 10;

    /// <summary>Checks every setting and names the first bad one.</summary>
    /// <exception cref="ArgumentException">A setting is out of range.</exception>
    public void Validate()
    {
        static void Require(bool ok, string name, object value, string range)
        {
            if (!ok)
            {
                throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"{name} must be {range}, not {value}."));
            }
        }

        Require(LearningRate > 0 && LearningRate <= MaxLearningRate, "--lr", LearningRate, "in (0, 10]");
        Require(Momentum >= 0 && Momentum < 1, "--momentum", Momentum, "in [0, 1)");
        Require(WeightDecay >= 0 && WeightDecay <= 1, "--weight-decay", WeightDecay, "in [0, 1]");
        Require(StepEpochs >= 1, "--step-epochs", StepEpochs, "at least 1");
        Require(StepGamma > 0 && StepGamma <= 1, "--step-gamma", StepGamma, "in (0, 1]");
        Require(BatchSize is >= 1 and <= 65536, "--batch-size", BatchSize, "in [1, 65536]");
        Require(Epochs is >= 1 and <= 10000, "--epochs", Epochs, "in [1, 10000]");
    }

    /// <summary>The learning rate at a step, given the run's total steps and steps per epoch.</summary>
    public double LearningRateAt(long step, long totalSteps, long stepsPerEpoch) => Schedule switch
    {
        ScheduleKind.Cosine => LearningRate * 0.5 * (1 + Math.Cos(Math.PI * Math.Min(step, totalSteps) / Math.Max(1, totalSteps))),
        ScheduleKind.Step => LearningRate * Math.Pow(StepGamma, step / Math.Max(1, stepsPerEpoch) / StepEpochs),
        _ => LearningRate,
    };

    /// <summary>Parses <c>sgd</c> or <c>adam</c>.</summary>
    public static OptimizerKind ParseOptimizer(string text) => text?.Trim().ToLowerInvariant() switch
    {
        "sgd" => OptimizerKind.Sgd,
        "adam" => OptimizerKind.Adam,
        _ => throw new FormatException($"--optimizer must be sgd or adam, not '{text}'."),
    };

    /// <summary>Parses <c>constant</c>, <c>cosine</c> or <c>step</c>.</summary>
    public static ScheduleKind ParseSchedule(string text) => text?.Trim().ToLowerInvariant() switch
    {
        "constant" => ScheduleKind.Constant,
        "cosine" => ScheduleKind.Cosine,
        "step" => ScheduleKind.Step,
        _ => throw new FormatException($"--schedule must be constant, cosine or step, not '{text}'."),
    };
}
