using System.Globalization;

namespace FedRebasin.Models.Permutations;

/// <summary>
/// Builds the <see cref="PermutationSpec"/> of every registry architecture and norm (ALGORITHMS.md §1.9), from the
/// <see cref="ModelSpec"/> alone (no model needs to be built).
/// </summary>
/// <remarks>
/// <list type="bullet">
/// <item><b>MLP</b>: group <c>P{i}</c> per hidden layer i (size = its width) acting on <c>{2i}.weight</c> axis 0,
/// <c>{2i}.bias</c> axis 0 and <c>{2i+2}.weight</c> axis 1. The first layer's input axis and the last layer's outputs
/// are not permuted.</item>
/// <item><b>VGG</b>: one group per conv, named after the conv (<c>features.{k}</c>), acting on the conv's weight
/// axis 0, its bias (norm none), its norm's weight and bias, BatchNorm <c>running_mean</c>/<c>running_var</c>
/// (permuted but <see cref="PermutationAxis.CostExcluded"/>), and the next conv's weight axis 1, or for the last conv
/// <c>classifier.weight</c> axis 1 (the global average pool leaves one value per channel).</item>
/// <item><b>ResNet-20</b>: residual streams <c>stream1..3</c> (16w/32w/64w: stem conv and norm, every block's conv2
/// and norm2, the stage's projection shortcut conv and norm; read by every block conv1 and shortcut conv taking the
/// stream as input, and by <c>linear.weight</c> axis 1) and nine inner groups <c>layer{s}.{b}.inner</c> (block conv1
/// and norm1 outputs, conv2 input).</item>
/// </list>
/// BatchNorm <c>num_batches_tracked</c> and the classifier's bias are unpermuted.
/// </remarks>
public static class PermutationSpecs
{
    /// <summary>The spec of <paramref name="model"/>'s architecture.</summary>
    public static PermutationSpec For(ClassifierModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        return For(model.Spec);
    }

    /// <summary>The spec of the model <paramref name="spec"/> describes.</summary>
    /// <exception cref="ArgumentException">Unknown architecture.</exception>
    public static PermutationSpec For(ModelSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        return spec.Architecture switch
        {
            ModelRegistry.Mlp => ForMlp(spec),
            ModelRegistry.Vgg11 or ModelRegistry.Vgg16 => ForVgg(spec),
            ModelRegistry.ResNet20 => ForResNet20(spec),
            _ => throw new ArgumentException($"No permutation spec for architecture '{spec.Architecture}'.", nameof(spec)),
        };
    }

    /// <summary>Name of the MLP group permuting hidden layer <paramref name="hiddenLayer"/> (0-based).</summary>
    internal static string MlpGroup(int hiddenLayer) => string.Create(CultureInfo.InvariantCulture, $"P{hiddenLayer}");

    /// <summary>Name of the VGG group permuting the outputs of the conv at <c>features.{featureIndex}</c>.</summary>
    internal static string VggGroup(int featureIndex) => string.Create(CultureInfo.InvariantCulture, $"features.{featureIndex}");

    /// <summary>Name of the ResNet-20 residual-stream group of stage <paramref name="stage"/> (0-based): <c>stream1..3</c>.</summary>
    internal static string StreamGroup(int stage) => string.Create(CultureInfo.InvariantCulture, $"stream{stage + 1}");

    /// <summary>Name of the ResNet-20 group between conv1 and conv2 of a block: <c>layer{s+1}.{b}.inner</c>.</summary>
    internal static string InnerGroup(int stage, int block) => string.Create(CultureInfo.InvariantCulture, $"layer{stage + 1}.{block}.inner");

    private static PermutationSpec ForMlp(ModelSpec spec)
    {
        var builder = new Builder();
        int layers = spec.Hidden.Count + 1;
        for (int i = 0; i < spec.Hidden.Count; i++)
        {
            string group = MlpGroup(i);
            builder.Output(group, spec.Hidden[i], Layer(2 * i), hasBias: true);
            builder.Input(group, spec.Hidden[i], Layer(2 * i + 2) + ".weight");
        }

        if (spec.Hidden.Count == 0)
        {
            builder.Unpermuted(Layer(0) + ".weight");
        }

        builder.Unpermuted(Layer(2 * (layers - 1)) + ".bias");
        return builder.Build();

        static string Layer(int index) => index.ToString(CultureInfo.InvariantCulture);
    }

