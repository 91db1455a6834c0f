using System.Globalization;
using FedRebasin.Models.Permutations;

namespace FedRebasin.Merging.Repair;

/// <summary>
/// The per-channel affine correction <c>y' = scale·y + shift</c> that moves a repair point's statistics toward its
/// targets. A pure function of vectors of statistics, so a federated coordinator can compute corrections from moments
/// that clients send and fold them with <see cref="RepairFold.Apply"/>.
/// </summary>
public static class RepairCorrections
{
    /// <summary>Default dead-channel threshold: a merged std below this gets no rescaling.</summary>
    public const double DefaultEpsilon = 1e-6;

    /// <summary>
    /// Computes scale and shift per channel from the targets (μ*, σ*) and the merged model's own statistics (μ̂, σ̂ =
    /// population std of <paramref name="merged"/>):
    /// <list type="bullet">
    /// <item><see cref="RepairMode.Repair"/>: <c>scale = σ*/σ̂</c>, <c>shift = μ* − scale·μ̂</c> (the result has mean μ*, std σ*).</item>
    /// <item><see cref="RepairMode.Rescale"/>: <c>scale = σ*/σ̂</c>, <c>shift = 0</c> (std σ*, mean scale·μ̂).</item>
    /// <item><see cref="RepairMode.Reshift"/>: <c>scale = 1</c>, <c>shift = μ* − μ̂</c> (mean μ*, std σ̂).</item>
    /// <item><see cref="RepairMode.None"/>: <c>scale = 1</c>, <c>shift = 0</c>.</item>
    /// </list>
    /// Dead channels (<c>σ̂ &lt; epsilon</c>) are not rescaled: <c>scale = 1</c> (and for repair <c>shift = μ* − μ̂</c>).
    /// </summary>
    /// <param name="point">The repair point (for its channel count and name in errors); it need not be foldable.</param>
    /// <param name="targetMean">μ* per channel.</param>
    /// <param name="targetStd">σ* per channel.</param>
    /// <param name="merged">The merged model's moments at this point, measured with every earlier correction applied.</param>
    /// <param name="mode">Repair, rescale, reshift or none.</param>
    /// <param name="epsilon">Dead-channel threshold on σ̂ (non-negative, finite).</param>
    /// <param name="bound">How far the correction may go (<see cref="RepairBound"/>); the full correction when null.</param>
    /// <returns>New arrays of length <c>point.Channels</c>.</returns>
    /// <exception cref="ArgumentException">Lengths differ from the point's channels, the moments are empty, or
    /// <paramref name="mode"/> is <see cref="RepairMode.BnReset"/> (not a per-channel correction).</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="epsilon"/> is negative or not finite.</exception>
    public static (double[] Scale, double[] Shift) Compute(
        RepairPoint point,
        IReadOnlyList<double> targetMean,
        IReadOnlyList<double> targetStd,
        ChannelMoments merged,
        RepairMode mode,
        double epsilon = DefaultEpsilon,
        RepairBound? bound = null)
    {
        ArgumentNullException.ThrowIfNull(point);
        ArgumentNullException.ThrowIfNull(targetMean);
        ArgumentNullException.ThrowIfNull(targetStd);
        ArgumentNullException.ThrowIfNull(merged);
        if (!(epsilon >= 0) || !double.IsFinite(epsilon))
        {
            throw new ArgumentOutOfRangeException(nameof(epsilon), epsilon, "The dead-channel threshold must be finite and non-negative.");
        }

        if (mode is not (RepairMode.None or RepairMode.Repair or RepairMode.Rescale or RepairMode.Reshift))
        {
            throw new ArgumentException($"Repair mode '{mode}' is not a per-channel correction; use none, repair, rescale or reshift.", nameof(mode));
        }

        int channels = point.Channels;
        if (targetMean.Count != channels || targetStd.Count != channels || merged.Channels != channels)
        {
            throw new ArgumentException(
                $"Repair point '{point.Name}' has {channels} channels; got {targetMean.Count} target means, {targetStd.Count} target stds and moments of {merged.Channels} channels.",
                nameof(merged));
        }

        if (merged.Count <= 0)
        {
            throw new ArgumentException($"Repair point '{point.Name}': the merged model's moments are empty.", nameof(merged));
        }

        bound ??= RepairBound.None;
        bound.Validate();
        double[] mean = merged.Mean();
        double[] std = merged.Std();
        var scale = new double[channels];
        var shift = new double[channels];
        for (int c = 0; c < channels; c++)
        {
            bool dead = std[c] < epsilon || std[c] == 0;
            double ratio = bound.Scale(dead ? 1.0 : targetStd[c] / std[c]);
            double goal = bound.Mean(mean[c], targetMean[c]);
            (scale[c], shift[c]) = mode switch
            {
                RepairMode.Repair => (ratio, goal - ratio * mean[c]),
                RepairMode.Rescale => (ratio, 0.0),
                RepairMode.Reshift => (1.0, goal - mean[c]),
                _ => (1.0, 0.0),
            };
        }

        return (scale, shift);
    }
}

/// <summary>
/// How far one correction may move a point's statistics. <see cref="Strength"/> α damps it: the std moves by the
/// factor (σ*/σ̂)^α and the mean to μ̂ + α·(μ* − μ̂) (α = 1: all the way, REPAIR); <see cref="MaxScale"/> c caps the
/// per-channel scale to [1/c, c]. Meant for multi-round federated repair, where every round's full correction restores
/// the spread the clients' own (non-IID) statistics ask for and the next round's training inflates it further
/// (docs/EXPERIMENTS.md): a bounded correction can move each round only part of the way.
/// </summary>
/// <param name="Strength">α in (0, 1]; 1 is the full correction.</param>
/// <param name="MaxScale">c ≥ 1, or infinity for no cap.</param>
public sealed record RepairBound(double Strength = 1.0, double MaxScale = double.PositiveInfinity)
{
    /// <summary>The full correction (α = 1, no cap).</summary>
    public static RepairBound None { get; } = new();

    /// <summary>Whether this is the full correction.</summary>
    public bool IsNone => Strength == 1.0 && double.IsPositiveInfinity(MaxScale);

    /// <summary>Checks the settings.</summary>
    /// <exception cref="ArgumentException">α is not in (0, 1] or c is below 1 (or NaN).</exception>
    public void Validate()
    {
        if (!(Strength > 0 && Strength <= 1))
        {
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"The repair strength must be in (0, 1], not {Strength}."));
        }

        if (!(MaxScale >= 1))
        {
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"The largest repair scale must be at least 1 (or infinity for no cap), not {MaxScale}."));
        }
    }

    /// <summary>The scale applied for a full-correction ratio σ*/σ̂.</summary>
    public double Scale(double ratio)
    {
        double damped = Strength == 1.0 ? ratio : Math.Pow(ratio, Strength);
        return Math.Clamp(damped, 1.0 / MaxScale, MaxScale);
    }

    /// <summary>The mean aimed at, from the merged mean μ̂ and the target μ*.</summary>
    public double Mean(double merged, double target) => Strength == 1.0 ? target : merged + (Strength * (target - merged));
}
