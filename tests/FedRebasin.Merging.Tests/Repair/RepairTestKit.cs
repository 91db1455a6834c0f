using System.Collections.Concurrent;
using FedRebasin.Data;
using FedRebasin.Models;
using FedRebasin.Models.Permutations;
using FedRebasin.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace FedRebasin.Merging.Tests.Repair;

/// <summary>
/// Small trained models on synthetic 1x8x8 data (4 classes), cached per process as CPU state dicts, plus the
/// calibration batches and assertions shared by the repair and interpolation tests.
/// </summary>
internal static class RepairTestKit
{
    public const int Classes = 4;
    private const int DataSeed = 11;

    private static readonly ConcurrentDictionary<string, Lazy<Dictionary<string, Tensor>>> s_trained = new();

    /// <summary>The MLP 64-32-32-4.</summary>
    public static ModelSpec Mlp { get; } = ModelRegistry.DefaultSpec("mlp", 1, 8, 8, Classes, hidden: [32, 32]);

    /// <summary>VGG-11 with LayerNorm (GroupNorm(1, C)), width 0.125.</summary>
    public static ModelSpec VggLayer { get; } = ModelRegistry.DefaultSpec("vgg11", 1, 8, 8, Classes, widthMultiplier: 0.125, norm: NormKind.Layer);

    /// <summary>VGG-11 with BatchNorm, width 0.125.</summary>
    public static ModelSpec VggBatch { get; } = ModelRegistry.DefaultSpec("vgg11", 1, 8, 8, Classes, widthMultiplier: 0.125, norm: NormKind.Batch);

    /// <summary>ResNet-20 without norm, width 0.25.</summary>
    public static ModelSpec ResNetNone { get; } = ModelRegistry.DefaultSpec("resnet20", 1, 8, 8, Classes, widthMultiplier: 0.25, norm: NormKind.None);

    /// <summary>ResNet-20 with BatchNorm, width 0.25.</summary>
    public static ModelSpec ResNetBatch { get; } = ModelRegistry.DefaultSpec("resnet20", 1, 8, 8, Classes, widthMultiplier: 0.25, norm: NormKind.Batch);

    /// <summary>512 training examples (the calibration data is its first 256).</summary>
    public static TensorData Train { get; } = Keep(TensorData.From(SyntheticData.Create(512, 1, 8, 8, Classes, DataSeed, DataSplit.Train)));

    /// <summary>256 test examples sharing the training split's class prototypes.</summary>
    public static TensorData Test { get; } = Keep(TensorData.From(SyntheticData.Create(256, 1, 8, 8, Classes, DataSeed, DataSplit.Test)));

    /// <summary>Calibration inputs: the first 256 training images in two batches of 128 (kept alive for the process).</summary>
    public static IReadOnlyList<Tensor> Calibration { get; } = CreateCalibration();

    /// <summary>A calibration source for <c>Repairer.Apply</c>.</summary>
    public static IEnumerable<Tensor> CalibrationBatches() => Calibration;

    /// <summary>
    /// The state of a model of <paramref name="spec"/> initialised with <paramref name="seed"/> and trained briefly
    /// (Adam, batch order from <paramref name="orderSeed"/>, by default the same seed); cached. Callers must not
    /// modify the tensors. Same seed and different order seeds = two FL clients that started from one global model.
    /// </summary>
    public static IReadOnlyDictionary<string, Tensor> Trained(ModelSpec spec, int seed, int epochs = 2, int? orderSeed = null) =>
        s_trained.GetOrAdd($"{spec.Describe()}|{seed}|{epochs}|{orderSeed}", _ => new Lazy<Dictionary<string, Tensor>>(() =>
        {
            // LibTorch's CPU convolution backward now and then returns NaN gradients on a busy machine
            // (docs/TORCHSHARP-LOADING.md, "Still open"); a training of the same seed on a fresh thread has been clean.
            // These tests are about repair, not that fault: a diverged training is repeated, at most twice.
            for (int attempt = 1; ; attempt++)
            {
                Dictionary<string, Tensor>? state = null;
                var thread = new Thread(() => state = TrainOnce(spec, seed, epochs, orderSeed));
                thread.Start();
                thread.Join();
                if (state is not null || attempt == 3)
                {
                    return state ?? throw new InvalidOperationException($"Training {spec.Describe()} (seed {seed}) diverged three times.");
                }
            }
        })).Value;

