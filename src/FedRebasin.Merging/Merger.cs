using System.Diagnostics;
using FedRebasin.Merging.Averaging;
using FedRebasin.Merging.Matching;
using FedRebasin.Models.Permutations;
using TorchSharp;
using static TorchSharp.torch;

namespace FedRebasin.Merging;

/// <summary>How several models are brought into one frame before they are combined.</summary>
public enum MergeMethod
{
    /// <summary>No alignment: average the weights as they are (FedAvg's rule).</summary>
    Naive,

    /// <summary>Align every model to one reference by weight matching, then combine.</summary>
    WeightMatching,

    /// <summary>
    /// MergeMany (Git Re-Basin, Algorithm 3): repeatedly align each model to the weighted mean of the others until
    /// no alignment improves; for independently trained models with no natural reference.
    /// </summary>
    MergeMany,
}

/// <summary>Settings of <see cref="Merger.Merge"/>.</summary>
public sealed record MergeOptions
{
    /// <summary>Alignment method. Default weight matching.</summary>
    public MergeMethod Method { get; init; } = MergeMethod.WeightMatching;

    /// <summary>How aligned models are combined. Default weighted mean.</summary>
    public AggregationKind Aggregation { get; init; } = AggregationKind.Mean;

    /// <summary>Fraction trimmed at each end by the trimmed mean. Default 0.1.</summary>
    public double TrimFraction { get; init; } = Averaging.Aggregation.DefaultTrimFraction;

    /// <summary>Index of the reference for <see cref="MergeMethod.WeightMatching"/>; null = the model with the largest weight.</summary>
    public int? ReferenceIndex { get; init; }

    /// <summary>Weight-matching settings (seed, sweeps, restarts).</summary>
    public WeightMatchingOptions Matching { get; init; } = new();

    /// <summary>Most MergeMany rounds over all models. Default 100; at least 1.</summary>
    public int MaxMergeManyRounds { get; init; } = 100;

    /// <summary>The command-line name of a method: <c>naive</c>, <c>wm</c> or <c>mergemany</c>.</summary>
    public static string MethodName(MergeMethod method) => method switch
    {
        MergeMethod.Naive => "naive",
        MergeMethod.WeightMatching => "wm",
        _ => "mergemany",
    };

    /// <summary>Parses <c>naive</c>, <c>wm</c> or <c>mergemany</c>.</summary>
    public static MergeMethod ParseMethod(string text) => text?.Trim().ToLowerInvariant() switch
    {
        "naive" or "none" => MergeMethod.Naive,
        "wm" or "weight-matching" => MergeMethod.WeightMatching,
        "mergemany" or "merge-many" => MergeMethod.MergeMany,
        _ => throw new FormatException($"--method must be naive, wm or mergemany, not '{text}'."),
    };
}

/// <summary>What a merge did.</summary>
/// <param name="State">The merged tensors (new; the caller owns them).</param>
/// <param name="Permutations">Per input model, the permutation applied to it (identity for the reference and for naive merges).</param>
/// <param name="Matches">Per input model, the last weight-matching result (null for the reference and naive merges).</param>
/// <param name="ReferenceIndex">The reference model (null for naive and MergeMany).</param>
/// <param name="Rounds">MergeMany rounds run (1 otherwise).</param>
/// <param name="Seconds">Wall time.</param>
public sealed record MergeResult(
    Dictionary<string, Tensor> State,
    IReadOnlyList<Dictionary<string, long[]>> Permutations,
    IReadOnlyList<WeightMatchingResult?> Matches,
    int? ReferenceIndex,
    int Rounds,
    double Seconds);

/// <summary>Merges N models of one architecture: align (none, weight matching, MergeMany), then aggregate.</summary>
public static class Merger
{
    /// <summary>Merges <paramref name="states"/> with averaging weights <paramref name="weights"/> (e.g. sample counts).</summary>
    /// <param name="spec">Permutation spec of the architecture.</param>
    /// <param name="states">The models' tensors (not modified).</param>
    /// <param name="weights">One positive weight per model.</param>
    /// <param name="options">Merge settings.</param>
    /// <param name="progress">Receives a short status line per alignment.</param>
    public static MergeResult Merge(
        PermutationSpec spec,
        IReadOnlyList<IReadOnlyDictionary<string, Tensor>> states,
        IReadOnlyList<double> weights,
        MergeOptions? options = null,
        IProgress<string>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(states);
        ArgumentNullException.ThrowIfNull(weights);
        options ??= new MergeOptions();
        StateDicts.RequireSameLayout(states);
        if (weights.Count != states.Count || weights.Any(w => !(w > 0) || double.IsInfinity(w)))
        {
            throw new ArgumentException($"Give one positive weight per model ({states.Count} models, weights {string.Join(',', weights)}).");
        }

        var clock = Stopwatch.StartNew();
        return options.Method switch
        {
            MergeMethod.Naive => new MergeResult(
                Combine(states, weights, options),
                states.Select(_ => spec.Identity()).ToList(),
                new WeightMatchingResult?[states.Count],
                null,
                1,
                clock.Elapsed.TotalSeconds),
            MergeMethod.WeightMatching => AlignToReference(spec, states, weights, options, progress, clock),
            _ => MergeMany(spec, states, weights, options, progress, clock),
        };
    }

