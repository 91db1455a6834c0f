using System.Diagnostics.Metrics;
using FedRebasin.Federation.Rounds;
using FedRebasin.Federation.Updates;

namespace FedRebasin.Coordinator;

/// <summary>
/// The coordinator's instruments (meter <see cref="MeterName"/>): counters of accepted and refused updates (by reason),
/// completed rounds and client drops, the run's state, and the last round's figures (accuracy and loss per strategy
/// with the shadow FedAvg beside it, the merge barrier, repair and alignment figures). Any System.Diagnostics.Metrics listener can read
/// them (the OpenTelemetry Prometheus exporter, dotnet-counters, tests with a MeterListener).
/// </summary>
internal sealed class CoordinatorMetrics : IDisposable
{
    /// <summary>The meter's name.</summary>
    public const string MeterName = "FedRebasin.Coordinator";

    private readonly Meter _meter;
    private readonly Counter<long> _accepted;
    private readonly Counter<long> _refused;
    private readonly Counter<long> _rounds;
    private readonly Counter<long> _dropped;
    private readonly Histogram<double> _roundDuration;
    private readonly Histogram<double> _stageDuration;
    private readonly Counter<long> _bytes;
    private readonly Dictionary<RefusalReason, long> _refusedByReason = [];
    private readonly Lock _gate = new();
    private int _round;
    private int _clients;
    private RoundSummary? _last;
    private string _strategy = string.Empty;
    private Func<(RoundPhase Phase, int Participating)>? _run;
    private IReadOnlyList<(string Group, double Gain, double IdentityFraction)> _groups = [];

    public CoordinatorMetrics(IMeterFactory? meterFactory = null)
    {
        _meter = meterFactory?.Create(MeterName) ?? new Meter(MeterName);
        _accepted = _meter.CreateCounter<long>("fedrebasin.updates.accepted", "{update}", "Updates accepted and folded into a round.");
        _refused = _meter.CreateCounter<long>("fedrebasin.updates.refused", "{update}", "Updates and statistics refused, by reason.");
        _rounds = _meter.CreateCounter<long>("fedrebasin.rounds.completed", "{round}", "Rounds whose model was published.");
        _dropped = _meter.CreateCounter<long>("fedrebasin.clients.dropped", "{client}", "Clients dropped for missing heartbeats.");
        // Exported as 0 from the start, so dashboards and alerts see the series before the first event.
        _accepted.Add(0);
        _rounds.Add(0);
        _dropped.Add(0);
        _roundDuration = _meter.CreateHistogram<double>("fedrebasin.round.duration", "s", "Wall time of a round, from its start to the published model.");
        _stageDuration = _meter.CreateHistogram<double>("fedrebasin.merge.stage.duration", "s", "Wall time of a merge stage (align = weight matching of one update, average, repair, evaluate = the merged model, evaluate_update = one client model for the barrier).");
        _bytes = _meter.CreateCounter<long>("fedrebasin.transfer.bytes", "By", "Model bytes moved (direction in = uploads received, out = downloads served).");
        _meter.CreateObservableGauge("fedrebasin.round.current", () => Volatile.Read(ref _round), "{round}", "The current round (the last completed one once the run is done).");
        _meter.CreateObservableGauge("fedrebasin.clients.registered", () => Volatile.Read(ref _clients), "{client}", "Clients with a live session.");
        _meter.CreateObservableGauge("fedrebasin.run.state", ReadRunState, description: "1 for the state the run is in (label state: waiting_for_clients, training, aggregating, statistics, done), 0 for the others.");
        _meter.CreateObservableGauge("fedrebasin.clients.participating", ReadParticipating, "{client}", "Clients picked for the open round (0 between rounds).");
        _meter.CreateObservableGauge("fedrebasin.model.accuracy", () => ReadModels(s => (s.Accuracy, s.ShadowFedAvgAccuracy)), description: "Test accuracy (0..1) on the coordinator's evaluation data of the last published model (model=global, label strategy) and of plain FedAvg of the same updates (model=shadow_fedavg, strategy=fedavg).");
        _meter.CreateObservableGauge("fedrebasin.model.loss", () => ReadModels(s => (s.Loss, s.ShadowFedAvgLoss)), description: "Test loss (mean cross-entropy) of the last published model and of its shadow FedAvg; labels as for fedrebasin.model.accuracy.");
        _meter.CreateObservableGauge("fedrebasin.merge.loss_barrier", () => ReadLast(s => s.LossBarrier), description: "Last round's merge barrier: the merged model's test loss minus the sample-weighted mean test loss of the client models merged.");
        _meter.CreateObservableGauge("fedrebasin.merge.accuracy_barrier", () => ReadLast(s => s.AccuracyBarrier), description: "Last round's accuracy barrier: the client models' sample-weighted mean test accuracy minus the merged model's.");
        _meter.CreateObservableGauge("fedrebasin.repair.points_corrected", () => ReadLast(s => s.RepairPointsCorrected), description: "Repair points the last round's repair corrected (BatchNorm layers re-estimated for bn-reset).");
        _meter.CreateObservableGauge("fedrebasin.repair.variance_ratio", ReadVarianceRatios, description: "Last round's mean merged/target channel-variance ratio (label when: before or after repair; below 1 is variance collapse); after only with calibration data.");
        _meter.CreateObservableGauge("fedrebasin.alignment.identity_fraction", () => ReadGroups(g => g.IdentityFraction), description: "Per permutation group, the mean over the last round's clients of the units weight matching left in place (1 = no permutation).");
        _meter.CreateObservableGauge("fedrebasin.alignment.gain", () => ReadGroups(g => g.Gain), description: "Per permutation group, the mean over the last round's clients of the matching objective's gain.");
    }