    /// <summary>One training; null when it diverged (non-finite loss or weights).</summary>
    private static Dictionary<string, Tensor>? TrainOnce(ModelSpec spec, int seed, int epochs, int? orderSeed)
    {
        using var model = ModelRegistry.Create(spec, seed: seed);
        var report = Trainer.Train(model, Train, new TrainingOptions { Epochs = epochs, BatchSize = 64, LearningRate = 3e-3, Seed = orderSeed ?? seed });
        bool finite = report.Epochs.All(e => double.IsFinite(e.Loss));
        using (NewDisposeScope())
        using (no_grad())
        {
            finite &= model.parameters().All(p => p.isfinite().all().item<bool>());
        }

        return finite ? Snapshot(model) : null;
    }

    /// <summary>A model of <paramref name="spec"/> holding a copy of <paramref name="state"/>.</summary>
    public static ClassifierModel Build(ModelSpec spec, IReadOnlyDictionary<string, Tensor> state)
    {
        var model = ModelRegistry.Create(spec);
        using var noGrad = no_grad();
        foreach (var (name, target) in model.state_dict())
        {
            target.copy_(state[name]);
        }

        return model;
    }

    /// <summary>Copies of a model's tensors, outside any dispose scope.</summary>
    public static Dictionary<string, Tensor> Snapshot(ClassifierModel model)
    {
        using var noGrad = no_grad();
        return model.state_dict().ToDictionary(p => p.Key, p => p.Value.detach().clone().DetachFromDisposeScope());
    }

    /// <summary>The naive (unaligned) average of two trained models: floats averaged, integers from the first.</summary>
    public static ClassifierModel NaiveAverage(ModelSpec spec, IReadOnlyDictionary<string, Tensor> a, IReadOnlyDictionary<string, Tensor> b)
    {
        var model = ModelRegistry.Create(spec);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        foreach (var (name, target) in model.state_dict())
        {
            target.copy_(a[name].is_floating_point() ? a[name].add(b[name]).div(2) : a[name]);
        }

        return model;
    }

    /// <summary>Endpoint moments of a state on the calibration data.</summary>
    public static IReadOnlyList<ChannelMoments> Moments(ModelSpec spec, IReadOnlyDictionary<string, Tensor> state)
    {
        using var model = Build(spec, state);
        return MomentCollector.Collect(model, Calibration);
    }

    /// <summary>Asserts |actual − target| &lt; 1e-3·(1 + |target|) for every channel.</summary>
    public static void AssertMatches(string what, IReadOnlyList<double> target, IReadOnlyList<double> actual)
    {
        Assert.Equal(target.Count, actual.Count);
        for (int c = 0; c < target.Count; c++)
        {
            double tolerance = 1e-3 * (1 + Math.Abs(target[c]));
            Assert.True(Math.Abs(actual[c] - target[c]) < tolerance, $"{what}, channel {c}: {actual[c]} vs target {target[c]}.");
        }
    }

    /// <summary>Evaluation delegate for the interpolation curve (test split).</summary>
    public static (double Loss, double Accuracy) EvaluateOnTest(ClassifierModel model)
    {
        var evaluation = Evaluator.Evaluate(model, Test);
        return (evaluation.Loss, evaluation.Accuracy);
    }

    // Process-lifetime data must not belong to the dispose scope of whichever test touches it first.
    private static TensorData Keep(TensorData data)
    {
        data.Features.DetachFromDisposeScope();
        data.Labels.DetachFromDisposeScope();
        return data;
    }

    private static Tensor[] CreateCalibration()
    {
        using var scope = NewDisposeScope();
        var features = Train.Features.narrow(0, 0, 256);
        return [.. features.split(128).Select(t => t.contiguous().clone().DetachFromDisposeScope())];
    }
}
