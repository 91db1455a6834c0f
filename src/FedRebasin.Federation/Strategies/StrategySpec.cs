using FedRebasin.Merging.Averaging;
using FedRebasin.Merging.Repair;
using AggregationRules = FedRebasin.Merging.Averaging.Aggregation;

namespace FedRebasin.Federation.Strategies;

/// <summary>How a client's model is aligned to the reference before it is aggregated.</summary>
public enum AlignmentKind
{
    /// <summary>No alignment: models are combined as uploaded (FedAvg).</summary>
    None,

    /// <summary>Weight matching to the reference (Git Re-Basin), then the same permutation is applied to the client's moments.</summary>
    WeightMatching,
}

/// <summary>
/// A merge strategy as a pipeline: <see cref="Alignment"/>, then <see cref="Aggregation"/>, then <see cref="Repair"/>.
/// </summary>
/// <remarks>
/// <para>Compact names are <c>[fedavg|wm][+mean|median|trimmed-mean][+repair|rescale|reshift|bn-reset]</c>, with at
/// least one part present, parts in that order, case-insensitive: <c>fedavg</c>, <c>wm</c>, <c>wm+repair</c>,
/// <c>wm+median+repair</c>, <c>median</c> (no alignment), <c>fedavg+rescale</c>, ... A missing alignment means none,
/// a missing aggregation means mean, a missing repair means none.</para>
/// <para>The explicit form is <c>align=none|wm,aggregate=mean|median|trimmed-mean,repair=none|repair|rescale|reshift|bn-reset</c>
/// (any subset of keys, any order, each at most once).</para>
/// <para><see cref="ToString"/> returns the canonical compact name, which <see cref="Parse"/> maps back to an equal spec:
/// <c>wm</c> when aligned, otherwise <c>fedavg</c> when the aggregation is the mean, otherwise the aggregation name
/// alone (so <c>fedavg+median</c> is canonically <c>median</c>); then <c>+aggregation</c> unless it is the mean, then
/// <c>+repair</c> unless it is none.</para>
/// </remarks>
/// <param name="Alignment">How each client is aligned to the reference.</param>
/// <param name="Aggregation">How the aligned models are combined.</param>
/// <param name="Repair">How the merged model's channel statistics are corrected afterwards.</param>
public sealed record StrategySpec(AlignmentKind Alignment, AggregationKind Aggregation, RepairMode Repair)
{
    private static readonly string[] s_alignmentNames = ["fedavg", "wm"];
    private static readonly string[] s_aggregationNames = ["mean", "median", "trimmed-mean"];
    private static readonly string[] s_repairNames = ["repair", "rescale", "reshift", "bn-reset"];
    private static readonly string[] s_explicitKeys = ["align", "aggregate", "repair"];

    /// <summary>Plain FedAvg: no alignment, weighted mean, no repair.</summary>
    public static StrategySpec FedAvg { get; } = new(AlignmentKind.None, AggregationKind.Mean, RepairMode.None);

    /// <summary>Weight matching, then weighted mean, no repair.</summary>
    public static StrategySpec WeightMatching { get; } = new(AlignmentKind.WeightMatching, AggregationKind.Mean, RepairMode.None);

    /// <summary>
    /// The canonical compact names of the strategies the project documents (ARCHITECTURE.md §3); every one of them
    /// round-trips through <see cref="Parse"/> and <see cref="ToString"/>.
    /// </summary>
    public static IReadOnlyList<string> KnownNames { get; } =
    [
        "fedavg", "wm", "wm+repair", "wm+rescale", "wm+reshift", "wm+bn-reset", "fedavg+rescale", "fedavg+repair",
        "fedavg+bn-reset", "wm+median", "wm+trimmed-mean", "median", "trimmed-mean", "wm+median+repair",
    ];

    /// <summary>Parses a compact name (<c>wm+repair</c>) or the explicit form (<c>align=wm,aggregate=median,repair=rescale</c>).</summary>
    /// <exception cref="ArgumentNullException"><paramref name="text"/> is null.</exception>
    /// <exception cref="FormatException">The text is empty, has an unknown or misplaced part, or repeats a part; the message lists the allowed names.</exception>
    public static StrategySpec Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        string trimmed = text.Trim();
        if (trimmed.Length == 0)
        {
            throw new FormatException($"A strategy name is empty; use a compact name such as {string.Join(", ", KnownNames)}, or align=...,aggregate=...,repair=....");
        }

