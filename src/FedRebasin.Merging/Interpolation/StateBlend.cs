using System.Globalization;
using TorchSharp;
using static TorchSharp.torch;

namespace FedRebasin.Merging.Interpolation;

/// <summary>Linear interpolation of two state dicts: <c>θ(α) = (1−α)·θ_A + α·θ_B</c> (ALGORITHMS.md §1.7).</summary>
public static class StateBlend
{
    /// <summary>
    /// New tensors <c>(1−α)·a + α·b</c> for every floating-point tensor (computed with <c>torch.lerp</c>, on a's device,
    /// in a's dtype; α = 0 gives an exact copy of a, α = 1 an exact copy of b). Non-floating tensors (BatchNorm's
    /// <c>num_batches_tracked</c>) are copied from <paramref name="a"/>. The inputs are not changed. The result keeps
    /// a's name order; its tensors belong to the caller (and to the caller's dispose scope, when one is active) and
    /// do not require gradients. <paramref name="b"/> must already be aligned to a (permuted).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="alpha"/> is not finite.</exception>
    /// <exception cref="ArgumentException">The names, shapes or dtypes differ; the message names the tensor.</exception>
    public static Dictionary<string, Tensor> Lerp(IReadOnlyDictionary<string, Tensor> a, IReadOnlyDictionary<string, Tensor> b, double alpha)
    {
        EnsureCompatible(a, b);
        if (!double.IsFinite(alpha))
        {
            throw new ArgumentOutOfRangeException(nameof(alpha), alpha, "Alpha must be finite.");
        }

        var result = new Dictionary<string, Tensor>(a.Count);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        foreach (var (name, left) in a)
        {
            var right = b[name];
            Tensor blended;
            if (!left.is_floating_point() || alpha == 0)
            {
                blended = left.detach().clone();
            }
            else if (alpha == 1)
            {
                blended = right.detach().to(left.device).clone();
            }
            else
            {
                using var weight = tensor(alpha, dtype: left.dtype, device: left.device);
                blended = left.detach().lerp(right.detach().to(left.device), weight);
            }

            result[name] = blended.MoveToOuterDisposeScope();
        }

        return result;
    }

    /// <summary>Checks that two state dicts hold the same names with the same shapes and dtypes.</summary>
    /// <exception cref="ArgumentException">The message names the first tensor that differs.</exception>
    public static void EnsureCompatible(IReadOnlyDictionary<string, Tensor> a, IReadOnlyDictionary<string, Tensor> b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        foreach (var (name, left) in a)
        {
            if (!b.TryGetValue(name, out var right))
            {
                throw new ArgumentException($"Tensor '{name}' is in the first state but not in the second.", nameof(b));
            }

            if (!left.shape.SequenceEqual(right.shape))
            {
                throw new ArgumentException($"Tensor '{name}' has shape [{Shape(left)}] in the first state and [{Shape(right)}] in the second.", nameof(b));
            }

            if (left.dtype != right.dtype)
            {
                throw new ArgumentException($"Tensor '{name}' is {left.dtype} in the first state and {right.dtype} in the second.", nameof(b));
            }
        }

        foreach (var name in b.Keys)
        {
            if (!a.ContainsKey(name))
            {
                throw new ArgumentException($"Tensor '{name}' is in the second state but not in the first.", nameof(b));
            }
        }
    }

    private static string Shape(Tensor t) => string.Join(',', t.shape.Select(d => d.ToString(CultureInfo.InvariantCulture)));
}
