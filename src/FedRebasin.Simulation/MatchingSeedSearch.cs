using System.Diagnostics;
using System.Globalization;
using FedRebasin.Merging;
using FedRebasin.Merging.Repair;
using FedRebasin.Models;
using FedRebasin.Training;
using static TorchSharp.torch;

namespace FedRebasin.Simulation;

/// <summary>One merge of a seed search: its matching seed, its alignment objective and how it scores on the validation data.</summary>
/// <param name="Seed">Matching seed (the order in which weight matching visits the permutation groups, and MergeMany's model order).</param>
/// <param name="Objective">Sum of the inputs' weight-matching objectives after alignment (0 when nothing was matched).</param>
/// <param name="ValidationLoss">Mean cross-entropy on the validation data.</param>
/// <param name="ValidationAccuracy">Accuracy on the validation data.</param>
/// <param name="Seconds">Merge time (alignment, aggregation, repair), evaluation excluded.</param>
public sealed record SeedTrial(long Seed, double Objective, double ValidationLoss, double ValidationAccuracy, double Seconds);

/// <summary>The merge a seed search kept, with every trial in the order run.</summary>
/// <param name="Best">The kept merge (the caller owns and disposes its model).</param>
/// <param name="BestSeed">Its matching seed.</param>
/// <param name="Trials">All trials, the kept one included.</param>
public sealed record SeedSearchResult(MergedModel Best, long BestSeed, IReadOnlyList<SeedTrial> Trials);

/// <summary>
/// Merges the same models with several matching seeds and keeps the merge that does best on validation data.
/// </summary>
/// <remarks>
/// Why not the objective: for deep models whose alignment has many near-equal optima, merges whose weight-matching
/// objectives differ by a fraction of a percent range from chance to the best accuracy of the lot (docs/EXPERIMENTS.md,
/// "Seed 2's failure, merged again offline"), so <see cref="Merging.Matching.WeightMatchingOptions.Restarts"/>, which
/// keeps the best objective, cannot tell them apart. Scoring each merge on data is what can. The validation data must
/// not be the data the merge is finally reported on, or the reported figure is a maximum over draws, not an estimate.
/// </remarks>
public static class MatchingSeedSearch
{
    /// <summary>Runs <paramref name="trials"/> merges, seeds <paramref name="firstSeed"/>, <paramref name="firstSeed"/>+1, ...; keeps the best.</summary>
    /// <param name="models">Input models (same spec; not modified).</param>
    /// <param name="weights">One positive weight per model.</param>
    /// <param name="options">Merge settings; their matching seed is replaced by each trial's.</param>
    /// <param name="repair">Repair applied to every trial.</param>
    /// <param name="calibrationBatches">Calibration batches for repair (needed unless repair is none).</param>
    /// <param name="validation">Data the trials are ranked on: highest accuracy, then lowest loss, then the earlier seed.</param>
    /// <param name="firstSeed">Seed of the first trial.</param>
    /// <param name="trials">Number of seeds tried; at least 1.</param>
    /// <param name="progress">One line per trial.</param>
    /// <exception cref="ArgumentException"><paramref name="trials"/> is below 1, or more than one trial of a naive merge (it has no seed).</exception>
    public static SeedSearchResult Run(
        IReadOnlyList<ClassifierModel> models,
        IReadOnlyList<double> weights,
        MergeOptions options,
        RepairMode repair,
        Func<IEnumerable<Tensor>>? calibrationBatches,
        TensorData validation,
        long firstSeed,
        int trials,
        IProgress<string>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(validation);
        if (trials < 1)
        {
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"A seed search needs at least 1 trial, not {trials}."), nameof(trials));
        }

        if (trials > 1 && options.Method == MergeMethod.Naive)
        {
            throw new ArgumentException("A naive average aligns nothing, so it has no matching seed to search over: use wm or mergemany.", nameof(options));
        }

        var results = new List<SeedTrial>(trials);
        MergedModel? best = null;
        SeedTrial? bestTrial = null;
        try
        {
            for (int t = 0; t < trials; t++)
            {
                long seed = firstSeed + t;
                var trialOptions = options with { Matching = options.Matching with { Seed = seed } };
                var clock = Stopwatch.StartNew();
                var merged = ModelMerging.Merge(models, weights, trialOptions, repair, calibrationBatches);
                double seconds = clock.Elapsed.TotalSeconds;
                var score = Evaluator.Evaluate(merged.Model, validation);
                var trial = new SeedTrial(seed, Objective(merged.Merge), score.Loss, score.Accuracy, seconds);
                results.Add(trial);
                progress?.Report(string.Create(CultureInfo.InvariantCulture,
                    $"seed {seed}: objective {trial.Objective:G6}, validation accuracy {trial.ValidationAccuracy:P2}, loss {trial.ValidationLoss:F4}"));
                if (bestTrial is null || IsBetter(trial, bestTrial))
                {
                    best?.Model.Dispose();
                    (best, bestTrial) = (merged, trial);
                }
                else
                {
                    merged.Model.Dispose();
                }
            }
        }
        catch
        {
            best?.Model.Dispose();
            throw;
        }

        return new SeedSearchResult(best!, bestTrial!.Seed, results);
    }

    /// <summary>
    /// Refuses a calibration sample that takes every training example: the validation examples are drawn after it in
    /// the same seeded order, so none would be left to rank the trials on.
    /// </summary>
    /// <param name="trainingExamples">Size of the training split.</param>
    /// <param name="calibrationExamples">Calibration examples taken before the validation sample (0 without repair).</param>
    /// <exception cref="ArgumentException">No training example is left after the calibration sample.</exception>
    public static void RequireValidationRoom(int trainingExamples, int calibrationExamples)
    {
        if (calibrationExamples >= trainingExamples)
        {
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture,
                $"--calibration {calibrationExamples} takes all {trainingExamples} training examples and leaves none for --validation (--seed-trials ranks merges on them)."));
        }
    }

    /// <summary>Higher accuracy wins; equal accuracy goes to the lower loss; a full tie keeps the earlier trial.</summary>
    private static bool IsBetter(SeedTrial candidate, SeedTrial incumbent) =>
        candidate.ValidationAccuracy > incumbent.ValidationAccuracy
        || (candidate.ValidationAccuracy == incumbent.ValidationAccuracy && candidate.ValidationLoss < incumbent.ValidationLoss);

    private static double Objective(MergeResult merge) => merge.Matches.Where(m => m is not null).Sum(m => m!.ObjectiveAfter);
}