    /// <summary>Combines models already in one frame with the configured aggregation.</summary>
    private static Dictionary<string, Tensor> Combine(IReadOnlyList<IReadOnlyDictionary<string, Tensor>> aligned, IReadOnlyList<double> weights, MergeOptions options) =>
        options.Aggregation == AggregationKind.Mean
            ? Aggregation.WeightedMean(aligned, weights)
            : Aggregation.Robust(aligned, options.Aggregation, options.TrimFraction);

    private static MergeResult AlignToReference(
        PermutationSpec spec,
        IReadOnlyList<IReadOnlyDictionary<string, Tensor>> states,
        IReadOnlyList<double> weights,
        MergeOptions options,
        IProgress<string>? progress,
        Stopwatch clock)
    {
        int reference = options.ReferenceIndex ?? Enumerable.Range(0, weights.Count).MaxBy(i => weights[i]);
        if (reference < 0 || reference >= states.Count)
        {
            throw new ArgumentException($"Reference index {reference} is outside the {states.Count} models.");
        }

        var aligned = new List<IReadOnlyDictionary<string, Tensor>>();
        var owned = new List<Dictionary<string, Tensor>>();
        var perms = new List<Dictionary<string, long[]>>();
        var matches = new WeightMatchingResult?[states.Count];
        try
        {
            for (int i = 0; i < states.Count; i++)
            {
                if (i == reference)
                {
                    aligned.Add(states[i]);
                    perms.Add(spec.Identity());
                    continue;
                }

                var match = WeightMatching.Match(spec, states[reference], states[i], options.Matching with { Seed = options.Matching.Seed + i });
                matches[i] = match;
                var permuted = spec.Permute(states[i], match.Permutations);
                owned.Add(permuted);
                aligned.Add(permuted);
                perms.Add(match.Permutations);
                progress?.Report($"aligned model {i} to model {reference}: objective {match.ObjectiveBefore:G6} -> {match.ObjectiveAfter:G6} in {match.Sweeps} sweeps");
            }

            return new MergeResult(Combine(aligned, weights, options), perms, matches, reference, 1, clock.Elapsed.TotalSeconds);
        }
        finally
        {
            StateDicts.DisposeAll(owned);
        }
    }

    private static MergeResult MergeMany(
        PermutationSpec spec,
        IReadOnlyList<IReadOnlyDictionary<string, Tensor>> states,
        IReadOnlyList<double> weights,
        MergeOptions options,
        IProgress<string>? progress,
        Stopwatch clock)
    {
        if (options.MaxMergeManyRounds < 1)
        {
            throw new ArgumentException($"MaxMergeManyRounds must be at least 1, not {options.MaxMergeManyRounds}.");
        }

        int n = states.Count;
        var current = states.Select(StateDicts.Clone).ToList();
        var perms = Enumerable.Range(0, n).Select(_ => spec.Identity()).ToList();
        var matches = new WeightMatchingResult?[n];
        var random = new Random(unchecked((int)options.Matching.Seed));
        int rounds = 0;
        try
        {
            if (n > 1)
            {
                bool progressMade = true;
                while (progressMade && rounds < options.MaxMergeManyRounds)
                {
                    rounds++;
                    progressMade = false;
                    int[] order = Enumerable.Range(0, n).ToArray();
                    random.Shuffle(order);
                    foreach (int i in order)
                    {
                        // Reference: weighted mean of every model except i (leave-one-out).
                        var others = Enumerable.Range(0, n).Where(j => j != i).ToList();
                        var leaveOneOut = Aggregation.WeightedMean(others.Select(j => (IReadOnlyDictionary<string, Tensor>)current[j]).ToList(), others.Select(j => weights[j]).ToList());
                        try
                        {
                            var match = WeightMatching.Match(spec, leaveOneOut, current[i], options.Matching with { Seed = options.Matching.Seed + (rounds * n) + i });
                            matches[i] = match;
                            if (match.ObjectiveAfter > match.ObjectiveBefore + options.Matching.Tolerance)
                            {
                                var permuted = spec.Permute(current[i], match.Permutations);
                                StateDicts.DisposeAll([current[i]]);
                                current[i] = permuted;
                                perms[i] = PermutationSpec.Compose(perms[i], match.Permutations);
                                progressMade = true;
                            }

                            progress?.Report($"MergeMany round {rounds}: model {i} objective {match.ObjectiveBefore:G6} -> {match.ObjectiveAfter:G6}");
                        }
                        finally
                        {
                            StateDicts.DisposeAll([leaveOneOut]);
                        }
                    }
                }
            }

            var aligned = current.Select(c => (IReadOnlyDictionary<string, Tensor>)c).ToList();
            return new MergeResult(Combine(aligned, weights, options), perms, matches, null, Math.Max(rounds, 1), clock.Elapsed.TotalSeconds);
        }
        finally
        {
            StateDicts.DisposeAll(current);
        }
    }
}
