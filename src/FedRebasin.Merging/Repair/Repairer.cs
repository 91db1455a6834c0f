using FedRebasin.Models;
using FedRebasin.Models.Permutations;
using TorchSharp;
using static TorchSharp.torch;

namespace FedRebasin.Merging.Repair;

/// <summary>
/// Renormalises a merged model toward target per-channel statistics (REPAIR, RESCALE, RESHIFT; ALGORITHMS.md §4, §5.1)
/// or re-estimates its BatchNorm statistics, folding every correction back into the model's weights so the architecture
/// is unchanged.
/// </summary>
public static class Repairer
{
    /// <summary>
    /// Repairs <paramref name="merged"/> in place and reports its statistics before and after.
    /// <list type="bullet">
    /// <item>Repair / rescale / reshift: at every foldable repair point the pre-activation becomes
    /// <c>scale·y + shift</c> (<see cref="RepairCorrections.Compute"/>), folded with <see cref="RepairFold.Apply"/>.
    /// With <see cref="RepairEstimation.Sequential"/> the merged statistics at each point are measured with the earlier
    /// corrections folded in, so after the repair each point's statistics on the calibration data equal the targets (up
    /// to float32 rounding; one pass per foldable point); with <see cref="RepairEstimation.Simultaneous"/> all are
    /// measured once, before any correction (exact at the first point only, overshoots in depth); with
    /// <see cref="RepairEstimation.BatchStatistics"/> one pass corrects on the fly with batch statistics (close to
    /// sequential). Measure-only points (no <see cref="RepairPoint.Target"/>) are reported but not corrected.
    /// Passes: one measurement before, the correction passes, one measurement after (skipped when nothing changed).</item>
    /// <item><see cref="RepairMode.BnReset"/>: <see cref="BatchNormReset.Apply"/>; a model without BatchNorm is an error.</item>
    /// <item><see cref="RepairMode.None"/>: the model is only measured (and BN-reset when
    /// <see cref="RepairOptions.ResetBatchNorm"/> is set).</item>
    /// </list>
    /// Statistics are measured in eval mode without gradients; the model's train/eval mode is restored.
    /// </summary>
    /// <param name="merged">The merged model (changed in place).</param>
    /// <param name="targets">Targets for every repair point (<see cref="RepairTargets.Mix"/>); required for repair,
    /// rescale and reshift, optional otherwise (the report's target figures are then NaN).</param>
    /// <param name="mode">What to do.</param>
    /// <param name="calibrationBatches">Returns the calibration inputs (on the model's device); called once per pass and
    /// must yield the same inputs every time. Tensors it creates are disposed after each pass; tensors it merely returns
    /// are not.</param>
    /// <param name="options">Estimation strategy and dead-channel threshold; <see cref="RepairOptions.Default"/> when null.</param>
    /// <exception cref="ArgumentException">Targets are missing or do not fit the model, the calibration batches are empty,
    /// options are invalid, or a BatchNorm reset is asked of a model without BatchNorm.</exception>
    public static RepairReport Apply(
        ClassifierModel merged,
        RepairTargets? targets,
        RepairMode mode,
        Func<IEnumerable<Tensor>> calibrationBatches,
        RepairOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(merged);
        ArgumentNullException.ThrowIfNull(calibrationBatches);
        options ??= RepairOptions.Default;
        options.Validate();
        if (!Enum.IsDefined(mode))
        {
            throw new ArgumentOutOfRangeException(nameof(mode), mode, "Unknown repair mode.");
        }

        var points = merged.RepairPoints;
        bool corrects = RepairModes.IsCorrection(mode);
        if (corrects && targets is null)
        {
            throw new ArgumentException($"Repair mode '{RepairModes.ToName(mode)}' needs target statistics.", nameof(targets));
        }

        targets?.Validate(points);
        bool resetBatchNorm = mode == RepairMode.BnReset || options.ResetBatchNorm;
        if (resetBatchNorm && !BatchNormReset.HasBatchNorm(merged))
        {
            throw new ArgumentException($"bn-reset needs BatchNorm layers, and {merged.Spec.Describe()} has none (use norm batch, or another repair mode).", nameof(merged));
        }

        int passes = 0;
        var before = Measure(merged, calibrationBatches, ref passes);
        bool stale = false;
        int layersReset = 0;
        if (resetBatchNorm)
        {
            layersReset = BatchNormReset.Apply(merged, calibrationBatches);
            passes += layersReset;
            stale = true;
        }

        var corrected = new bool[points.Count];
        if (corrects)
        {
            var state = merged.state_dict();
            if (options.Estimation == RepairEstimation.Simultaneous)
            {
                var moments = stale ? Measure(merged, calibrationBatches, ref passes) : before;
                FoldCorrections(state, points, targets!, moments, mode, options.Epsilon, options.Bound, corrected);
                stale = true;
            }
            else if (options.Estimation == RepairEstimation.BatchStatistics)
            {
                var moments = MeasureWithBatchCorrections(merged, targets!, mode, options.Epsilon, calibrationBatches);
                passes++;
                FoldCorrections(state, points, targets!, moments, mode, options.Epsilon, options.Bound, corrected);
                stale = true;
            }
            else
            {
                for (int i = 0; i < points.Count; i++)
                {
                    if (!points[i].Foldable)
                    {
                        continue;
                    }

                    var moments = stale ? Measure(merged, calibrationBatches, ref passes) : before;
                    var (scale, shift) = RepairCorrections.Compute(points[i], targets!.Means[i], targets.Stds[i], moments[i], mode, options.Epsilon, options.Bound);
                    RepairFold.Apply(state, points[i], scale, shift);
                    corrected[i] = true;
                    stale = true;
                }
            }
        }

        var after = stale ? Measure(merged, calibrationBatches, ref passes) : before;
        var reports = new PointRepairReport[points.Count];
        for (int i = 0; i < points.Count; i++)
        {
            reports[i] = Report(points[i], corrected[i], before[i], after[i], targets?.Means[i], targets?.Stds[i]);
        }

        return new RepairReport(mode, options.Estimation, reports, passes, layersReset);
    }

