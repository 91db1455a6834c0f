using FedRebasin.Client;
using FedRebasin.Tensors;

namespace FedRebasin.Simulation;

/// <summary>
/// Keeps, of the models client workers train for the final round, the two from the largest splits (ties: the lower
/// index): the endpoints of the interpolation curve of the last merge. Two models at most, whatever the client count.
/// A model with a non-finite weight is not kept: the coordinator refused it, so it was not merged, and weight matching
/// cannot align it.
/// </summary>
/// <param name="finalRound">The round whose models are kept.</param>
internal sealed class FinalRoundModels(long finalRound)
{
    private readonly Lock _gate = new();
    private readonly Dictionary<int, TrainedModel> _kept = [];

    /// <summary>Takes a freshly trained model (from any worker's thread); a retried round replaces the client's earlier one.</summary>
    public void Offer(TrainedModel model)
    {
        if (model.Round != finalRound || !AllFinite(model))
        {
            return;
        }

        lock (_gate)
        {
            _kept[model.ClientIndex] = model;
            if (_kept.Count > 2)
            {
                _kept.Remove(Ordered().Last().ClientIndex);
            }
        }
    }

    /// <summary>The kept models, largest split first (fewer than two when fewer trained).</summary>
    public IReadOnlyList<TrainedModel> Kept()
    {
        lock (_gate)
        {
            return Ordered().ToList();
        }
    }

    private static bool AllFinite(TrainedModel model) =>
        SafeTensors.Parse(model.SafeTensors, model.ClientId).Tensors.All(entry => NonFiniteScan.Count(entry) == 0);

    private IEnumerable<TrainedModel> Ordered() => _kept.Values.OrderByDescending(m => m.SampleCount).ThenBy(m => m.ClientIndex);
}
