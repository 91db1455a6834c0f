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
    private readonly Dictionary<RefusalReason, long> _refusedByReason = [];
    private readonly Lock _gate = new();

    public CoordinatorMetrics(IMeterFactory? meterFactory = null)
    {
        _meter = meterFactory?.Create(MeterName) ?? new Meter(MeterName);
        _accepted = _meter.CreateCounter<long>("fedrebasin.updates.accepted", "{update}", "Updates accepted and folded into a round.");
        _refused = _meter.CreateCounter<long>("fedrebasin.updates.refused", "{update}", "Updates and statistics refused, by reason.");
        _rounds = _meter.CreateCounter<long>("fedrebasin.rounds.completed", "{round}", "Rounds whose model was published.");
        _dropped = _meter.CreateCounter<long>("fedrebasin.clients.dropped", "{client}", "Clients dropped for missing heartbeats.");
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

    public void RoundCompleted() => _rounds.Add(1);

    public void ClientDropped() => _dropped.Add(1);

    public void Dispose() => _meter.Dispose();
}
