using System.Globalization;
using FedRebasin.Federation.Strategies;
using FedRebasin.Merging;
using FedRebasin.Merging.Averaging;
using FedRebasin.Merging.Matching;
using FedRebasin.Merging.Repair;
using FedRebasin.Models.Permutations;
using static TorchSharp.torch;

namespace FedRebasin.Federation.Updates;

/// <summary>How clients' moments are combined into repair targets.</summary>
public enum RepairTargetRule
{
    /// <summary><see cref="RepairTargets.Pool"/>: the clients' statistics as one population (law of total variance).</summary>
    Pool,

    /// <summary><see cref="RepairTargets.Mix"/>: weighted means of the clients' means and stds (REPAIR between two models on the same data).</summary>
    Mix,
}

/// <summary>Settings of a <see cref="RoundAggregator"/>.</summary>
public sealed record RoundAggregatorOptions
{
    /// <summary>Whether plain FedAvg of the unaligned updates is computed beside the strategy (shadow evaluation). Default true.</summary>
    public bool ShadowFedAvg { get; init; } = true;

    /// <summary>Fraction dropped at each end by the trimmed mean. Default <see cref="Aggregation.DefaultTrimFraction"/>.</summary>
    public double TrimFraction { get; init; } = Aggregation.DefaultTrimFraction;

    /// <summary>
    /// How the clients' aligned moments become repair targets: <see cref="RepairTargetRule.Pool"/> (default: one
    /// population over the clients' data, the consistent choice for non-IID clients) or <see cref="RepairTargetRule.Mix"/>
    /// (REPAIR's weighted mean of the stds).
    /// </summary>
    public RepairTargetRule TargetRule { get; init; } = RepairTargetRule.Pool;

    /// <summary>Weight-matching settings; <see cref="WeightMatchingOptions.Seed"/> and
    /// <see cref="WeightMatchingOptions.InitialPermutations"/> are replaced per client. Defaults when null.</summary>
    public WeightMatchingOptions? Matching { get; init; }
}

/// <summary>The audit trail of one folded client, as a checkpoint stores it.</summary>
/// <param name="ClientId">The client.</param>
/// <param name="SampleCount">Its sample count (the averaging weight for the mean).</param>
/// <param name="Aligned">Whether weight matching ran (false: the permutations are the identity).</param>
/// <param name="Seed">The matching seed used (0 when not aligned).</param>
/// <param name="Permutations">The permutation applied to the client's model and moments, per group.</param>
/// <param name="ObjectiveBefore">Σ⟨θ_ref, θ⟩ before alignment; NaN when not aligned.</param>
/// <param name="ObjectiveAfter">Σ⟨θ_ref, π(θ)⟩ after alignment; NaN when not aligned.</param>
/// <param name="Sweeps">Coordinate-descent sweeps (0 when not aligned).</param>
/// <param name="Seconds">Wall time of the matching.</param>
/// <param name="Groups">Per group: size, gain and the fraction of units left in place (empty when not aligned).</param>
/// <param name="HasMoments">Whether the client's moments entered the repair targets.</param>
public sealed record ClientAlignmentRecord(
    string ClientId,
    long SampleCount,
    bool Aligned,
    long Seed,
    IReadOnlyDictionary<string, long[]> Permutations,
    double ObjectiveBefore,
    double ObjectiveAfter,
    int Sweeps,
    double Seconds,
    IReadOnlyList<GroupMatch> Groups,
    bool HasMoments);

/// <summary>What a round produced. Owns its tensors: dispose it (or take the tensors and dispose them yourself).</summary>
public sealed class RoundAggregate : IDisposable
{
    private bool _disposed;

    internal RoundAggregate(
        int round,
        StrategySpec strategy,
        Dictionary<string, Tensor> state,
        Dictionary<string, Tensor>? shadow,
        RepairTargets? targets,
        IReadOnlyList<ClientAlignmentRecord> clients)
    {
        Round = round;
        Strategy = strategy;
        State = state;
        ShadowFedAvg = shadow;
        RepairTargets = targets;
        Clients = clients;
        TotalSamples = clients.Sum(c => c.SampleCount);
    }

