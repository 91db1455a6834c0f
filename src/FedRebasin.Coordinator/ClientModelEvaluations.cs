using FedRebasin.Training;

namespace FedRebasin.Coordinator;

/// <summary>
/// The round's client models as evaluated on the coordinator's evaluation data, as sample-weighted sums: the
/// "endpoints" the merge barrier compares the merged model with.
/// </summary>
/// <param name="Weight">Total averaging weight (samples) of the evaluated updates.</param>
/// <param name="LossSum">Sum of weight × loss.</param>
/// <param name="AccuracySum">Sum of weight × accuracy.</param>
internal sealed record ClientModelEvaluations(double Weight, double LossSum, double AccuracySum)
{
    /// <summary>No update evaluated.</summary>
    public static ClientModelEvaluations None { get; } = new(0, 0, 0);

    /// <summary>Sample-weighted mean loss of the evaluated client models (NaN when none).</summary>
    public double MeanLoss => Weight > 0 ? LossSum / Weight : double.NaN;

    /// <summary>Sample-weighted mean accuracy of the evaluated client models (NaN when none).</summary>
    public double MeanAccuracy => Weight > 0 ? AccuracySum / Weight : double.NaN;

    /// <summary>These sums with one more client model.</summary>
    public ClientModelEvaluations Add(Evaluation evaluation, long samples)
    {
        ArgumentNullException.ThrowIfNull(evaluation);
        return new(Weight + samples, LossSum + (samples * evaluation.Loss), AccuracySum + (samples * evaluation.Accuracy));
    }
}
