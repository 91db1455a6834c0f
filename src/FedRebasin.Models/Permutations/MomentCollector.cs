using FedRebasin.Torch;
using TorchSharp;
using static TorchSharp.torch;

namespace FedRebasin.Models.Permutations;

/// <summary>Measures <see cref="ChannelMoments"/> at every <see cref="ClassifierModel.RepairPoints"/> entry.</summary>
public static class MomentCollector
{
    /// <summary>
    /// Runs <paramref name="model"/> in eval mode without gradients over <paramref name="batches"/> (inputs on the
    /// model's device) and returns, for each repair point in order, the moments of its pre-activation over every
    /// example (and spatial position). Sums are accumulated in float64 on the model's device and copied to the host
    /// once. The model's training mode is restored afterwards; the batches are not disposed.
    /// </summary>
    /// <returns>One <see cref="ChannelMoments"/> per repair point (count 0 when there were no batches).</returns>
    public static IReadOnlyList<ChannelMoments> Collect(ClassifierModel model, IEnumerable<Tensor> batches)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(batches);
        var points = model.RepairPoints;
        var counts = new double[points.Count];
        var sums = new Tensor?[points.Count];
        var sumSquares = new Tensor?[points.Count];
        bool wasTraining = model.training;
        try
        {
            model.eval();
            using var noGrad = no_grad();
            foreach (var batch in batches)
            {
                using var scope = NewDisposeScope();
                model.ForwardWithTaps(batch, (index, preActivation) =>
                {
                    var (count, sum, squares) = ChannelMoments.Reduce(preActivation, points[index].Channels);
                    counts[index] += count;
                    if (sums[index] is { } total)
                    {
                        total.add_(sum, HeldScalars.One);
                        sumSquares[index]!.add_(squares, HeldScalars.One);
                    }
                    else
                    {
                        sums[index] = sum.DetachFromDisposeScope();
                        sumSquares[index] = squares.DetachFromDisposeScope();
                    }
                });
            }

            var result = new ChannelMoments[points.Count];
            for (int i = 0; i < points.Count; i++)
            {
                result[i] = new ChannelMoments(points[i].Channels);
                if (sums[i] is { } sum)
                {
                    result[i].Add(counts[i], ChannelMoments.ToArray(sum), ChannelMoments.ToArray(sumSquares[i]!));
                }
            }

            return result;
        }
        finally
        {
            foreach (var tensor in sums.Concat(sumSquares))
            {
                tensor?.Dispose();
            }

            model.train(wasTraining);
        }
    }
}