    /// <summary>Refusals so far by reason (a copy).</summary>
    public IReadOnlyDictionary<RefusalReason, long> RefusedByReason
    {
        get
        {
            lock (_gate)
            {
                return new Dictionary<RefusalReason, long>(_refusedByReason);
            }
        }
    }

    public void Accepted() => _accepted.Add(1);

    public void Refused(RefusalReason reason)
    {
        lock (_gate)
        {
            _refusedByReason[reason] = _refusedByReason.GetValueOrDefault(reason) + 1;
        }

        _refused.Add(1, new KeyValuePair<string, object?>("reason", RefusalReasons.ToName(reason)));
    }

    /// <summary>Records a completed round of the named strategy (its duration and its figures until the next round).</summary>
    public void RoundCompleted(RoundSummary summary, string strategy)
    {
        ArgumentNullException.ThrowIfNull(summary);
        _rounds.Add(1);
        _roundDuration.Record(summary.Seconds);
        lock (_gate)
        {
            _last = summary;
            _strategy = strategy;
        }
    }

    /// <summary>Where the run state and the open round's participants are read from at each collection.</summary>
    public void ObserveRun(Func<(RoundPhase Phase, int Participating)> read) => Volatile.Write(ref _run, read);

    /// <summary>Records the duration of a merge stage: align, average, repair or evaluate.</summary>
    public void Stage(string stage, double seconds) => _stageDuration.Record(seconds, new KeyValuePair<string, object?>("stage", stage));

    /// <summary>Counts model bytes received (in) or served (out).</summary>
    public void Transferred(string direction, long bytes) => _bytes.Add(bytes, new KeyValuePair<string, object?>("direction", direction));

    /// <summary>The last round's alignment figures per permutation group (averaged over its clients).</summary>
    public void SetAlignment(IReadOnlyList<(string Group, double Gain, double IdentityFraction)> groups)
    {
        ArgumentNullException.ThrowIfNull(groups);
        lock (_gate)
        {
            _groups = groups;
        }
    }

    public void SetRound(int round) => Volatile.Write(ref _round, round);

    public void SetClients(int clients) => Volatile.Write(ref _clients, clients);

    /// <summary>Prometheus label values of <see cref="RoundPhase"/>.</summary>
    public static string StateName(RoundPhase phase) => phase switch
    {
        RoundPhase.WaitingForClients => "waiting_for_clients",
        RoundPhase.Training => "training",
        RoundPhase.Aggregating => "aggregating",
        RoundPhase.Statistics => "statistics",
        RoundPhase.Done => "done",
        _ => throw new ArgumentOutOfRangeException(nameof(phase), phase, "unknown phase"),
    };

    private IEnumerable<Measurement<int>> ReadRunState()
    {
        if (Volatile.Read(ref _run) is not { } read)
        {
            return [];
        }

        var phase = read().Phase;
        return [.. Enum.GetValues<RoundPhase>().Select(p => new Measurement<int>(p == phase ? 1 : 0, new KeyValuePair<string, object?>("state", StateName(p))))];
    }

    private IEnumerable<Measurement<int>> ReadParticipating() =>
        Volatile.Read(ref _run) is { } read ? [new Measurement<int>(read().Participating)] : [];

    // NaN (not measured: no evaluation data, no repair) is reported as no measurement rather than as a value.
    private IEnumerable<Measurement<double>> ReadModels(Func<RoundSummary, (double Global, double Shadow)> value)
    {
        RoundSummary? last;
        string strategy;
        lock (_gate)
        {
            (last, strategy) = (_last, _strategy);
        }

        if (last is null)
        {
            return [];
        }

        var (global, shadow) = value(last);
        var result = new List<Measurement<double>>(2);
        if (double.IsFinite(global))
        {
            result.Add(new Measurement<double>(global, new("model", "global"), new("strategy", strategy)));
        }

        if (double.IsFinite(shadow))
        {
            result.Add(new Measurement<double>(shadow, new("model", "shadow_fedavg"), new("strategy", "fedavg")));
        }

        return result;
    }

    private IEnumerable<Measurement<double>> ReadLast(Func<RoundSummary, double> value)
    {
        RoundSummary? last;
        lock (_gate)
        {
            last = _last;
        }

        return last is not null && double.IsFinite(value(last)) ? [new Measurement<double>(value(last))] : [];
    }

    private IEnumerable<Measurement<double>> ReadVarianceRatios()
    {
        RoundSummary? last;
        lock (_gate)
        {
            last = _last;
        }

        // Each figure when measured: repair through a statistics task measures "before" only.
        var measured = new List<Measurement<double>>(2);
        if (last is not null && double.IsFinite(last.VarianceRatioBefore))
        {
            measured.Add(new Measurement<double>(last.VarianceRatioBefore, new KeyValuePair<string, object?>("when", "before")));
        }

        if (last is not null && double.IsFinite(last.VarianceRatioAfter))
        {
            measured.Add(new Measurement<double>(last.VarianceRatioAfter, new KeyValuePair<string, object?>("when", "after")));
        }

        return measured;
    }

    private IEnumerable<Measurement<double>> ReadGroups(Func<(string Group, double Gain, double IdentityFraction), double> value)
    {
        IReadOnlyList<(string Group, double Gain, double IdentityFraction)> groups;
        lock (_gate)
        {
            groups = _groups;
        }

        return [.. groups.Select(g => new Measurement<double>(value(g), new KeyValuePair<string, object?>("group", g.Group)))];
    }

    public void ClientDropped() => _dropped.Add(1);

    public void Dispose() => _meter.Dispose();
}
