using System.Globalization;
using FedRebasin.Models.Permutations;

namespace FedRebasin.Merging.Repair;

/// <summary>
/// Per-channel target statistics (mean μ*, std σ*) for every repair point of a model, in
/// <see cref="FedRebasin.Models.ClassifierModel.RepairPoints"/> order. Built from the endpoints' moments as
/// <c>μ* = Σ wᵢ μᵢ</c> and <c>σ* = Σ wᵢ σᵢ</c> with weights normalised to sum 1: the <b>std</b> is mixed, not the
/// variance (ALGORITHMS.md §4.3). Immutable.
/// </summary>
public sealed class RepairTargets
{
    private readonly double[][] _means;
    private readonly double[][] _stds;

    /// <summary>Targets given directly: one mean and one std vector per repair point (copied).</summary>
    /// <exception cref="ArgumentException">The lists differ in length, are empty, a point's vectors differ in length or
    /// are empty, a value is not finite, or a std is negative.</exception>
    public RepairTargets(IReadOnlyList<IReadOnlyList<double>> means, IReadOnlyList<IReadOnlyList<double>> stds)
    {
        ArgumentNullException.ThrowIfNull(means);
        ArgumentNullException.ThrowIfNull(stds);
        if (means.Count == 0 || means.Count != stds.Count)
        {
            throw new ArgumentException($"Targets need the same, positive number of mean ({means.Count}) and std ({stds.Count}) vectors.", nameof(stds));
        }

        _means = new double[means.Count][];
        _stds = new double[means.Count][];
        for (int p = 0; p < means.Count; p++)
        {
            var mean = means[p] ?? throw new ArgumentException($"Target mean of point {p} is null.", nameof(means));
            var std = stds[p] ?? throw new ArgumentException($"Target std of point {p} is null.", nameof(stds));
            if (mean.Count == 0 || mean.Count != std.Count)
            {
                throw new ArgumentException($"Point {p}: target mean ({mean.Count}) and std ({std.Count}) must have the same, positive length.", nameof(stds));
            }

            for (int c = 0; c < mean.Count; c++)
            {
                if (!double.IsFinite(mean[c]) || !double.IsFinite(std[c]) || std[c] < 0)
                {
                    throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"Point {p}, channel {c}: target mean {mean[c]} and std {std[c]} must be finite and the std non-negative."), nameof(stds));
                }
            }

