using System.Globalization;
using FedRebasin.Torch.Native;
using TorchSharp;

namespace FedRebasin.Models;

/// <summary>Builds models by architecture name.</summary>
public static class ModelRegistry
{
    /// <summary>The MLP (<see cref="Models.Mlp"/>).</summary>
    public const string Mlp = "mlp";

    /// <summary>VGG-11-style CNN (<see cref="Vgg"/>).</summary>
    public const string Vgg11 = "vgg11";

    /// <summary>VGG-16-style CNN (<see cref="Vgg"/>).</summary>
    public const string Vgg16 = "vgg16";

    /// <summary>ResNet-20 (<see cref="Models.ResNet20"/>).</summary>
    public const string ResNet20 = "resnet20";

    /// <summary>Every architecture name the registry knows.</summary>
    public static IReadOnlyList<string> Names { get; } = [Mlp, Vgg11, Vgg16, ResNet20];

    /// <summary>
    /// A spec for <paramref name="architecture"/> on inputs of the given shape, with the usual defaults:
    /// MLP hidden widths 512-512-512, width multiplier 1, and for convolutional models LayerNorm.
    /// </summary>
    /// <exception cref="ArgumentException">Unknown architecture or invalid sizes.</exception>
    public static ModelSpec DefaultSpec(
        string architecture,
        int channels,
        int height,
        int width,
        int classes,
        IReadOnlyList<int>? hidden = null,
        double widthMultiplier = 1.0,
        NormKind? norm = null)
    {
        ArgumentNullException.ThrowIfNull(architecture);
        string name = architecture.Trim().ToLowerInvariant();
        var spec = new ModelSpec(
            name,
            channels,
            height,
            width,
            classes,
            name == Mlp ? hidden ?? ModelSpec.DefaultMlpHidden : [],
            widthMultiplier,
            name == Mlp ? NormKind.None : norm ?? NormKind.Layer);
        Validate(spec, "--model");
        return spec;
    }

    /// <summary>Checks a spec before a model is built from it.</summary>
    /// <exception cref="ArgumentException">The message starts with <paramref name="source"/> and names the field.</exception>
    public static void Validate(ModelSpec spec, string source)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (!Names.Contains(spec.Architecture))
        {
            throw new ArgumentException($"{source}: unknown architecture '{spec.Architecture}'; known: {string.Join(", ", Names)}.");
        }

        if (spec.InputChannels <= 0 || spec.InputHeight <= 0 || spec.InputWidth <= 0 || spec.Classes <= 0)
        {
            throw new ArgumentException($"{source}: input shape and classes must be positive (got {spec.InputChannels}x{spec.InputHeight}x{spec.InputWidth}, {spec.Classes} classes).");
        }

        if (spec.Architecture == Mlp)
        {
            if (spec.Hidden.Any(h => h <= 0))
            {
                throw new ArgumentException($"{source}: MLP hidden widths must be positive (got {string.Join(',', spec.Hidden)}).");
            }

            if (spec.Norm != NormKind.None)
            {
                throw new ArgumentException($"{source}: the MLP has no normalisation layers; use norm none.");
            }
        }
        else if (!(spec.WidthMultiplier > 0 && spec.WidthMultiplier <= 64))
        {
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"{source}: width multiplier must be in (0, 64], not {spec.WidthMultiplier}."));
        }
    }

    private static readonly Lock s_seedGate = new();

    /// <summary>
    /// Builds a freshly initialised model on <paramref name="device"/> (CPU when null). With a seed, the initial
    /// weights are a function of the seed alone (PyTorch's default initialisers drawn from torch's global
    /// generator, seeded under a lock that every build takes, so concurrent builds cannot interleave).
    /// </summary>
    public static ClassifierModel Create(ModelSpec spec, torch.Device? device = null, long? seed = null)
    {
        Validate(spec, "model");
        TorchNativeLoader.EnsureLoaded();
        ClassifierModel model;
        // Unseeded builds draw from the same global generator, so they take the lock too: otherwise a concurrent
        // unseeded build (e.g. a model made only to load weights into) would consume draws between another thread's
        // manual_seed and its initialisation, and that seeded model would differ from run to run.
        lock (s_seedGate)
        {
            if (seed is { } s)
            {
                torch.random.manual_seed(s);
            }

            model = Build(spec);
        }

        if (device is not null && device.type != DeviceType.CPU)
        {
            model.to(device);
        }

        return model;
    }

    private static ClassifierModel Build(ModelSpec spec) => spec.Architecture switch
    {
        Mlp => new Mlp(spec),
        Vgg11 or Vgg16 => new Vgg(spec),
        _ => new ResNet20(spec),
    };
}
