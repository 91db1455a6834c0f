using System.Globalization;
using static TorchSharp.torch;

namespace FedRebasin.Models;

/// <summary>
/// ResNet-20 for small images (He et al. 2016; 3 stages of 3 basic blocks, 16w/32w/64w channels) with projection
/// shortcuts (3x3 stride-2 conv + norm) where the shape changes, as used by Git Re-Basin and REPAIR.
/// PyTorch names: <c>conv1</c>, <c>norm1</c>, <c>layer{1,2,3}.{0,1,2}.{conv1,norm1,conv2,norm2}</c>,
/// <c>layer{2,3}.0.shortcut.{0,1}</c>, <c>linear</c>.
/// </summary>
public sealed class ResNet20 : ClassifierModel
{
    private readonly nn.Module<Tensor, Tensor> _conv1;
    private readonly nn.Module<Tensor, Tensor>? _norm1;
    private readonly nn.Module<Tensor, Tensor>[] _stages;
    private readonly nn.Module<Tensor, Tensor> _linear;

    /// <summary>Builds ResNet-20 with the spec's width multiplier and norm.</summary>
    public ResNet20(ModelSpec spec)
        : base(nameof(ResNet20), spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        bool convBias = spec.Norm == NormKind.None;
        int[] widths = [Scale(16, spec.WidthMultiplier), Scale(32, spec.WidthMultiplier), Scale(64, spec.WidthMultiplier)];
        _conv1 = nn.Conv2d(spec.InputChannels, widths[0], 3, padding: 1, bias: convBias);
        _norm1 = CreateNorm(spec.Norm, widths[0]);
        register_module("conv1", _conv1);
        if (_norm1 is not null)
        {
            register_module("norm1", _norm1);
        }

        _stages = new nn.Module<Tensor, Tensor>[3];
        long channels = widths[0];
        for (int s = 0; s < 3; s++)
        {
            var blocks = new List<(string, nn.Module<Tensor, Tensor>)>();
            for (int b = 0; b < 3; b++)
            {
                int stride = s > 0 && b == 0 ? 2 : 1;
                blocks.Add((b.ToString(CultureInfo.InvariantCulture), new BasicBlock(channels, widths[s], stride, spec.Norm)));
                channels = widths[s];
            }

            _stages[s] = nn.Sequential(blocks);
            register_module($"layer{s + 1}", _stages[s]);
        }

        _linear = nn.Linear(channels, spec.Classes);
        register_module("linear", _linear);
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        var x = _conv1.call(input);
        if (_norm1 is not null)
        {
            x = _norm1.call(x);
        }

        x = nn.functional.relu(x);
        foreach (var stage in _stages)
        {
            x = stage.call(x);
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

        public BasicBlock(long inChannels, long outChannels, int stride, NormKind norm)
            : base(nameof(BasicBlock))
        {
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

        public override Tensor forward(Tensor input)
        {
            var x = _conv1.call(input);
            if (_norm1 is not null)
            {
                x = _norm1.call(x);
            }

            x = nn.functional.relu(x);
            x = _conv2.call(x);
            if (_norm2 is not null)
            {
                x = _norm2.call(x);
            }

            var skip = _shortcut is null ? input : _shortcut.call(input);
            return nn.functional.relu(x.add(skip));
        }
    }
}
