using System.Diagnostics.Metrics;
using FedRebasin.Federation.Updates;

namespace FedRebasin.Coordinator;

/// <summary>
/// The coordinator's instruments (meter <see cref="MeterName"/>): counters of accepted and refused updates (by reason),
/// completed rounds and client drops, and the last round's figures. Any System.Diagnostics.Metrics listener can read
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
    private double _accuracy = double.NaN;
    private double _shadowAccuracy = double.NaN;
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
        _stageDuration = _meter.CreateHistogram<double>("fedrebasin.merge.stage.duration", "s", "Wall time of a merge stage (align = weight matching of one update, average, repair, evaluate).");
        _bytes = _meter.CreateCounter<long>("fedrebasin.transfer.bytes", "By", "Model bytes moved (direction in = uploads received, out = downloads served).");
        _meter.CreateObservableGauge("fedrebasin.round.current", () => Volatile.Read(ref _round), "{round}", "The current round (the last completed one once the run is done).");
        _meter.CreateObservableGauge("fedrebasin.clients.registered", () => Volatile.Read(ref _clients), "{client}", "Clients with a live session.");
        _meter.CreateObservableGauge("fedrebasin.model.accuracy", ReadAccuracy, description: "Test accuracy (0..1) of the published model on the coordinator's evaluation data.");
        _meter.CreateObservableGauge("fedrebasin.model.shadow_fedavg_accuracy", ReadShadowAccuracy, description: "Test accuracy of plain FedAvg of the same round's updates (the shadow beside the strategy).");
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

    public void RoundCompleted(double seconds, double accuracy, double shadowAccuracy)
    {
        _rounds.Add(1);
        _roundDuration.Record(seconds);
        lock (_gate)
        {
            _accuracy = accuracy;
            _shadowAccuracy = shadowAccuracy;
        }
    }

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

    // NaN (no evaluation data) is reported as no measurement rather than as a value.
    private IEnumerable<Measurement<double>> ReadAccuracy()
    {
        double value;
        lock (_gate)
        {
            value = _accuracy;
        }

        return double.IsNaN(value) ? [] : [new Measurement<double>(value)];
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

    private IEnumerable<Measurement<double>> ReadShadowAccuracy()
    {
        double value;
        lock (_gate)
        {
            value = _shadowAccuracy;
        }

        return double.IsNaN(value) ? [] : [new Measurement<double>(value)];
    }

    public void ClientDropped() => _dropped.Add(1);

    public void Dispose() => _meter.Dispose();
}
