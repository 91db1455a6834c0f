using System.Globalization;
using static TorchSharp.torch;

namespace FedRebasin.Models;

/// <summary>
/// VGG-style CNN: 3x3 convolutions (+ norm) + ReLU with 2x2 max-pools, then a global average pool and one Linear.
/// PyTorch names: <c>features.{i}.*</c> for the numbered layers of an <c>nn.Sequential</c> and <c>classifier.*</c>.
/// A max-pool is left out where the feature map is already smaller than 2x2, so small inputs (28x28) work.
/// </summary>
public sealed class Vgg : ClassifierModel
{
    /// <summary>Layer plans by name: channel counts at width 1, 0 = max-pool.</summary>
    public static IReadOnlyDictionary<string, int[]> Configurations { get; } = new Dictionary<string, int[]>
    {
        ["vgg11"] = [64, 0, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0],
        ["vgg16"] = [64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0],
    };

    private readonly nn.Module<Tensor, Tensor> _features;
    private readonly nn.Module<Tensor, Tensor> _classifier;

    /// <summary>Builds the VGG variant named by <c>spec.Architecture</c>.</summary>
    public Vgg(ModelSpec spec)
        : base(nameof(Vgg), spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var layers = new List<(string, nn.Module<Tensor, Tensor>)>();
        long channels = spec.InputChannels;
        int size = Math.Min(spec.InputHeight, spec.InputWidth);
        foreach (int entry in Configurations[spec.Architecture])
        {
            string Next() => layers.Count.ToString(CultureInfo.InvariantCulture);
            if (entry == 0)
            {
                if (size >= 2)
                {
                    layers.Add((Next(), nn.MaxPool2d(2, 2)));
                    size /= 2;
                }

                continue;
            }

            int outChannels = Scale(entry, spec.WidthMultiplier);
            layers.Add((Next(), nn.Conv2d(channels, outChannels, 3, padding: 1, bias: spec.Norm == NormKind.None)));
            if (CreateNorm(spec.Norm, outChannels) is { } norm)
            {
                layers.Add((Next(), norm));
            }

            layers.Add((Next(), nn.ReLU()));
            channels = outChannels;
        }

        _features = nn.Sequential(layers);
        _classifier = nn.Linear(channels, spec.Classes);
        register_module("features", _features);
        register_module("classifier", _classifier);
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        var x = _features.call(input);
        x = nn.functional.adaptive_avg_pool2d(x, 1).flatten(1);
        return _classifier.call(x);
    }
}
