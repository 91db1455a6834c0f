using FedRebasin.Merging.Averaging;
using FedRebasin.Merging.Repair;
using FedRebasin.Models;
using FedRebasin.Models.Permutations;
using TorchSharp;
using static TorchSharp.torch;

namespace FedRebasin.Merging;

/// <summary>A merged model with what was done to make it.</summary>
/// <param name="Model">The merged model (the caller owns and disposes it).</param>
/// <param name="Merge">Alignment figures and permutations (its <see cref="MergeResult.State"/> is already disposed).</param>
/// <param name="Repair">What the repair step did, when one ran.</param>
public sealed record MergedModel(ClassifierModel Model, MergeResult Merge, RepairReport? Repair);

/// <summary>
/// Merges model objects end to end: align and aggregate (<see cref="Merger"/>), rebuild the architecture, then repair
/// toward the weighted mix of the inputs' own channel statistics (moments measured on the calibration data and moved
/// into the merged frame with each input's permutation).
/// </summary>
public static class ModelMerging
{
    /// <summary>Merges <paramref name="models"/> (same spec; not modified) with averaging weights.</summary>
    /// <param name="models">Input models.</param>
    /// <param name="weights">One positive weight per model (sample counts in FL).</param>
    /// <param name="options">Alignment and aggregation.</param>
    /// <param name="repair">Repair mode; <see cref="RepairMode.None"/> skips the step.</param>
    /// <param name="calibrationBatches">Input batches for moments and repair (needed unless repair is none).</param>
    /// <param name="repairOptions">Estimation strategy; default sequential.</param>
    /// <param name="progress">Status lines.</param>
    public static MergedModel Merge(
        IReadOnlyList<ClassifierModel> models,
        IReadOnlyList<double> weights,
        MergeOptions options,
        RepairMode repair = RepairMode.None,
        Func<IEnumerable<Tensor>>? calibrationBatches = null,
        RepairOptions? repairOptions = null,
        IProgress<string>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(models);
        if (models.Count == 0)
        {
            throw new ArgumentException("No models to merge.");
        }

        var spec = models[0].Spec;
        for (int i = 1; i < models.Count; i++)
        {
            if (!models[i].Spec.Equals(spec))
            {
                throw new ArgumentException($"Model {i} is {models[i].Spec.Describe()} but model 0 is {spec.Describe()}: only models of one architecture merge.");
            }
        }

        if (repair != RepairMode.None && calibrationBatches is null)
        {
            throw new ArgumentException($"Repair mode '{RepairModes.ToName(repair)}' needs calibration data.");
        }

        var permutationSpec = PermutationSpecs.For(models[0]);
        var states = models.Select(m => (IReadOnlyDictionary<string, Tensor>)m.state_dict()).ToList();
        var result = Merger.Merge(permutationSpec, states, weights, options, progress);
        var merged = ModelRegistry.Create(spec, models[0].parameters().First().device);
        try
        {
            using (no_grad())
            {
                merged.load_state_dict(result.State);
            }

            StateDicts.DisposeAll([result.State]);
            RepairReport? report = null;
            if (repair != RepairMode.None)
            {
                RepairTargets? targets = null;
                if (RepairModes.IsCorrection(repair))
                {
                    var endpoints = new List<(IReadOnlyList<ChannelMoments>, double)>();
                    for (int i = 0; i < models.Count; i++)
                    {
                        var moments = MomentCollector.Collect(models[i], calibrationBatches!());
                        endpoints.Add((MomentAlignment.Permute(models[i].RepairPoints, moments, result.Permutations[i]), weights[i]));
                    }

                    targets = RepairTargets.Mix(endpoints);
                }

                progress?.Report($"repairing ({RepairModes.ToName(repair)})");
                report = Repairer.Apply(merged, targets, repair, calibrationBatches!, repairOptions);
            }

            return new MergedModel(merged, result, report);
        }
        catch
        {
            merged.Dispose();
            throw;
        }
    }
}
