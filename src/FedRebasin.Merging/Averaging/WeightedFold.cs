using System.Numerics;

namespace FedRebasin.Merging.Averaging;

/// <summary>
/// The arithmetic of <see cref="RunningWeightedSum"/> on host memory: <c>sum += weight · x</c> in float64 and
/// <c>mean = sum / total</c>, vectorised. Values may lie at any alignment (raw payload bytes). Multiply and add stay
/// two roundings (no fused multiply-add), so results do not depend on the CPU.
/// </summary>
public static class WeightedFold
{
    /// <summary><c>sum[i] = weight·x[i]</c> when <paramref name="first"/>, else <c>sum[i] += weight·x[i]</c>.</summary>
    /// <exception cref="ArgumentException">The lengths differ.</exception>
    public static void Add(Span<double> sum, ReadOnlySpan<float> x, double weight, bool first)
    {
        RequireSameLength(sum.Length, x.Length);
        int i = 0;
        if (Vector.IsHardwareAccelerated && x.Length >= Vector<float>.Count)
        {
            var w = new Vector<double>(weight);
            int width = Vector<float>.Count;
            int half = Vector<double>.Count;
            for (; i <= x.Length - width; i += width)
            {
                Vector.Widen(new Vector<float>(x[i..]), out var low, out var high);
                var lowSum = low * w;
                var highSum = high * w;
                if (!first)
                {
                    lowSum += new Vector<double>(sum[i..]);
                    highSum += new Vector<double>(sum[(i + half)..]);
                }

                lowSum.CopyTo(sum[i..]);
                highSum.CopyTo(sum[(i + half)..]);
            }
        }

        for (; i < x.Length; i++)
        {
            double term = weight * x[i];
            sum[i] = first ? term : sum[i] + term;
        }
    }

    /// <summary><c>sum[i] = weight·x[i]</c> when <paramref name="first"/>, else <c>sum[i] += weight·x[i]</c>.</summary>
    /// <exception cref="ArgumentException">The lengths differ.</exception>
    public static void Add(Span<double> sum, ReadOnlySpan<double> x, double weight, bool first)
    {
        RequireSameLength(sum.Length, x.Length);
        int i = 0;
        if (Vector.IsHardwareAccelerated && x.Length >= Vector<double>.Count)
        {
            var w = new Vector<double>(weight);
            for (; i <= x.Length - Vector<double>.Count; i += Vector<double>.Count)
            {
                var term = new Vector<double>(x[i..]) * w;
                (first ? term : term + new Vector<double>(sum[i..])).CopyTo(sum[i..]);
            }
        }

        for (; i < x.Length; i++)
        {
            double term = weight * x[i];
            sum[i] = first ? term : sum[i] + term;
        }
    }

    /// <summary><c>mean[i] = (float)(sum[i] / total)</c>: one rounding from the float64 quotient.</summary>
    /// <exception cref="ArgumentException">The lengths differ.</exception>
    public static void Divide(ReadOnlySpan<double> sum, double total, Span<float> mean)
    {
        RequireSameLength(sum.Length, mean.Length);
        int i = 0;
        if (Vector.IsHardwareAccelerated && sum.Length >= Vector<float>.Count)
        {
            var t = new Vector<double>(total);
            int width = Vector<float>.Count;
            int half = Vector<double>.Count;
            for (; i <= sum.Length - width; i += width)
            {
                var low = new Vector<double>(sum[i..]) / t;
                var high = new Vector<double>(sum[(i + half)..]) / t;
                Vector.Narrow(low, high).CopyTo(mean[i..]);
            }
        }

        for (; i < sum.Length; i++)
        {
            mean[i] = (float)(sum[i] / total);
        }
    }

    /// <summary><c>mean[i] = sum[i] / total</c>.</summary>
    /// <exception cref="ArgumentException">The lengths differ.</exception>
    public static void Divide(ReadOnlySpan<double> sum, double total, Span<double> mean)
    {
        RequireSameLength(sum.Length, mean.Length);
        int i = 0;
        if (Vector.IsHardwareAccelerated && sum.Length >= Vector<double>.Count)
        {
            var t = new Vector<double>(total);
            for (; i <= sum.Length - Vector<double>.Count; i += Vector<double>.Count)
            {
                (new Vector<double>(sum[i..]) / t).CopyTo(mean[i..]);
            }
        }

        for (; i < sum.Length; i++)
        {
            mean[i] = sum[i] / total;
        }
    }

    private static void RequireSameLength(int sum, int other)
    {
        if (sum != other)
        {
            throw new ArgumentException($"The accumulator has {sum} elements but the operand has {other}.");
        }
    }
}
