using System.Globalization;
using FedRebasin.Models.Permutations;
using static TorchSharp.torch;

namespace FedRebasin.Models;

/// <summary>
/// Multi-layer perceptron with ReLU. Equivalent to PyTorch's
/// <c>nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), ..., nn.Linear(512, 10))</c>
/// applied to <c>x.flatten(1)</c>: parameters are <c>0.weight</c>, <c>0.bias</c>, <c>2.weight</c>, ... .
/// </summary>
/// <remarks>
/// Repair points: the output of every hidden Linear (<c>0</c>, <c>2</c>, ...) before its ReLU, in group <c>P{i}</c>,
/// folded into that Linear's weight and bias. The logits layer is not a repair point.
/// </remarks>
public sealed class Mlp : ClassifierModel
{
    private readonly nn.Module<Tensor, Tensor>[] _linears;
    private readonly RepairPoint[] _repairPoints;

    /// <summary>Builds the MLP described by <paramref name="spec"/> (input features, hidden widths, classes).</summary>
    public Mlp(ModelSpec spec)
        : base(nameof(Mlp), spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var widths = new[] { spec.InputFeatures }.Concat(spec.Hidden).Append(spec.Classes).ToArray();
        _linears = new nn.Module<Tensor, Tensor>[widths.Length - 1];
        for (int i = 0; i < _linears.Length; i++)
        {
            _linears[i] = nn.Linear(widths[i], widths[i + 1]);
            // Sequential index 2i: the ReLUs at odd indices hold no state.
            register_module((2 * i).ToString(CultureInfo.InvariantCulture), _linears[i]);
        }

        _repairPoints = new RepairPoint[_linears.Length - 1];
        for (int i = 0; i < _repairPoints.Length; i++)
        {
            string layer = (2 * i).ToString(CultureInfo.InvariantCulture);
            _repairPoints[i] = new RepairPoint(layer, PermutationSpecs.MlpGroup(i), widths[i + 1], new RepairTarget(layer + ".weight", layer + ".bias"));
        }
    }

    /// <inheritdoc />
    public override IReadOnlyList<RepairPoint> RepairPoints => _repairPoints;

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        return ForwardCore(input, null);
    }

    /// <inheritdoc />
    protected override Tensor ForwardCore(Tensor input, Action<int, Tensor>? tap)
    {
        var x = input.flatten(1);
        for (int i = 0; i < _linears.Length - 1; i++)
        {
            x = _linears[i].call(x);
            tap?.Invoke(i, x);
            x = nn.functional.relu(x);
        }

        return _linears[^1].call(x);
    }
}