        return trimmed.Contains('=', StringComparison.Ordinal) ? ParseExplicit(trimmed) : ParseCompact(trimmed);
    }

    /// <summary>
    /// Parses a comma-separated list of compact names (<c>fedavg,wm,wm+repair</c>), in order. The explicit form is not
    /// allowed in a list because it uses commas itself.
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="text"/> is null.</exception>
    /// <exception cref="FormatException">The list is empty, has an empty entry, uses the explicit form, has an invalid name, or names the same strategy twice.</exception>
    public static IReadOnlyList<StrategySpec> ParseList(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (text.Contains('=', StringComparison.Ordinal))
        {
            throw new FormatException($"A strategy list takes comma-separated compact names (e.g. fedavg,wm,wm+repair); the explicit form align=...,aggregate=...,repair=... is only accepted for a single strategy, not in '{text}'.");
        }

        string[] entries = text.Split(',', StringSplitOptions.TrimEntries);
        if (entries.Length == 1 && entries[0].Length == 0)
        {
            throw new FormatException("The strategy list is empty; give comma-separated compact names such as fedavg,wm,wm+repair.");
        }

        var result = new List<StrategySpec>(entries.Length);
        foreach (string entry in entries)
        {
            if (entry.Length == 0)
            {
                throw new FormatException($"The strategy list '{text}' has an empty entry.");
            }

            var spec = ParseCompact(entry);
            if (result.Contains(spec))
            {
                throw new FormatException($"The strategy list '{text}' names {spec} more than once.");
            }

            result.Add(spec);
        }

        return result;
    }

    /// <summary>The canonical compact name (see the remarks on <see cref="StrategySpec"/>).</summary>
    public override string ToString()
    {
        var parts = new List<string>(3);
        if (Alignment == AlignmentKind.WeightMatching)
        {
            parts.Add("wm");
        }
        else if (Aggregation == AggregationKind.Mean)
        {
            parts.Add("fedavg");
        }

        if (Aggregation != AggregationKind.Mean)
        {
            parts.Add(AggregationRules.ToName(Aggregation));
        }

        if (Repair != RepairMode.None)
        {
            parts.Add(RepairModes.ToName(Repair));
        }

        return string.Join('+', parts);
    }

    private static StrategySpec ParseCompact(string name)
    {
        string[] tokens = name.ToLowerInvariant().Split('+', StringSplitOptions.TrimEntries);
        var alignment = AlignmentKind.None;
        var aggregation = AggregationKind.Mean;
        var repair = RepairMode.None;

        // Stage 0 = alignment, 1 = aggregation, 2 = repair; each token must come after the previous one's stage.
        int stage = 0;
        foreach (string token in tokens)
        {
            if (stage <= 0 && Array.IndexOf(s_alignmentNames, token) >= 0)
            {
                alignment = token == "wm" ? AlignmentKind.WeightMatching : AlignmentKind.None;
                stage = 1;
            }
            else if (stage <= 1 && Array.IndexOf(s_aggregationNames, token) >= 0)
            {
                aggregation = AggregationRules.Parse(token);
                stage = 2;
            }
            else if (stage <= 2 && Array.IndexOf(s_repairNames, token) >= 0)
            {
                repair = RepairModes.Parse(token);
                stage = 3;
            }
            else
            {
                throw new FormatException(
                    $"Unknown or misplaced part '{token}' in strategy '{name}'. A compact name is " +
                    $"[{string.Join("|", s_alignmentNames)}][+{string.Join("|", s_aggregationNames)}][+{string.Join("|", s_repairNames)}] " +
                    $"in that order, e.g. {string.Join(", ", KnownNames)}; or use align=...,aggregate=...,repair=....");
            }
        }

        return new StrategySpec(alignment, aggregation, repair);
    }

    private static StrategySpec ParseExplicit(string text)
    {
        var alignment = AlignmentKind.None;
        var aggregation = AggregationKind.Mean;
        var repair = RepairMode.None;
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (string pair in text.Split(',', StringSplitOptions.TrimEntries))
        {
            int eq = pair.IndexOf('=', StringComparison.Ordinal);
            string key = eq < 0 ? pair.ToLowerInvariant() : pair[..eq].Trim().ToLowerInvariant();
            string value = eq < 0 ? string.Empty : pair[(eq + 1)..].Trim().ToLowerInvariant();
            if (eq < 0 || Array.IndexOf(s_explicitKeys, key) < 0)
            {
                throw new FormatException($"Unknown part '{pair}' in strategy '{text}'; the explicit form takes keys {string.Join(", ", s_explicitKeys)} as key=value.");
            }

            if (!seen.Add(key))
            {
                throw new FormatException($"The key '{key}' appears more than once in strategy '{text}'.");
            }

            switch (key)
            {
                case "align":
                    alignment = value switch
                    {
                        "none" => AlignmentKind.None,
                        "wm" or "weight-matching" => AlignmentKind.WeightMatching,
                        _ => throw new FormatException($"align must be none or wm, not '{value}' (in strategy '{text}')."),
                    };
                    break;
                case "aggregate":
                    aggregation = AggregationRules.Parse(value);
                    break;
                default:
                    repair = RepairModes.Parse(value);
                    break;
            }
        }

        return new StrategySpec(alignment, aggregation, repair);
    }
}
