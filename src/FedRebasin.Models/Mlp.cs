using static TorchSharp.torch;

namespace FedRebasin.Models;

/// <summary>
/// Multi-layer perceptron with ReLU. Equivalent to PyTorch's
/// <c>nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), ..., nn.Linear(512, 10))</c>
/// applied to <c>x.flatten(1)</c>: parameters are <c>0.weight</c>, <c>0.bias</c>, <c>2.weight</c>, ... .
/// </summary>
public sealed class Mlp : ClassifierModel
{
    private readonly nn.Module<Tensor, Tensor>[] _linears;

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
            register_module((2 * i).ToString(System.Globalization.CultureInfo.InvariantCulture), _linears[i]);
        }
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var x = input.flatten(1);
        for (int i = 0; i < _linears.Length - 1; i++)
        {
            x = nn.functional.relu(_linears[i].call(x));
        }

        return _linears[^1].call(x);
    }
}