    /// <summary>The round.</summary>
    public int Round { get; }

    /// <summary>The strategy that produced <see cref="State"/>.</summary>
    public StrategySpec Strategy { get; }

    /// <summary>The aggregated model (before repair), new tensors in the reference's dtypes.</summary>
    public Dictionary<string, Tensor> State { get; }

    /// <summary>Plain FedAvg of the unaligned updates, or null when the shadow was disabled.</summary>
    public Dictionary<string, Tensor>? ShadowFedAvg { get; }

    /// <summary>
    /// Repair targets: the aligned moments of the clients that sent moments, mixed with their sample counts
    /// (<see cref="RepairTargets.Mix"/>); null when no client sent moments.
    /// </summary>
    public RepairTargets? RepairTargets { get; }

    /// <summary>Per folded client, in folding order, the audit trail.</summary>
    public IReadOnlyList<ClientAlignmentRecord> Clients { get; }

    /// <summary>Sum of the folded clients' sample counts.</summary>
    public long TotalSamples { get; }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        StateDicts.DisposeAll(ShadowFedAvg is null ? [State] : [State, ShadowFedAvg]);
        _disposed = true;
    }
}

/// <summary>
/// Aggregates one round's validated updates as they arrive (ARCHITECTURE.md §2). Each <see cref="Fold"/> aligns the
/// update to the reference by weight matching when the strategy aligns (seeded per round and client), permutes its
/// moments with the same permutation and adds the aligned model to a running sum weighted by sample count, so for the
/// mean the memory is about one accumulator (plus one for the shadow FedAvg) whatever the number of clients. The
/// median and trimmed mean need every model at once: then each aligned model is kept until <see cref="Finish"/>,
/// and memory grows by one model per client. Robust aggregation is unweighted (sample counts are ignored).
/// A fold that throws leaves no trace. Not thread-safe: the caller serialises folds.
/// </summary>
public sealed class RoundAggregator : IDisposable
{
    private readonly IReadOnlyDictionary<string, Tensor> _reference;
    private readonly Device _device;
    private readonly PermutationSpec _spec;
    private readonly RepairPoint[] _points;
    private readonly RoundAggregatorOptions _options;
    private readonly RunningWeightedSum _sum = new();
    private readonly RunningWeightedSum? _shadowSum;
    private readonly List<Dictionary<string, Tensor>> _kept = [];
    private readonly List<(IReadOnlyList<ChannelMoments> Moments, double Weight)> _moments = [];
    private readonly List<ClientAlignmentRecord> _records = [];
    private readonly HashSet<string> _clients = new(StringComparer.Ordinal);
    private bool _finished;
    private bool _disposed;

