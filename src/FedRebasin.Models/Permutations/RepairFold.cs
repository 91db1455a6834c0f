using TorchSharp;
using static TorchSharp.torch;

namespace FedRebasin.Models.Permutations;

/// <summary>Folds a per-channel affine correction of a repair point's pre-activation into the model's tensors.</summary>
public static class RepairFold
{
    /// <summary>
    /// Changes the point's <see cref="RepairPoint.Target"/> tensors in place so that the pre-activation becomes
    /// <c>y'[c] = scale[c]·y[c] + shift[c]</c>: <c>W'[c] = W[c]·scale[c]</c> along axis 0 and
    /// <c>b'[c] = b[c]·scale[c] + shift[c]</c>. Runs under <c>no_grad</c>; pass a model's live
    /// <c>state_dict()</c> to edit the model itself.
    /// </summary>
    /// <exception cref="ArgumentException">The point is not foldable, a target tensor is missing from
    /// <paramref name="state"/>, or a length or first dimension differs from <see cref="RepairPoint.Channels"/>.</exception>
    public static void Apply(IReadOnlyDictionary<string, Tensor> state, RepairPoint point, IReadOnlyList<double> scale, IReadOnlyList<double> shift)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(point);
        ArgumentNullException.ThrowIfNull(scale);
        ArgumentNullException.ThrowIfNull(shift);
        if (point.Target is not { } target)
        {
            throw new ArgumentException($"Repair point '{point.Name}' cannot be folded into the model (no target).", nameof(point));
        }

        if (scale.Count != point.Channels || shift.Count != point.Channels)
        {
            throw new ArgumentException($"Repair point '{point.Name}' has {point.Channels} channels; got {scale.Count} scales and {shift.Count} shifts.", nameof(scale));
        }

        var weight = Get(state, target.Weight, point);
        var bias = Get(state, target.Bias, point);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var scaleTensor = tensor(scale.ToArray(), device: weight.device).to_type(weight.dtype);
        var shiftTensor = tensor(shift.ToArray(), device: bias.device).to_type(bias.dtype);
        long[] broadcast = [point.Channels, .. Enumerable.Repeat(1L, (int)weight.dim() - 1)];
        weight.mul_(scaleTensor.view(broadcast));
        bias.mul_(scaleTensor.to(bias.device)).add_(shiftTensor);
    }

    private static Tensor Get(IReadOnlyDictionary<string, Tensor> state, string name, RepairPoint point)
    {
        if (!state.TryGetValue(name, out var tensor))
        {
            throw new ArgumentException($"Repair point '{point.Name}': tensor '{name}' is not in the state dict.", nameof(state));
        }

        if (tensor.dim() == 0 || tensor.shape[0] != point.Channels)
        {
            throw new ArgumentException($"Repair point '{point.Name}': tensor '{name}' has first dimension {(tensor.dim() == 0 ? 0 : tensor.shape[0])}, not {point.Channels}.", nameof(state));
        }

        return tensor;
    }
}