    /// <summary>
    /// Folds, at every foldable repair point, the correction computed from <paramref name="mergedMoments"/> (the merged
    /// model's statistics, e.g. summed from clients' answers to a statistics task) into <paramref name="state"/> (a
    /// model's live <c>state_dict()</c> to change the model). This is the simultaneous strategy without a calibration
    /// pass: exact at the first point, approximate after it.
    /// </summary>
    /// <returns>The number of repair points corrected.</returns>
    /// <exception cref="ArgumentException">The targets or moments do not fit <paramref name="points"/>, or a tensor is
    /// missing from the state.</exception>
    public static int FoldCorrections(
        IReadOnlyDictionary<string, Tensor> state,
        IReadOnlyList<RepairPoint> points,
        RepairTargets targets,
        IReadOnlyList<ChannelMoments> mergedMoments,
        RepairMode mode,
        double epsilon = RepairCorrections.DefaultEpsilon,
        RepairBound? bound = null)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(points);
        ArgumentNullException.ThrowIfNull(targets);
        ArgumentNullException.ThrowIfNull(mergedMoments);
        targets.Validate(points);
        var corrected = new bool[points.Count];
        (bound ??= RepairBound.None).Validate();
        FoldCorrections(state, points, targets, mergedMoments, mode, epsilon, bound, corrected);
        return corrected.Count(c => c);
    }

    private static void FoldCorrections(
        IReadOnlyDictionary<string, Tensor> state,
        IReadOnlyList<RepairPoint> points,
        RepairTargets targets,
        IReadOnlyList<ChannelMoments> mergedMoments,
        RepairMode mode,
        double epsilon,
        RepairBound bound,
        bool[] corrected)
    {
        if (mergedMoments.Count != points.Count)
        {
            throw new ArgumentException($"Got merged moments for {mergedMoments.Count} repair points; the model has {points.Count}.", nameof(mergedMoments));
        }

        // Compute every correction before folding any, so a bad point leaves the model untouched.
        var corrections = new (double[] Scale, double[] Shift)?[points.Count];
        for (int i = 0; i < points.Count; i++)
        {
            if (points[i].Foldable)
            {
                corrections[i] = RepairCorrections.Compute(points[i], targets.Means[i], targets.Stds[i], mergedMoments[i], mode, epsilon, bound);
            }
        }

        for (int i = 0; i < points.Count; i++)
        {
            if (corrections[i] is { } correction)
            {
                RepairFold.Apply(state, points[i], correction.Scale, correction.Shift);
                corrected[i] = true;
            }
        }
    }

    private static IReadOnlyList<ChannelMoments> Measure(ClassifierModel model, Func<IEnumerable<Tensor>> calibrationBatches, ref int passes)
    {
        IReadOnlyList<ChannelMoments> moments;
        using (NewDisposeScope())
        {
            var batches = calibrationBatches() ?? throw new ArgumentException("The calibration batch source returned null.", nameof(calibrationBatches));
            moments = MomentCollector.Collect(model, batches);
        }

        passes++;
        if (moments.Any(m => m.Count <= 0))
        {
            throw new ArgumentException("The calibration batches hold no examples.", nameof(calibrationBatches));
        }

        return moments;
    }

    /// <summary>
    /// REPAIR's one-pass estimation (<see cref="RepairEstimation.BatchStatistics"/>) without folding: in one pass over the
    /// batches, every foldable point's output is corrected on the fly with the current batch's statistics toward the
    /// targets, and the uncorrected outputs' moments are summed. A federated client answers a statistics task with this on
    /// its own data; the coordinator pools the answers (<see cref="ChannelMoments.Merge"/>) and folds with
    /// <see cref="FoldCorrections(IReadOnlyDictionary{string, Tensor}, IReadOnlyList{RepairPoint}, RepairTargets, IReadOnlyList{ChannelMoments}, RepairMode, double, RepairBound)"/>.
    /// The model is not changed; measure-only points come back empty.
    /// </summary>
    /// <exception cref="ArgumentException">The targets do not fit the model, or the batches hold no examples.</exception>
    /// <exception cref="InvalidOperationException">A foldable point is not produced by exactly one module call per batch.</exception>
    public static IReadOnlyList<ChannelMoments> MeasureWithBatchCorrections(
        ClassifierModel model,
        RepairTargets targets,
        RepairMode mode,
        double epsilon,
        Func<IEnumerable<Tensor>> calibrationBatches)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(targets);
        ArgumentNullException.ThrowIfNull(calibrationBatches);
        targets.Validate(model.RepairPoints);
        var points = model.RepairPoints;
        var modules = model.named_modules().ToDictionary(m => m.name, m => m.module);
        var moments = points.Select(p => new ChannelMoments(p.Channels)).ToArray();
        var hits = new int[points.Count];
        var removers = new List<Action>();
        bool wasTraining = model.training;
        using var passScope = NewDisposeScope();
        try
        {
            model.eval();
            using var noGrad = no_grad();
            var device = model.parameters().First().device;
            for (int i = 0; i < points.Count; i++)
            {
                if (points[i].Target is not { } target)
                {
                    continue;
                }

                string name = target.Weight.EndsWith(".weight", StringComparison.Ordinal) ? target.Weight[..^".weight".Length] : target.Weight;
                if (!modules.TryGetValue(name, out var found) || found is not nn.Module<Tensor, Tensor> module)
                {
                    throw new InvalidOperationException($"Repair point '{points[i].Name}': no module '{name}' produces it, so batch-statistics estimation cannot correct it on the fly; use sequential estimation.");
                }

                int index = i;
                var targetMean = tensor(targets.Means[i].ToArray(), device: device).to_type(ScalarType.Float32);
                var targetStd = tensor(targets.Stds[i].ToArray(), device: device).to_type(ScalarType.Float32);
                var remover = module.register_forward_hook((_, _, output) =>
                {
                    moments[index].Add(output);
                    hits[index]++;
                    return CorrectWithBatchStatistics(output, targetMean, targetStd, mode, epsilon);
                });
                removers.Add(remover.remove);
            }

            int batches = 0;
            foreach (var batch in calibrationBatches() ?? [])
            {
                using var scope = NewDisposeScope();
                model.call(batch);
                batches++;
            }

            for (int i = 0; i < points.Count; i++)
            {
                if (points[i].Foldable && hits[i] != batches)
                {
                    throw new InvalidOperationException($"Repair point '{points[i].Name}': its module was called {hits[i]} times in {batches} batches; batch-statistics estimation needs exactly one call per batch.");
                }
            }

            if (batches == 0)
            {
                throw new ArgumentException("The calibration batches hold no examples.", nameof(calibrationBatches));
            }
        }
        finally
        {
            foreach (var remove in removers)
            {
                remove();
            }

            model.train(wasTraining);
        }

        // Measure-only points stay empty: corrections are computed for foldable points only.
        return moments;
    }

    private static Tensor CorrectWithBatchStatistics(Tensor output, Tensor targetMean, Tensor targetStd, RepairMode mode, double epsilon)
    {
        long[] dims = output.dim() == 2 ? [0] : [0, 2, 3];
        long[] shape = output.dim() == 2 ? [1, -1] : [1, -1, 1, 1];
        var mean = output.mean(dims, keepdim: true);
        var std = output.var(dims, unbiased: false, keepdim: true).sqrt();
        var alive = std.ge(epsilon).logical_and(std.gt(0));
        var scale = where(alive, targetStd.to_type(output.dtype).view(shape).div(std.clamp_min(epsilon > 0 ? epsilon : 1e-30)), ones_like(std));
        var goal = targetMean.to_type(output.dtype).view(shape);
        return mode switch
        {
            RepairMode.Repair => output.sub(mean).mul(scale).add(goal),
            RepairMode.Rescale => output.mul(scale),
            RepairMode.Reshift => output.sub(mean).add(goal),
            _ => output,
        };
    }

    private static PointRepairReport Report(
        RepairPoint point,
        bool corrected,
        ChannelMoments before,
        ChannelMoments after,
        IReadOnlyList<double>? targetMean,
        IReadOnlyList<double>? targetStd)
    {
        double targetVariance = targetStd is null ? double.NaN : targetStd.Average(s => s * s);
        double Ratio(ChannelMoments m) => targetVariance > 0 ? m.Variance().Average() / targetVariance : double.NaN;
        return new PointRepairReport(
            point.Name,
            point.Group,
            corrected,
            before.Mean().Average(),
            before.Std().Average(),
            after.Mean().Average(),
            after.Std().Average(),
            targetMean?.Average() ?? double.NaN,
            targetStd?.Average() ?? double.NaN,
            Ratio(before),
            Ratio(after));
    }
}