    /// <summary>An aggregator for round <paramref name="round"/>.</summary>
    /// <param name="round">The round; updates for other rounds are refused.</param>
    /// <param name="reference">The alignment reference (by default the global model the round started from). Not
    /// copied: it must stay alive and unchanged until the aggregator is disposed.</param>
    /// <param name="spec">The model's permutation spec.</param>
    /// <param name="repairPoints">The model's repair points, in order.</param>
    /// <param name="strategy">How updates are aligned and combined (its repair part is applied by the caller).</param>
    /// <param name="options">Settings; defaults when null.</param>
    /// <exception cref="ArgumentException">The spec does not fit the reference, or the options are invalid.</exception>
    public RoundAggregator(
        int round,
        IReadOnlyDictionary<string, Tensor> reference,
        PermutationSpec spec,
        IReadOnlyList<RepairPoint> repairPoints,
        StrategySpec strategy,
        RoundAggregatorOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(reference);
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(repairPoints);
        ArgumentNullException.ThrowIfNull(strategy);
        _options = options ?? new RoundAggregatorOptions();
        _options.Matching?.Validate();
        if (!(_options.TrimFraction >= 0 && _options.TrimFraction < 0.5))
        {
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"TrimFraction must be in [0, 0.5), not {_options.TrimFraction}."), nameof(options));
        }

        spec.Validate(reference);
        Round = round;
        _reference = reference;
        _device = reference.Values.First().device;
        _spec = spec;
        _points = [.. repairPoints];
        Strategy = strategy;
        // Plain FedAvg is its own shadow: no second accumulator is needed.
        if (_options.ShadowFedAvg && !IsPlainMean)
        {
            _shadowSum = new RunningWeightedSum();
        }
    }

    /// <summary>The round.</summary>
    public int Round { get; }

    /// <summary>The strategy.</summary>
    public StrategySpec Strategy { get; }

    /// <summary>Number of updates folded in.</summary>
    public int Count => _records.Count;

    /// <summary>The audit records so far, in folding order.</summary>
    public IReadOnlyList<ClientAlignmentRecord> Clients => _records;

    private bool IsPlainMean => Strategy.Alignment == AlignmentKind.None && Strategy.Aggregation == AggregationKind.Mean;

    private bool KeepsStates => Strategy.Aggregation != AggregationKind.Mean;

    /// <summary>The weight-matching seed for a client in a round: <c>round·1000 + FNV-1a(clientId)</c> (stable across runs).</summary>
    public static long SeedFor(int round, string clientId)
    {
        ArgumentNullException.ThrowIfNull(clientId);
        uint hash = 2166136261;
        foreach (char c in clientId)
        {
            hash = unchecked((hash ^ c) * 16777619);
        }

        return ((long)round * 1000) + hash;
    }

    /// <summary>Aligns and folds one validated update. The update is not modified or kept; the caller still disposes it.</summary>
    /// <param name="update">The update (its round must be <see cref="Round"/>).</param>
    /// <param name="warmStart">This client's permutations from its previous round, to start the search from; or null.</param>
    /// <returns>The client's audit record.</returns>
    /// <exception cref="InvalidOperationException">The client was already folded, or <see cref="Finish"/> was called.</exception>
    /// <exception cref="ArgumentException">The update is for another round or does not fit the reference.</exception>
    public ClientAlignmentRecord Fold(ValidatedUpdate update, IReadOnlyDictionary<string, long[]>? warmStart = null)
    {
        ArgumentNullException.ThrowIfNull(update);
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_finished)
        {
            throw new InvalidOperationException($"Round {Round} is already finished; the update from '{update.ClientId}' cannot be folded.");
        }

        if (update.Round != Round)
        {
            throw new ArgumentException($"The update from '{update.ClientId}' is for round {update.Round}, not {Round}.", nameof(update));
        }

        if (_clients.Contains(update.ClientId))
        {
            throw new InvalidOperationException($"Client '{update.ClientId}' was already folded into round {Round}; an update is never counted twice.");
        }

        RequireReferenceLayout(update);
        if (update.Moments is { } given && given.Count != _points.Length)
        {
            throw new ArgumentException($"The update from '{update.ClientId}' has moments for {given.Count} repair points; the model has {_points.Length}.", nameof(update));
        }

        // Everything that can fail happens before the accumulators change.
        ClientAlignmentRecord record;
        Dictionary<string, Tensor>? aligned = null;
        IReadOnlyList<ChannelMoments>? moments;
        try
        {
            if (Strategy.Alignment == AlignmentKind.WeightMatching)
            {
                long seed = SeedFor(Round, update.ClientId);
                var options = (_options.Matching ?? new WeightMatchingOptions()) with { Seed = seed, InitialPermutations = warmStart };
                var match = WeightMatching.Match(_spec, _reference, update.State, options);
                if (KeepsStates)
                {
                    aligned = _spec.Permute(update.State, match.Permutations);
                }

                record = new ClientAlignmentRecord(
                    update.ClientId, update.SampleCount, true, seed, match.Permutations, match.ObjectiveBefore, match.ObjectiveAfter,
                    match.Sweeps, match.Seconds, match.Groups, update.Moments is not null);
            }
            else
            {
                if (KeepsStates)
                {
                    // Kept until Finish: tensors of its own, made once from the payload (not State and then a clone).
                    aligned = update.CreateState();
                }

                record = new ClientAlignmentRecord(
                    update.ClientId, update.SampleCount, false, 0, _spec.Identity(), double.NaN, double.NaN, 0, 0, [], update.Moments is not null);
            }

            moments = update.Moments is null ? null : MomentAlignment.Permute(_points, update.Moments, record.Permutations);
        }
        catch
        {
            if (aligned is not null)
            {
                StateDicts.DisposeAll([aligned]);
            }

            throw;
        }

        double weight = update.SampleCount;
        if (KeepsStates)
        {
            // Kept until Finish: out of any caller's dispose scope, owned by this aggregator.
            foreach (var tensor in aligned!.Values)
            {
                tensor.DetachFromDisposeScope();
            }

            _kept.Add(aligned);
        }
        else if (record.Aligned)
        {
            // Permuted one tensor at a time as it is folded: no aligned copy of the whole model is held. PermuteTensor
            // cannot fail half-way: the layout was checked above and the permutations are the match's own.
            var permutations = record.Permutations;
            _sum.Add(update.State, weight, (name, tensor) => _spec.PermuteTensor(name, tensor, permutations));
        }
        else
        {
            // Unaligned: straight from the payload's bytes, no tensors (RunningWeightedSum.Add of entries).
            _sum.Add(update.Entries, weight);
        }

        _shadowSum?.Add(update.Entries, weight);
        if (moments is not null)
        {
            _moments.Add((moments, weight));
        }

        _clients.Add(update.ClientId);
        _records.Add(record);
        return record;
    }

    /// <summary>
    /// Combines the folded updates. Can be called once; afterwards nothing more can be folded. The result owns new
    /// tensors; this aggregator can be disposed independently.
    /// </summary>
    /// <exception cref="InvalidOperationException">No update was folded, or the round was already finished.</exception>
    public RoundAggregate Finish()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_finished)
        {
            throw new InvalidOperationException($"Round {Round} was already finished.");
        }

        if (Count == 0)
        {
            throw new InvalidOperationException($"No update was folded into round {Round}; there is nothing to aggregate.");
        }

        Dictionary<string, Tensor> state = KeepsStates
            ? Aggregation.Robust(_kept.Cast<IReadOnlyDictionary<string, Tensor>>().ToList(), Strategy.Aggregation, _options.TrimFraction)
            : _sum.TakeMean(_device);
        Dictionary<string, Tensor>? shadow = null;
        try
        {
            if (_options.ShadowFedAvg)
            {
                shadow = _shadowSum is not null ? _shadowSum.TakeMean(_device) : StateDicts.Clone(state);
            }

            var targets = _moments.Count == 0 ? null
                : _options.TargetRule == RepairTargetRule.Mix ? RepairTargets.Mix(_moments) : RepairTargets.Pool(_moments);
            _finished = true;
            ReleaseKept();
            return new RoundAggregate(Round, Strategy, state, shadow, targets, _records.ToArray());
        }
        catch
        {
            StateDicts.DisposeAll(shadow is null ? [state] : [state, shadow]);
            throw;
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        ReleaseKept();
        _sum.Dispose();
        _shadowSum?.Dispose();
        _disposed = true;
    }

    /// <summary>The update's tensors must be the reference's (names and shapes); the validator checked them against the global model.</summary>
    private void RequireReferenceLayout(ValidatedUpdate update)
    {
        var entries = update.Entries;
        foreach (var entry in entries)
        {
            if (!_reference.TryGetValue(entry.Name, out var tensor))
            {
                throw new ArgumentException($"The update from '{update.ClientId}' has tensor '{entry.Name}' which the reference lacks.", nameof(update));
            }

            if (!tensor.shape.SequenceEqual(entry.Shape))
            {
                throw new ArgumentException($"The update from '{update.ClientId}': tensor '{entry.Name}' has shape [{string.Join(',', entry.Shape)}] but the reference has [{string.Join(',', tensor.shape)}].", nameof(update));
            }
        }

        if (entries.Count != _reference.Count)
        {
            string missing = _reference.Keys.First(n => !entries.Any(e => e.Name == n));
            throw new ArgumentException($"The update from '{update.ClientId}' has no tensor '{missing}' (which the reference has).", nameof(update));
        }
    }

    private void ReleaseKept()
    {
        StateDicts.DisposeAll(_kept);
        _kept.Clear();
    }
}
