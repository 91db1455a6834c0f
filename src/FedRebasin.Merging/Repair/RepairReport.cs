namespace FedRebasin.Merging.Repair;

/// <summary>
/// What a repair did at one repair point. Means and stds are averaged over channels; the variance ratios are
/// <c>mean_c(σ²) / mean_c(σ*²)</c> (1 = the merged model's variance equals the target's; below 1 = variance collapse).
/// Target figures are NaN when no targets were given.
/// </summary>
/// <param name="Name">The repair point's name.</param>
/// <param name="Group">The repair point's permutation group.</param>
/// <param name="Corrected">Whether a correction was folded at this point (false for measure-only points and for modes that fold none).</param>
/// <param name="MeanBefore">Channel-averaged mean of the merged model as given.</param>
/// <param name="StdBefore">Channel-averaged std of the merged model as given.</param>
/// <param name="MeanAfter">Channel-averaged mean after the repair.</param>
/// <param name="StdAfter">Channel-averaged std after the repair.</param>
/// <param name="TargetMean">Channel-averaged target mean μ*.</param>
/// <param name="TargetStd">Channel-averaged target std σ*.</param>
/// <param name="VarianceRatioBefore"><c>mean(σ̂²)/mean(σ*²)</c> before.</param>
/// <param name="VarianceRatioAfter"><c>mean(σ²)/mean(σ*²)</c> after.</param>
public sealed record PointRepairReport(
    string Name,
    string Group,
    bool Corrected,
    double MeanBefore,
    double StdBefore,
    double MeanAfter,
    double StdAfter,
    double TargetMean,
    double TargetStd,
    double VarianceRatioBefore,
    double VarianceRatioAfter);

/// <summary>The outcome of <see cref="Repairer.Apply"/>.</summary>
/// <param name="Mode">The mode applied.</param>
/// <param name="Estimation">How the merged statistics were estimated.</param>
/// <param name="Points">One entry per repair point, in forward order.</param>
/// <param name="CalibrationPasses">Full passes over the calibration batches: measurements before and after, one per BatchNorm layer reset (its one-batch order probe is not counted) and the correction passes.</param>
/// <param name="BatchNormLayersReset">BatchNorm layers whose running statistics were re-estimated (0 without a reset).</param>
public sealed record RepairReport(
    RepairMode Mode,
    RepairEstimation Estimation,
    IReadOnlyList<PointRepairReport> Points,
    int CalibrationPasses,
    int BatchNormLayersReset);
