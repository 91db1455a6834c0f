namespace FedRebasin.Merging.Repair;

/// <summary>How <see cref="Repairer"/> measures the merged model's statistics.</summary>
public enum RepairEstimation
{
    /// <summary>
    /// For each foldable point in forward order, measure the merged model at that point with every earlier correction
    /// already folded in, then fold its correction: one calibration pass per point. Exact on the calibration data
    /// ("sequential REPAIR" in rethink-re-basin).
    /// </summary>
    Sequential,

    /// <summary>
    /// One pass measures every point on the uncorrected model, then all corrections are folded at once: what a
    /// federated statistics round over the plain merged model can do. Exact at the first point only. Later points
    /// overshoot: their measured std is collapsed partly because their inputs are, and once the earlier corrections
    /// restore the inputs the later scales compound. Eval-mode BatchNorm and GroupNorm(1, C) do not undo this (the
    /// first is a fixed affine map, the second normalises over all channels together); in the tests a two-layer MLP
    /// ends with variance ratios 1.0 and 1.75, but an 8-conv VGG ends above 10 at its deepest points.
    /// </summary>
    Simultaneous,

    /// <summary>
    /// REPAIR's original one-pass estimation (Jordan et al.; "simultaneous" in rethink-re-basin): during a single pass
    /// every foldable point's output is corrected on the fly with the <b>current batch's</b> statistics, so later
    /// points see approximately corrected inputs, while the uncorrected outputs' moments are accumulated; the
    /// corrections computed from those moments are then folded. Close to <see cref="Sequential"/> at the cost of one
    /// pass, not exact (batch statistics are not the pooled ones). A federated client can run the same pass given the
    /// targets.
    /// </summary>
    BatchStatistics,
}

/// <summary>Settings of <see cref="Repairer.Apply"/>.</summary>
public sealed record RepairOptions
{
    /// <summary>The default settings (sequential estimation, epsilon <see cref="RepairCorrections.DefaultEpsilon"/>, no BN reset).</summary>
    public static RepairOptions Default { get; } = new();

    /// <summary>How the merged model's statistics are estimated. Default <see cref="RepairEstimation.Sequential"/>.</summary>
    public RepairEstimation Estimation { get; init; } = RepairEstimation.Sequential;

    /// <summary>Dead-channel threshold: where the merged std is below it, a channel is not rescaled. Default 1e-6.</summary>
    public double Epsilon { get; init; } = RepairCorrections.DefaultEpsilon;

    /// <summary>
    /// Re-estimate every BatchNorm's running statistics (as <see cref="RepairMode.BnReset"/>) before the correction
    /// ("bn-reset then repair"). Only for BatchNorm models. Default false.
    /// </summary>
    public bool ResetBatchNorm { get; init; }

    /// <summary>How far each correction may go (damping, scale cap); <see cref="RepairBound.None"/> by default.</summary>
    public RepairBound Bound { get; init; } = RepairBound.None;

    /// <summary>Checks the settings.</summary>
    /// <exception cref="ArgumentException">A setting is out of range; the message names it.</exception>
    public void Validate()
    {
        if (!Enum.IsDefined(Estimation))
        {
            throw new ArgumentException($"Unknown repair estimation '{Estimation}'.");
        }

        if (!(Epsilon >= 0) || !double.IsFinite(Epsilon))
        {
            throw new ArgumentException($"The repair epsilon must be finite and non-negative, not {Epsilon.ToString(System.Globalization.CultureInfo.InvariantCulture)}.");
        }

        ArgumentNullException.ThrowIfNull(Bound);
        Bound.Validate();
    }
}
