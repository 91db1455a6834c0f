using System.Diagnostics;
using FedRebasin.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace FedRebasin.Training;

/// <summary>Progress of a training run, reported once per batch.</summary>
/// <param name="Epoch">1-based epoch.</param>
/// <param name="Batch">1-based batch within the epoch.</param>
/// <param name="BatchesPerEpoch">Batches in an epoch.</param>
/// <param name="Loss">Mean training loss of the epoch so far.</param>
public readonly record struct TrainingProgress(int Epoch, int Batch, int BatchesPerEpoch, double Loss);

/// <summary>Figures of one epoch.</summary>
/// <param name="Epoch">1-based epoch.</param>
/// <param name="Loss">Mean training loss over the epoch's batches (weighted by batch size).</param>
/// <param name="Accuracy">Training accuracy over the epoch (on the batches as they were trained).</param>
/// <param name="LearningRate">Learning rate at the end of the epoch.</param>
/// <param name="Seconds">Wall time of the epoch.</param>
public sealed record EpochReport(int Epoch, double Loss, double Accuracy, double LearningRate, double Seconds);

/// <summary>What a training run did.</summary>
/// <param name="Epochs">Per-epoch figures.</param>
/// <param name="Examples">Examples in the training data.</param>
/// <param name="Seconds">Total wall time.</param>
public sealed record TrainingReport(IReadOnlyList<EpochReport> Epochs, int Examples, double Seconds)
{
    /// <summary>Training throughput, examples per second over the whole run.</summary>
    public double SamplesPerSecond => Seconds > 0 ? Examples * (double)Epochs.Count / Seconds : 0;
}

/// <summary>Trains a classifier with cross-entropy on tensors already on its device.</summary>
public static class Trainer
{
    /// <summary>
    /// Trains <paramref name="model"/> in place. The batch order is drawn from <see cref="TrainingOptions.Seed"/>,
    /// so the same model, data and options give the same weights on the CPU. Every tensor made for a batch is
    /// disposed with it: memory does not grow across epochs.
    /// </summary>
    public static TrainingReport Train(
        ClassifierModel model,
        TensorData data,
        TrainingOptions options,
        IProgress<TrainingProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (data.Count == 0)
        {
            throw new ArgumentException("The training data is empty.", nameof(data));
        }

        var device = data.Features.device;
        using var optimizer = CreateOptimizer(model, options);
        using var generator = new Generator((ulong)options.Seed, CPU);
        int n = data.Count;
        int batchesPerEpoch = (n + options.BatchSize - 1) / options.BatchSize;
        long totalSteps = (long)batchesPerEpoch * options.Epochs;
        long step = 0;
        var epochs = new List<EpochReport>(options.Epochs);
        var total = Stopwatch.StartNew();
        model.train();
        for (int epoch = 1; epoch <= options.Epochs; epoch++)
        {
            var clock = Stopwatch.StartNew();
            double lossSum = 0;
            long correct = 0;
            // A fresh order per epoch from the run's own generator (never torch's global one).
            using var cpuOrder = randperm(n, generator: generator);
            using var deviceOrder = device.type == DeviceType.CPU ? null : cpuOrder.to(device);
            var order = deviceOrder ?? cpuOrder;
            for (int b = 0; b < batchesPerEpoch; b++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                double learningRate = options.LearningRateAt(step, totalSteps, batchesPerEpoch);
                using (NewDisposeScope())
                {
                    int start = b * options.BatchSize;
                    int length = Math.Min(options.BatchSize, n - start);
                    var index = order.narrow(0, start, length);
                    var x = data.Features.index_select(0, index);
                    var y = data.Labels.index_select(0, index);
                    optimizer.ZeroGrad();
                    var logits = model.call(x);
                    var loss = nn.functional.cross_entropy(logits, y);
                    loss.backward();
                    optimizer.Step(learningRate);
                    lossSum += loss.item<float>() * length;
                    using (no_grad())
                    {
                        correct += logits.argmax(1).eq(y).sum().item<long>();
                    }
                }

                step++;
                progress?.Report(new TrainingProgress(epoch, b + 1, batchesPerEpoch, lossSum / Math.Min(n, (b + 1) * options.BatchSize)));
            }

            epochs.Add(new EpochReport(epoch, lossSum / n, (double)correct / n, options.LearningRateAt(step, totalSteps, batchesPerEpoch), clock.Elapsed.TotalSeconds));
        }

        return new TrainingReport(epochs, n, total.Elapsed.TotalSeconds);
    }

    private static ModelOptimizer CreateOptimizer(ClassifierModel model, TrainingOptions options) => options.Optimizer switch
    {
        OptimizerKind.Sgd => new SgdOptimizer(model.parameters(), options.Momentum, options.WeightDecay),
        _ => new AdamOptimizer(model.parameters(), options.WeightDecay),
    };
}

/// <summary>Training produced a non-finite loss or non-finite weights: the weights are not worth keeping.</summary>
public sealed class TrainingDivergedException(string message) : Exception(message)
{
    private const string Cure =
        "Lower --lr (or use --optimizer adam); on a CPU with AVX-512, check that DNNL_MAX_CPU_ISA is not set above AVX2 (docs/TORCHSHARP-LOADING.md).";

    /// <summary>
    /// Throws when an epoch's loss in <paramref name="report"/> is not finite, or when a floating-point parameter or
    /// buffer of the trained <paramref name="model"/> holds NaN or an infinity. The weights need their own check: the
    /// last optimiser step can apply a non-finite gradient after the last finite loss was recorded.
    /// </summary>
    public static void ThrowIfDiverged(TrainingReport report, ClassifierModel model)
    {
        ArgumentNullException.ThrowIfNull(report);
        ArgumentNullException.ThrowIfNull(model);
        if (report.Epochs.FirstOrDefault(e => !double.IsFinite(e.Loss)) is { } epoch)
        {
            throw new TrainingDivergedException($"training diverged: the mean loss of epoch {epoch.Epoch} is {epoch.Loss}; no model was saved. {Cure}");
        }

        using var scope = NewDisposeScope();
        foreach (var (name, tensor) in model.state_dict())
        {
            if (!tensor.is_floating_point())
            {
                continue;
            }

            long nonFinite = tensor.detach().isfinite().logical_not().sum().item<long>();
            if (nonFinite > 0)
            {
                throw new TrainingDivergedException(
                    $"training diverged: after the last epoch (loss {report.Epochs[^1].Loss}) tensor '{name}' holds {nonFinite} non-finite value{(nonFinite == 1 ? string.Empty : "s")}; no model was saved. {Cure}");
            }
        }
    }
}
