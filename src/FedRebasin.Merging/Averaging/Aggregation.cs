using TorchSharp;
using static TorchSharp.torch;

namespace FedRebasin.Merging.Averaging;

/// <summary>How aligned models are combined into one.</summary>
public enum AggregationKind
{
    /// <summary>Mean weighted by the given weights (sample counts in FL): FedAvg's rule.</summary>
    Mean,

    /// <summary>Coordinate-wise median (unweighted): robust to a minority of corrupted models.</summary>
    Median,

    /// <summary>Coordinate-wise mean after dropping the largest and smallest values (unweighted).</summary>
    TrimmedMean,
}

/// <summary>Combines models with the same tensor layout.</summary>
public static class Aggregation
{
    /// <summary>Default fraction dropped at each end by <see cref="AggregationKind.TrimmedMean"/>.</summary>
    public const double DefaultTrimFraction = 0.1;

    /// <summary>Parses <c>mean</c>, <c>median</c> or <c>trimmed-mean</c>.</summary>
    public static AggregationKind Parse(string text) => text?.Trim().ToLowerInvariant() switch
    {
        "mean" => AggregationKind.Mean,
        "median" => AggregationKind.Median,
        "trimmed-mean" or "trimmed" => AggregationKind.TrimmedMean,
        _ => throw new FormatException($"aggregation must be mean, median or trimmed-mean, not '{text}'."),
    };

    /// <summary>The canonical name of an aggregation kind.</summary>
    public static string ToName(AggregationKind kind) => kind switch
    {
        AggregationKind.Median => "median",
        AggregationKind.TrimmedMean => "trimmed-mean",
        _ => "mean",
    };

    /// <summary>Weighted mean of the states (weights need not sum to 1). New tensors; the caller owns them.</summary>
    public static Dictionary<string, Tensor> WeightedMean(IReadOnlyList<IReadOnlyDictionary<string, Tensor>> states, IReadOnlyList<double> weights)
    {
        ArgumentNullException.ThrowIfNull(states);
        ArgumentNullException.ThrowIfNull(weights);
        if (weights.Count != states.Count)
        {
            throw new ArgumentException($"{weights.Count} weights given for {states.Count} models.");
        }

        StateDicts.RequireSameLayout(states);
        using var sum = new RunningWeightedSum();
        for (int i = 0; i < states.Count; i++)
        {
            sum.Add(states[i], weights[i]);
        }

        return sum.TakeMean();
    }

    /// <summary>Coordinate-wise median, or trimmed mean dropping ⌊<paramref name="trimFraction"/>·N⌋ values at each end.</summary>
    public static Dictionary<string, Tensor> Robust(IReadOnlyList<IReadOnlyDictionary<string, Tensor>> states, AggregationKind kind, double trimFraction = DefaultTrimFraction)
    {
        ArgumentNullException.ThrowIfNull(states);
        StateDicts.RequireSameLayout(states);
        if (kind == AggregationKind.Mean)
        {
            return WeightedMean(states, Enumerable.Repeat(1.0, states.Count).ToArray());
        }

        if (!(trimFraction >= 0 && trimFraction < 0.5))
        {
            throw new ArgumentException($"trim fraction must be in [0, 0.5), not {trimFraction}.");
        }

        int n = states.Count;
        int trim = (int)Math.Floor(trimFraction * n);
        using var noGrad = no_grad();
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (name, first) in states[0])
        {
            if (!StateDicts.IsFloating(first))
            {
                result[name] = first.clone();
                continue;
            }

            using var scope = NewDisposeScope();
            var stacked = stack(states.Select(s => s[name].detach()).ToArray());
            Tensor combined;
            if (kind == AggregationKind.Median)
            {
                // The mean of the two middle values for even N (torch.median would return the lower one).
                var sorted = stacked.sort(0).Values;
                combined = n % 2 == 1 ? sorted[n / 2] : sorted[(n / 2) - 1].add(sorted[n / 2]).div(2);
            }
            else
            {
                combined = stacked.sort(0).Values.narrow(0, trim, n - (2 * trim)).mean([0]);
            }

            result[name] = combined.to_type(first.dtype).MoveToOuterDisposeScope();
        }

        return result;
    }
}
