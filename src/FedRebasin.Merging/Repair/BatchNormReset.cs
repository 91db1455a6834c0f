using FedRebasin.Models;
using FedRebasin.Models.Permutations;
using TorchSharp;
using static TorchSharp.torch;

namespace FedRebasin.Merging.Repair;

/// <summary>
/// "Reset BN" (ALGORITHMS.md §4.5): recomputes every BatchNorm's running statistics of a merged model exactly on
/// calibration data. For BatchNorm networks this is REPAIR: the affine parameters are already the merged ones and only
/// the statistics are stale.
/// </summary>
/// <remarks>
/// <para>
/// Exact, not a running average: BatchNorm layers are processed in the order the forward pass reaches them (a layer's
/// input depends on the statistics of the layers before it). For each one, one pass over the calibration batches in eval
/// mode, with every earlier layer already reset, accumulates its input's per-channel count, sum and sum of squares in
/// float64.
/// </para>
/// <para>
/// Variance convention: <c>running_var</c> receives the <b>population</b> (biased) variance <c>E[x²] − E[x]²</c> over
/// all <c>N·H·W</c> values of each channel, and <c>running_mean</c> the mean. Eval-mode BatchNorm computes
/// <c>(x − running_mean)/sqrt(running_var + eps)</c>, so each layer normalises the calibration data to exactly zero mean
/// and (up to eps) unit variance. PyTorch's training-mode update would store the unbiased variance (×n/(n−1)); with
/// n = N·H·W values per channel the difference is below 1/(n−1) relatively. <c>num_batches_tracked</c> is set to the
/// number of calibration batches, as after a PyTorch reset followed by one cumulative (<c>momentum=None</c>) pass.
/// </para>
/// </remarks>
public static class BatchNormReset
{
    /// <summary>Whether <paramref name="model"/> holds at least one BatchNorm layer with running statistics.</summary>
    public static bool HasBatchNorm(ClassifierModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        return BatchNorms(model).Count > 0;
    }

    /// <summary>
    /// Re-estimates every BatchNorm's <c>running_mean</c>, <c>running_var</c> (population variance) and
    /// <c>num_batches_tracked</c> on the calibration batches, in forward order. Affine parameters are unchanged. The
    /// model's train/eval mode is restored; the batches (inputs on the model's device) are not disposed.
    /// </summary>
    /// <param name="model">A model with BatchNorm layers; changed in place.</param>
    /// <param name="calibrationBatches">Called once per pass (once per BatchNorm layer, plus once to find the forward
    /// order); must yield the same inputs each time. Tensors it creates are disposed after each pass.</param>
    /// <returns>The number of BatchNorm layers reset.</returns>
    /// <exception cref="ArgumentException">The model has no BatchNorm layers, or the batches hold no examples.</exception>
    /// <exception cref="InvalidOperationException">A BatchNorm layer is not reached by the forward pass.</exception>
    public static int Apply(ClassifierModel model, Func<IEnumerable<Tensor>> calibrationBatches)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(calibrationBatches);
        var norms = BatchNorms(model);
        if (norms.Count == 0)
        {
            throw new ArgumentException($"bn-reset needs BatchNorm layers, and {model.Spec.Describe()} has none (use norm batch, or another repair mode).", nameof(model));
        }

        bool wasTraining = model.training;
        try
        {
            model.eval();
            using var noGrad = no_grad();
            foreach (var (name, norm) in ForwardOrder(model, norms, calibrationBatches))
            {
                Reset(model, name, norm, calibrationBatches);
            }
        }
        finally
        {
            model.train(wasTraining);
        }

        return norms.Count;
    }

    private static List<(string Name, TorchSharp.Modules.BatchNorm2d Module)> BatchNorms(ClassifierModel model) =>
        model.named_modules()
            .Where(m => m.module is TorchSharp.Modules.BatchNorm2d)
            .Select(m => (m.name, (TorchSharp.Modules.BatchNorm2d)m.module))
            .ToList();

    // The order in which one forward pass on the first calibration batch calls the BatchNorm layers.
    private static List<(string Name, TorchSharp.Modules.BatchNorm2d Module)> ForwardOrder(
        ClassifierModel model,
        List<(string Name, TorchSharp.Modules.BatchNorm2d Module)> norms,
        Func<IEnumerable<Tensor>> calibrationBatches)
    {
        var order = new List<(string, TorchSharp.Modules.BatchNorm2d)>();
        var removers = new List<Action>();
        using var passScope = NewDisposeScope();
        try
        {
            foreach (var entry in norms)
            {
                var remover = entry.Module.register_forward_pre_hook((_, input) =>
                {
                    if (!order.Any(o => o.Item1 == entry.Name))
                    {
                        order.Add(entry);
                    }

                    return input;
                });
                removers.Add(remover.remove);
            }

            var first = (calibrationBatches() ?? throw new ArgumentException("The calibration batch source returned null.", nameof(calibrationBatches))).FirstOrDefault()
                ?? throw new ArgumentException("The calibration batches hold no examples.", nameof(calibrationBatches));
            model.call(first);
        }
        finally
        {
            foreach (var remove in removers)
            {
                remove();
            }
        }

        if (order.Count != norms.Count)
        {
            string missing = norms.First(n => !order.Any(o => o.Item1 == n.Name)).Name;
            throw new InvalidOperationException($"BatchNorm layer '{missing}' is not reached by the forward pass; its statistics cannot be re-estimated.");
        }

        return order;
    }

    private static void Reset(ClassifierModel model, string name, TorchSharp.Modules.BatchNorm2d norm, Func<IEnumerable<Tensor>> calibrationBatches)
    {
        if (norm.running_mean is not { } runningMean || norm.running_var is not { } runningVar)
        {
            throw new InvalidOperationException($"BatchNorm layer '{name}' does not track running statistics.");
        }

        var moments = new ChannelMoments((int)norm.num_features);
        int batches = 0;

        // Tensors the batch source creates belong to this pass.
        using var passScope = NewDisposeScope();
        var remover = norm.register_forward_pre_hook((_, input) =>
        {
            moments.Add(input);
            return input;
        });
        try
        {
            foreach (var batch in calibrationBatches() ?? [])
            {
                using var scope = NewDisposeScope();
                model.call(batch);
                batches++;
            }
        }
        finally
        {
            remover.remove();
        }

        if (moments.Count <= 0)
        {
            throw new ArgumentException("The calibration batches hold no examples.", nameof(calibrationBatches));
        }

        runningMean.copy_(tensor(moments.Mean()));
        runningVar.copy_(tensor(moments.Variance()));
        norm.num_batches_tracked?.fill_(batches);
    }
}
