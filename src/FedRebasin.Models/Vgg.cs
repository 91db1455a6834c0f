using System.Globalization;
using FedRebasin.Models.Permutations;
using static TorchSharp.torch;

namespace FedRebasin.Models;

/// <summary>
/// VGG-style CNN: 3x3 convolutions (+ norm) + ReLU with 2x2 max-pools, then a global average pool and one Linear.
/// PyTorch names: <c>features.{i}.*</c> for the numbered layers of an <c>nn.Sequential</c> and <c>classifier.*</c>.
/// A max-pool is left out where the feature map is already smaller than 2x2, so small inputs (28x28) work.
/// </summary>
/// <remarks>
/// Repair points: one per conv, at the input of its ReLU. Without norm that is the conv's output (<c>features.{k}</c>,
/// folded into the conv's weight and bias); with BatchNorm or LayerNorm it is the norm's output
/// (<c>features.{k+1}</c>, folded into the norm's affine weight and bias). Each is in the conv's permutation group.
/// </remarks>
public sealed class Vgg : ClassifierModel
{
    /// <summary>Layer plans by name: channel counts at width 1, 0 = max-pool.</summary>
    public static IReadOnlyDictionary<string, int[]> Configurations { get; } = new Dictionary<string, int[]>
    {
        ["vgg11"] = [64, 0, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0],
        ["vgg16"] = [64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0],
    };

    private readonly nn.Module<Tensor, Tensor> _features;
    private readonly nn.Module<Tensor, Tensor>[] _layers;
    private readonly int[] _tapAfter;
    private readonly RepairPoint[] _repairPoints;
    private readonly nn.Module<Tensor, Tensor> _classifier;

    /// <summary>Builds the VGG variant named by <c>spec.Architecture</c>.</summary>
    public Vgg(ModelSpec spec)
        : base(nameof(Vgg), spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var plan = Plan(spec);
        var layers = new List<(string, nn.Module<Tensor, Tensor>)>();
        _layers = new nn.Module<Tensor, Tensor>[plan.Count];
        _tapAfter = new int[plan.Count];
        var repairPoints = new List<RepairPoint>();
        for (int k = 0; k < plan.Count; k++)
        {
            var layer = plan[k];
            _layers[k] = layer.Kind switch
            {
                LayerKind.MaxPool => nn.MaxPool2d(2, 2),
                LayerKind.Conv => nn.Conv2d(layer.InChannels, layer.OutChannels, 3, padding: 1, bias: spec.Norm == NormKind.None),
                LayerKind.Norm => CreateNorm(spec.Norm, layer.OutChannels)!,
                _ => nn.ReLU(),
            };
            layers.Add((k.ToString(CultureInfo.InvariantCulture), _layers[k]));

            // The pre-activation is what feeds the ReLU: the conv's output, or its norm's when there is one.
            _tapAfter[k] = -1;
            if (k + 1 < plan.Count && plan[k + 1].Kind == LayerKind.Relu)
            {
                int conv = layer.Kind == LayerKind.Conv ? k : k - 1;
                string name = string.Create(CultureInfo.InvariantCulture, $"features.{k}");
                _tapAfter[k] = repairPoints.Count;
                repairPoints.Add(new RepairPoint(
                    name,
                    PermutationSpecs.VggGroup(conv),
                    layer.OutChannels,
                    new RepairTarget(name + ".weight", name + ".bias")));
            }
        }

        _repairPoints = [.. repairPoints];
        int channels = plan.LastOrDefault(l => l.Kind == LayerKind.Conv).OutChannels;
        _features = nn.Sequential(layers);
        _classifier = nn.Linear(channels == 0 ? spec.InputChannels : channels, spec.Classes);
        register_module("features", _features);
        register_module("classifier", _classifier);
    }

    private enum LayerKind
    {
        Conv,
        Norm,
        Relu,
        MaxPool,
    }

    /// <inheritdoc />
    public override IReadOnlyList<RepairPoint> RepairPoints => _repairPoints;

    /// <inheritdoc />
    public override Tensor forward(Tensor input) => ForwardCore(input, null);

    /// <inheritdoc />
    protected override Tensor ForwardCore(Tensor input, Action<int, Tensor>? tap)
    {
        var x = input;
        for (int k = 0; k < _layers.Length; k++)
        {
            x = _layers[k].call(x);
            if (tap is not null && _tapAfter[k] >= 0)
            {
                tap(_tapAfter[k], x);
            }
        }

        x = nn.functional.adaptive_avg_pool2d(x, 1).flatten(1);
        return _classifier.call(x);
    }

    /// <summary>A conv of <c>features</c>: its index, its norm's index (when there is a norm) and channel counts.</summary>
    internal readonly record struct ConvLayer(int Index, int? NormIndex, int InChannels, int OutChannels);

    /// <summary>The convolutions of the model <paramref name="spec"/> describes, in order, with their <c>features</c> indices.</summary>
    internal static IReadOnlyList<ConvLayer> ConvLayers(ModelSpec spec)
    {
        var plan = Plan(spec);
        var convs = new List<ConvLayer>();
        for (int k = 0; k < plan.Count; k++)
        {
            if (plan[k].Kind == LayerKind.Conv)
            {
                bool norm = k + 1 < plan.Count && plan[k + 1].Kind == LayerKind.Norm;
                convs.Add(new ConvLayer(k, norm ? k + 1 : null, plan[k].InChannels, plan[k].OutChannels));
            }
        }

        return convs;
    }

    /// <summary>
    /// The layers of <c>features</c>, in order (the index in the list is the <c>nn.Sequential</c> index): each conv is
    /// followed by its norm (unless the norm is none) and a ReLU; a max-pool is left out where the map is below 2x2.
    /// </summary>
    private static List<PlannedLayer> Plan(ModelSpec spec)
    {
        var plan = new List<PlannedLayer>();
        int channels = spec.InputChannels;
        int size = Math.Min(spec.InputHeight, spec.InputWidth);
        foreach (int entry in Configurations[spec.Architecture])
        {
            if (entry == 0)
            {
                if (size >= 2)
                {
                    plan.Add(new PlannedLayer(LayerKind.MaxPool, channels, channels));
                    size /= 2;
                }

                continue;
            }

            int outChannels = Scale(entry, spec.WidthMultiplier);
            plan.Add(new PlannedLayer(LayerKind.Conv, channels, outChannels));
            if (spec.Norm != NormKind.None)
            {
                plan.Add(new PlannedLayer(LayerKind.Norm, outChannels, outChannels));
            }

            plan.Add(new PlannedLayer(LayerKind.Relu, outChannels, outChannels));
            channels = outChannels;
        }

        return plan;
    }

    private readonly record struct PlannedLayer(LayerKind Kind, int InChannels, int OutChannels);
}
