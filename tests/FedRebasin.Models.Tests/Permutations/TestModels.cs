using TorchSharp;
using static TorchSharp.torch;

namespace FedRebasin.Models.Tests.Permutations;

/// <summary>Tiny models for the permutation and repair tests (3x16x16 inputs, 10 classes).</summary>
internal static class TestModels
{
    public const int Channels = 3;
    public const int Size = 16;

    /// <summary>Every architecture and norm, tiny: (architecture, norm, width multiplier).</summary>
    public static TheoryData<string, string, double> All => new()
    {
        { "mlp", "none", 1.0 },
        { "vgg11", "none", 0.25 },
        { "vgg11", "batch", 0.25 },
        { "vgg11", "layer", 0.25 },
        { "vgg16", "batch", 0.125 },
        { "resnet20", "none", 0.25 },
        { "resnet20", "batch", 0.25 },
        { "resnet20", "layer", 0.5 },
    };

    public static ModelSpec Spec(string architecture, string norm, double width) =>
        ModelRegistry.DefaultSpec(architecture, Channels, Size, Size, 10, hidden: [12, 10, 8], widthMultiplier: width, norm: ModelSpec.ParseNorm(norm));

    /// <summary>A model in eval mode; BatchNorm models first get non-trivial running statistics.</summary>
    public static ClassifierModel Create(string architecture, string norm, double width, long seed = 1)
    {
        var spec = Spec(architecture, norm, width);
        var model = ModelRegistry.Create(spec, seed: seed);
        if (spec.Norm == NormKind.Batch)
        {
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            model.train();
            model.call(Input(16, seed + 100) * 3 + 1);
        }

        model.eval();
        return model;
    }

    /// <summary>Random inputs, a function of the seed.</summary>
    public static Tensor Input(int batch, long seed)
    {
        using var generator = new Generator((ulong)seed);
        return randn([batch, Channels, Size, Size], generator: generator);
    }

    public static Dictionary<string, long[]> Shapes(ClassifierModel model) =>
        model.state_dict().ToDictionary(p => p.Key, p => p.Value.shape, StringComparer.Ordinal);

    /// <summary>Same shape, dtype and values.</summary>
    public static bool Same(Tensor a, Tensor b)
    {
        using var scope = NewDisposeScope();
        return a.shape.SequenceEqual(b.shape) && a.dtype == b.dtype && a.eq(b).all().item<bool>();
    }

    public static double MaxAbsDifference(Tensor a, Tensor b)
    {
        using var scope = NewDisposeScope();
        return (a - b).abs().max().item<float>();
    }
}