            _means[p] = [.. mean];
            _stds[p] = [.. std];
        }

        Means = Array.AsReadOnly(_means.Select(m => (IReadOnlyList<double>)Array.AsReadOnly(m)).ToArray());
        Stds = Array.AsReadOnly(_stds.Select(s => (IReadOnlyList<double>)Array.AsReadOnly(s)).ToArray());
    }

    /// <summary>Number of repair points.</summary>
    public int Count => _means.Length;

    /// <summary>Per point, the per-channel target mean μ*.</summary>
    public IReadOnlyList<IReadOnlyList<double>> Means { get; }

    /// <summary>Per point, the per-channel target std σ*.</summary>
    public IReadOnlyList<IReadOnlyList<double>> Stds { get; }

    /// <summary>
    /// Mixes endpoint statistics: <c>μ* = Σ wᵢ μᵢ</c>, <c>σ* = Σ wᵢ σᵢ</c> (population std), with the weights normalised
    /// to sum 1 (in federated learning the weights are client sample counts). The moments must already be in the merged
    /// model's frame (permuted with each endpoint's permutation, <see cref="ChannelMoments.Permute"/>).
    /// </summary>
    /// <param name="endpoints">One entry per endpoint: its moments at every repair point, in order, and its weight.</param>
    /// <exception cref="ArgumentException">No endpoints; a weight is not positive and finite; endpoints differ in the
    /// number of points or a point's channels; or some moments are empty (count 0). The message names the endpoint and point.</exception>
    public static RepairTargets Mix(IReadOnlyList<(IReadOnlyList<ChannelMoments> Moments, double Weight)> endpoints)
    {
        RequirePositiveWeights(endpoints);
        return MixCore(endpoints, pool: false);
    }

    /// <summary>
    /// Pools endpoint statistics as one population (law of total variance): <c>μ* = Σ wᵢ μᵢ</c> and
    /// <c>σ*² = Σ wᵢ (σᵢ² + μᵢ²) − μ*²</c>, weights normalised to sum 1. Unlike <see cref="Mix"/> the target spread
    /// includes how far the endpoints' means lie apart, which is what the merged model shows when it is measured on the
    /// union of the endpoints' data: the consistent choice when each endpoint was measured on its own, different data
    /// (non-IID federated clients). On identical data and equal means it equals <see cref="Mix"/> up to σ̄ vs √(mean σ²).
    /// </summary>
    /// <exception cref="ArgumentException">As for <see cref="Mix"/>.</exception>
    public static RepairTargets Pool(IReadOnlyList<(IReadOnlyList<ChannelMoments> Moments, double Weight)> endpoints)
    {
        RequirePositiveWeights(endpoints);
        return MixCore(endpoints, pool: true);
    }

    /// <summary>
    /// Targets on the line between two models: <c>(1−α)·A + α·B</c> for means and stds (REPAIR's interpolation targets).
    /// <paramref name="b"/> must already be in A's frame. At α = 0 the targets are A's statistics, at α = 1 B's.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="alpha"/> is not in [0, 1].</exception>
    /// <exception cref="ArgumentException">As for <see cref="Mix"/>.</exception>
    public static RepairTargets Interpolate(IReadOnlyList<ChannelMoments> a, IReadOnlyList<ChannelMoments> b, double alpha)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        if (!(alpha >= 0 && alpha <= 1))
        {
            throw new ArgumentOutOfRangeException(nameof(alpha), alpha, "Alpha must be in [0, 1].");
        }

        return MixCore([(a, 1 - alpha), (b, alpha)], pool: false);
    }

    /// <summary>The statistics of one model as targets (e.g. a dense model's statistics for post-pruning repair, §5.3).</summary>
    /// <exception cref="ArgumentException">Some moments are empty.</exception>
    public static RepairTargets FromMoments(IReadOnlyList<ChannelMoments> moments)
    {
        ArgumentNullException.ThrowIfNull(moments);
        return MixCore([(moments, 1.0)], pool: false);
    }

    /// <summary>Checks that these targets fit <paramref name="points"/> (same number of points and channels).</summary>
    /// <exception cref="ArgumentException">The message names the first point that does not fit.</exception>
    public void Validate(IReadOnlyList<RepairPoint> points)
    {
        ArgumentNullException.ThrowIfNull(points);
        if (points.Count != Count)
        {
            throw new ArgumentException($"The targets have {Count} repair points but the model has {points.Count}.", nameof(points));
        }

        for (int p = 0; p < Count; p++)
        {
            if (points[p].Channels != _means[p].Length)
            {
                throw new ArgumentException($"Repair point '{points[p].Name}' has {points[p].Channels} channels but its targets have {_means[p].Length}.", nameof(points));
            }
        }
    }

    // Weights must be non-negative (checked by the callers) with a positive sum; zero-weight endpoints are still validated.
    private static void RequirePositiveWeights(IReadOnlyList<(IReadOnlyList<ChannelMoments> Moments, double Weight)> endpoints)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        for (int e = 0; e < endpoints.Count; e++)
        {
            double weight = endpoints[e].Weight;
            if (!(weight > 0) || !double.IsFinite(weight))
            {
                throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"Endpoint {e}: weight must be positive and finite, not {weight}."), nameof(endpoints));
            }
        }
    }

    // pool: accumulate E[x²] and take the total variance; otherwise mix the stds.
    private static RepairTargets MixCore(IReadOnlyList<(IReadOnlyList<ChannelMoments> Moments, double Weight)> endpoints, bool pool)
    {
        if (endpoints.Count == 0)
        {
            throw new ArgumentException("At least one endpoint is needed to form repair targets.", nameof(endpoints));
        }

        var first = endpoints[0].Moments ?? throw new ArgumentException("Endpoint 0: moments are null.", nameof(endpoints));
        int points = first.Count;
        if (points == 0)
        {
            throw new ArgumentException("Endpoint 0 has no repair points.", nameof(endpoints));
        }

        double total = endpoints.Sum(e => e.Weight);
        var means = new double[points][];
        var stds = new double[points][];
        for (int p = 0; p < points; p++)
        {
            int channels = first[p]?.Channels ?? 0;
            means[p] = new double[channels];
            stds[p] = new double[channels];
        }

        for (int e = 0; e < endpoints.Count; e++)
        {
            var moments = endpoints[e].Moments ?? throw new ArgumentException($"Endpoint {e}: moments are null.", nameof(endpoints));
            if (moments.Count != points)
            {
                throw new ArgumentException($"Endpoint {e} has moments for {moments.Count} repair points; endpoint 0 has {points}.", nameof(endpoints));
            }

            double weight = endpoints[e].Weight / total;
            for (int p = 0; p < points; p++)
            {
                var point = moments[p] ?? throw new ArgumentException($"Endpoint {e}, point {p}: moments are null.", nameof(endpoints));
                if (point.Channels != means[p].Length)
                {
                    throw new ArgumentException($"Endpoint {e}, point {p}: {point.Channels} channels; endpoint 0 has {means[p].Length}.", nameof(endpoints));
                }

                if (point.Count <= 0)
                {
                    throw new ArgumentException($"Endpoint {e}, point {p}: the moments are empty (no values were accumulated).", nameof(endpoints));
                }

                double[] mean = point.Mean();
                double[] std = point.Std();
                for (int c = 0; c < mean.Length; c++)
                {
                    means[p][c] += weight * mean[c];
                    stds[p][c] += pool ? weight * ((std[c] * std[c]) + (mean[c] * mean[c])) : weight * std[c];
                }
            }
        }

        if (pool)
        {
            for (int p = 0; p < points; p++)
            {
                for (int c = 0; c < means[p].Length; c++)
                {
                    // stds held E[x²] so far.
                    stds[p][c] = Math.Sqrt(Math.Max(0, stds[p][c] - (means[p][c] * means[p][c])));
                }
            }
        }

        return new RepairTargets(means, stds);
    }
}
