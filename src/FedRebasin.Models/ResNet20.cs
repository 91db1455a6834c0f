using System.Globalization;
using FedRebasin.Models.Permutations;
using FedRebasin.Torch;
using static TorchSharp.torch;

namespace FedRebasin.Models;

/// <summary>
/// ResNet-20 for small images (He et al. 2016; 3 stages of 3 basic blocks, 16w/32w/64w channels) with projection
/// shortcuts (3x3 stride-2 conv + norm) where the shape changes, as used by Git Re-Basin and REPAIR.
/// PyTorch names: <c>conv1</c>, <c>norm1</c>, <c>layer{1,2,3}.{0,1,2}.{conv1,norm1,conv2,norm2}</c>,
/// <c>layer{2,3}.0.shortcut.{0,1}</c>, <c>linear</c>.
/// </summary>
/// <remarks>
/// Repair points, in forward order (with norm none, read <c>conv*</c> for <c>norm*</c> and <c>shortcut.0</c> for
/// <c>shortcut.1</c>: the tapped tensor is then the conv's output and the fold goes into the conv's weight and bias):
/// <list type="bullet">
/// <item><c>norm1</c>: the stem's pre-activation, group <c>stream1</c>, folded into the stem norm.</item>
/// <item>per block <c>layer{s}.{b}</c>: <c>.norm1</c> (the inner pre-activation, group <c>layer{s}.{b}.inner</c>,
/// folded into norm1); <c>.norm2</c> (the residual branch before the add, group <c>stream{s}</c>, folded into norm2);
/// for the projection blocks <c>layer2.0</c> and <c>layer3.0</c>, <c>.shortcut.1</c> (the shortcut branch before the
/// add, group <c>stream{s}</c>, folded into the shortcut norm); and <c>.sum</c>, the residual sum that feeds the
/// block's final ReLU (group <c>stream{s}</c>), which is measured only (<see cref="RepairPoint.Target"/> null): a
/// correction of a sum cannot be folded into one layer, and the identity shortcut has no weights at all. Correct the
/// two branch points instead.</item>
/// </list>
/// </remarks>
public sealed class ResNet20 : ClassifierModel
{
    /// <summary>Basic blocks per stage.</summary>
    internal const int BlocksPerStage = 3;

    private readonly nn.Module<Tensor, Tensor> _conv1;
    private readonly nn.Module<Tensor, Tensor>? _norm1;
    private readonly nn.Module<Tensor, Tensor>[] _stages;
    private readonly BasicBlock[] _blocks;
    private readonly RepairPoint[] _repairPoints;
    private readonly nn.Module<Tensor, Tensor> _linear;

    /// <summary>Builds ResNet-20 with the spec's width multiplier and norm.</summary>
    public ResNet20(ModelSpec spec)
        : base(nameof(ResNet20), spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        bool convBias = spec.Norm == NormKind.None;
        int[] widths = StageWidths(spec);
        _conv1 = nn.Conv2d(spec.InputChannels, widths[0], 3, padding: 1, bias: convBias);
        _norm1 = CreateNorm(spec.Norm, widths[0]);
        register_module("conv1", _conv1);
        if (_norm1 is not null)
        {
            register_module("norm1", _norm1);
        }

        var repairPoints = new List<RepairPoint> { Point(_norm1 is null ? "conv1" : "norm1", PermutationSpecs.StreamGroup(0), widths[0]) };
        _stages = new nn.Module<Tensor, Tensor>[3];
        var allBlocks = new List<BasicBlock>();
        long channels = widths[0];
        for (int s = 0; s < 3; s++)
        {
            var blocks = new List<(string, nn.Module<Tensor, Tensor>)>();
            for (int b = 0; b < BlocksPerStage; b++)
            {
                int stride = s > 0 && b == 0 ? 2 : 1;
                var block = new BasicBlock(channels, widths[s], stride, spec.Norm, repairPoints.Count);
                blocks.Add((b.ToString(CultureInfo.InvariantCulture), block));
                allBlocks.Add(block);

                string prefix = string.Create(CultureInfo.InvariantCulture, $"layer{s + 1}.{b}");
                string stream = PermutationSpecs.StreamGroup(s);
                repairPoints.Add(Point(prefix + (convBias ? ".conv1" : ".norm1"), PermutationSpecs.InnerGroup(s, b), widths[s]));
                repairPoints.Add(Point(prefix + (convBias ? ".conv2" : ".norm2"), stream, widths[s]));
                if (block.HasShortcut)
                {
                    repairPoints.Add(Point(prefix + (convBias ? ".shortcut.0" : ".shortcut.1"), stream, widths[s]));
                }

                repairPoints.Add(new RepairPoint(prefix + ".sum", stream, widths[s], null));
                channels = widths[s];
            }

            _stages[s] = nn.Sequential(blocks);
            register_module($"layer{s + 1}", _stages[s]);
        }

        _blocks = [.. allBlocks];
        _repairPoints = [.. repairPoints];
        _linear = nn.Linear(channels, spec.Classes);
        register_module("linear", _linear);

        static RepairPoint Point(string layer, string group, int channels) =>
            new(layer, group, channels, new RepairTarget(layer + ".weight", layer + ".bias"));
    }