    private static PermutationSpec ForVgg(ModelSpec spec)
    {
        var builder = new Builder();
        var convs = Vgg.ConvLayers(spec);
        for (int i = 0; i < convs.Count; i++)
        {
            var conv = convs[i];
            string group = VggGroup(conv.Index);
            builder.Output(group, conv.OutChannels, VggGroup(conv.Index), hasBias: spec.Norm == NormKind.None);
            if (conv.NormIndex is { } norm)
            {
                builder.Norm(group, conv.OutChannels, VggGroup(norm), spec.Norm);
            }

            string reader = i + 1 < convs.Count ? VggGroup(convs[i + 1].Index) + ".weight" : "classifier.weight";
            builder.Input(group, conv.OutChannels, reader);
        }

        builder.Unpermuted("classifier.bias");
        return builder.Build();
    }

    private static PermutationSpec ForResNet20(ModelSpec spec)
    {
        var builder = new Builder();
        int[] widths = ResNet20.StageWidths(spec);
        bool convBias = spec.Norm == NormKind.None;
        string stem = StreamGroup(0);
        builder.Output(stem, widths[0], "conv1", convBias);
        builder.Norm(stem, widths[0], "norm1", spec.Norm);
        for (int s = 0; s < widths.Length; s++)
        {
            string stream = StreamGroup(s);
            for (int b = 0; b < ResNet20.BlocksPerStage; b++)
            {
                string prefix = string.Create(CultureInfo.InvariantCulture, $"layer{s + 1}.{b}");
                bool projection = ResNet20.HasProjection(s, b);
                int inputStage = projection ? s - 1 : s;
                string input = StreamGroup(inputStage);
                string inner = InnerGroup(s, b);

                builder.Input(input, widths[inputStage], prefix + ".conv1.weight");
                builder.Output(inner, widths[s], prefix + ".conv1", convBias);
                builder.Norm(inner, widths[s], prefix + ".norm1", spec.Norm);
                builder.Input(inner, widths[s], prefix + ".conv2.weight");
                builder.Output(stream, widths[s], prefix + ".conv2", convBias);
                builder.Norm(stream, widths[s], prefix + ".norm2", spec.Norm);
                if (projection)
                {
                    builder.Input(input, widths[inputStage], prefix + ".shortcut.0.weight");
                    builder.Output(stream, widths[s], prefix + ".shortcut.0", convBias);
                    builder.Norm(stream, widths[s], prefix + ".shortcut.1", spec.Norm);
                }
            }
        }

        builder.Input(StreamGroup(widths.Length - 1), widths[^1], "linear.weight");
        builder.Unpermuted("linear.bias");
        return builder.Build();
    }

    /// <summary>Collects axes per group in first-touch order.</summary>
    private sealed class Builder
    {
        private readonly List<(string Name, int Size, List<PermutationAxis> Axes)> _groups = [];
        private readonly List<string> _unpermuted = [];

        /// <summary>A layer's output channels: <c>{layer}.weight</c> axis 0 and, with a bias, <c>{layer}.bias</c> axis 0.</summary>
        public void Output(string group, int size, string layer, bool hasBias)
        {
            Add(group, size, new PermutationAxis(layer + ".weight", 0));
            if (hasBias)
            {
                Add(group, size, new PermutationAxis(layer + ".bias", 0));
            }
        }

        /// <summary>A norm layer's per-channel tensors (nothing for <see cref="NormKind.None"/>).</summary>
        public void Norm(string group, int size, string layer, NormKind norm)
        {
            if (norm == NormKind.None)
            {
                return;
            }

            Add(group, size, new PermutationAxis(layer + ".weight", 0));
            Add(group, size, new PermutationAxis(layer + ".bias", 0));
            if (norm == NormKind.Batch)
            {
                Add(group, size, new PermutationAxis(layer + ".running_mean", 0, CostExcluded: true));
                Add(group, size, new PermutationAxis(layer + ".running_var", 0, CostExcluded: true));
                _unpermuted.Add(layer + ".num_batches_tracked");
            }
        }

        /// <summary>A weight reading the group's channels: axis 1.</summary>
        public void Input(string group, int size, string weight) => Add(group, size, new PermutationAxis(weight, 1));

        public void Unpermuted(string tensor) => _unpermuted.Add(tensor);

        public PermutationSpec Build() =>
            new(_groups.Select(g => new PermutationGroup(g.Name, g.Size, g.Axes)), _unpermuted);

        private void Add(string group, int size, PermutationAxis axis)
        {
            int index = _groups.FindIndex(g => g.Name == group);
            if (index < 0)
            {
                _groups.Add((group, size, [axis]));
            }
            else
            {
                _groups[index].Axes.Add(axis);
            }
        }
    }
}