    /// <inheritdoc />
    public override IReadOnlyList<RepairPoint> RepairPoints => _repairPoints;

    /// <inheritdoc />
    public override Tensor forward(Tensor input) => ForwardCore(input, null);

    /// <summary>Channels of the three stages (16w, 32w, 64w) for <paramref name="spec"/>.</summary>
    internal static int[] StageWidths(ModelSpec spec) =>
        [Scale(16, spec.WidthMultiplier), Scale(32, spec.WidthMultiplier), Scale(64, spec.WidthMultiplier)];

    /// <summary>Whether block <paramref name="block"/> of stage <paramref name="stage"/> (0-based) has a projection shortcut (it changes resolution).</summary>
    internal static bool HasProjection(int stage, int block) => stage > 0 && block == 0;

    /// <inheritdoc />
    protected override Tensor ForwardCore(Tensor input, Action<int, Tensor>? tap)
    {
        var x = _conv1.call(input);
        if (_norm1 is not null)
        {
            x = _norm1.call(x);
        }

        tap?.Invoke(0, x);
        x = nn.functional.relu(x);
        foreach (var block in _blocks)
        {
            x = block.Forward(x, tap);
        }

        x = nn.functional.adaptive_avg_pool2d(x, 1).flatten(1);
        return _linear.call(x);
    }

    private sealed class BasicBlock : nn.Module<Tensor, Tensor>
    {
        private readonly nn.Module<Tensor, Tensor> _conv1;
        private readonly nn.Module<Tensor, Tensor>? _norm1;
        private readonly nn.Module<Tensor, Tensor> _conv2;
        private readonly nn.Module<Tensor, Tensor>? _norm2;
        private readonly nn.Module<Tensor, Tensor>? _shortcut;
        private readonly int _firstTap;

        // firstTap: index of the block's first repair point (inner, branch, [shortcut,] sum follow).
        public BasicBlock(long inChannels, long outChannels, int stride, NormKind norm, int firstTap)
            : base(nameof(BasicBlock))
        {
            _firstTap = firstTap;
            bool convBias = norm == NormKind.None;
            _conv1 = nn.Conv2d(inChannels, outChannels, 3, stride: stride, padding: 1, bias: convBias);
            _norm1 = CreateNorm(norm, outChannels);
            _conv2 = nn.Conv2d(outChannels, outChannels, 3, padding: 1, bias: convBias);
            _norm2 = CreateNorm(norm, outChannels);
            register_module("conv1", _conv1);
            if (_norm1 is not null)
            {
                register_module("norm1", _norm1);
            }

            register_module("conv2", _conv2);
            if (_norm2 is not null)
            {
                register_module("norm2", _norm2);
            }

            if (stride != 1 || inChannels != outChannels)
            {
                var shortcut = new List<(string, nn.Module<Tensor, Tensor>)>
                {
                    ("0", nn.Conv2d(inChannels, outChannels, 3, stride: stride, padding: 1, bias: convBias)),
                };
                if (CreateNorm(norm, outChannels) is { } shortcutNorm)
                {
                    shortcut.Add(("1", shortcutNorm));
                }

                _shortcut = nn.Sequential(shortcut);
                register_module("shortcut", _shortcut);
            }
        }

        public bool HasShortcut => _shortcut is not null;

        public override Tensor forward(Tensor input) => Forward(input, null);

        public Tensor Forward(Tensor input, Action<int, Tensor>? tap)
        {
            int index = _firstTap;
            var x = _conv1.call(input);
            if (_norm1 is not null)
            {
                x = _norm1.call(x);
            }

            tap?.Invoke(index++, x);
            x = nn.functional.relu(x);
            x = _conv2.call(x);
            if (_norm2 is not null)
            {
                x = _norm2.call(x);
            }

            tap?.Invoke(index++, x);
            var skip = input;
            if (_shortcut is not null)
            {
                skip = _shortcut.call(input);
                tap?.Invoke(index++, skip);
            }

            var sum = x.add(skip, HeldScalars.One);
            tap?.Invoke(index, sum);
            return nn.functional.relu(sum);
        }
    }
}
