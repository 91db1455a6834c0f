using System.Diagnostics.Metrics;
using FedRebasin.Federation.Rounds;

namespace FedRebasin.Coordinator.Tests;

/// <summary>The coordinator's gauges as a MeterListener reads them (the exporter reads the same measurements).</summary>
public sealed class CoordinatorMetricsTests
{
    [Fact]
    public void Gauges_AfterARound_RunStateParticipantsModelsBarrierAndRepair()
    {
        // Arrange: a round of wm+repair with calibration repair and server-side evaluation.
        using var factory = new ScopedMeterFactory();
        using var metrics = new CoordinatorMetrics(factory);
        metrics.ObserveRun(() => (RoundPhase.Training, 3));
        var summary = new RoundSummary(2, 3, 300, 0.75, 0.6, 0.70, 0.8, 1.5, 3.0, 1000, 0.9, 0.1, "calibration",
            ClientModelsLoss: 0.5, ClientModelsAccuracy: 0.8, LossBarrier: 0.1, AccuracyBarrier: 0.05, RepairPointsCorrected: 4, VarianceRatioBefore: 0.4, VarianceRatioAfter: 1.0);

        // Act
        metrics.RoundCompleted(summary, "wm+repair");
        var seen = Collect(factory);

        // Assert
        Assert.Equal(1, Single(seen, "fedrebasin.run.state", ("state", "training")));
        Assert.Equal(0, Single(seen, "fedrebasin.run.state", ("state", "waiting_for_clients")));
        Assert.Equal(5, seen.Count(m => m.Name == "fedrebasin.run.state"));
        Assert.Equal(3, Single(seen, "fedrebasin.clients.participating"));
        Assert.Equal(0.75, Single(seen, "fedrebasin.model.accuracy", ("model", "global"), ("strategy", "wm+repair")));
        Assert.Equal(0.70, Single(seen, "fedrebasin.model.accuracy", ("model", "shadow_fedavg"), ("strategy", "fedavg")));
        Assert.Equal(0.6, Single(seen, "fedrebasin.model.loss", ("model", "global"), ("strategy", "wm+repair")));
        Assert.Equal(0.8, Single(seen, "fedrebasin.model.loss", ("model", "shadow_fedavg"), ("strategy", "fedavg")));
        Assert.Equal(0.1, Single(seen, "fedrebasin.merge.loss_barrier"));
        Assert.Equal(0.05, Single(seen, "fedrebasin.merge.accuracy_barrier"));
        Assert.Equal(4, Single(seen, "fedrebasin.repair.points_corrected"));
        Assert.Equal(0.4, Single(seen, "fedrebasin.repair.variance_ratio", ("when", "before")));
        Assert.Equal(1.0, Single(seen, "fedrebasin.repair.variance_ratio", ("when", "after")));
    }

    [Fact]
    public void VarianceRatio_RepairThroughAStatisticsTask_ReportsBeforeOnly()
    {
        // Arrange: federated repair measures the merged model before the correction and nothing after it.
        using var factory = new ScopedMeterFactory();
        using var metrics = new CoordinatorMetrics(factory);
        var summary = new RoundSummary(1, 3, 300, 0.75, 0.6, 0.70, 0.8, 1.5, 3.0, 1000, 0.9, 0.1, "statistics",
            RepairPointsCorrected: 2, VarianceRatioBefore: 0.3, VarianceRatioAfter: double.NaN);

        // Act
        metrics.RoundCompleted(summary, "wm+repair");
        var seen = Collect(factory);

        // Assert
        Assert.Equal(0.3, Single(seen, "fedrebasin.repair.variance_ratio", ("when", "before")));
        Assert.Single(seen, m => m.Name == "fedrebasin.repair.variance_ratio");
    }

    [Fact]
    public void Gauges_WithoutEvaluationOrRepair_ReportNoValueRatherThanNaN()
    {
        // Arrange: no evaluation data (NaN figures) and no repair.
        using var factory = new ScopedMeterFactory();
        using var metrics = new CoordinatorMetrics(factory);
        var summary = new RoundSummary(1, 2, 200, double.NaN, double.NaN, double.NaN, double.NaN, 1.0, 2.0, 1000, double.NaN, double.NaN, "none");

        // Act
        var before = Collect(factory);
        metrics.RoundCompleted(summary, "fedavg");
        var after = Collect(factory);

        // Assert: nothing before the first round; afterwards only what was measured.
        Assert.DoesNotContain(before, m => m.Name.StartsWith("fedrebasin.model.", StringComparison.Ordinal) || m.Name == "fedrebasin.run.state");
        Assert.DoesNotContain(after, m => m.Name is "fedrebasin.model.accuracy" or "fedrebasin.model.loss" or "fedrebasin.merge.loss_barrier" or "fedrebasin.repair.variance_ratio");
        Assert.Equal(0, Single(after, "fedrebasin.repair.points_corrected"));
    }

    private static List<(string Name, double Value, KeyValuePair<string, object?>[] Tags)> Collect(ScopedMeterFactory factory)
    {
        var seen = new List<(string Name, double Value, KeyValuePair<string, object?>[] Tags)>();
        using var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (ReferenceEquals(instrument.Meter.Scope, factory.Scope))
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        listener.SetMeasurementEventCallback<double>((i, v, tags, _) => seen.Add((i.Name, v, tags.ToArray())));
        listener.SetMeasurementEventCallback<int>((i, v, tags, _) => seen.Add((i.Name, v, tags.ToArray())));
        listener.SetMeasurementEventCallback<long>((i, v, tags, _) => seen.Add((i.Name, v, tags.ToArray())));
        listener.Start();
        listener.RecordObservableInstruments();
        return seen;
    }

    private static double Single(List<(string Name, double Value, KeyValuePair<string, object?>[] Tags)> seen, string name, params (string Key, string Value)[] tags) =>
        Assert.Single(seen, m => m.Name == name && tags.All(t => m.Tags.Any(x => x.Key == t.Key && Equals(x.Value, t.Value)))).Value;

    /// <summary>Meters with a scope of their own, so coordinators of tests running in parallel are not read.</summary>
    private sealed class ScopedMeterFactory : IMeterFactory
    {
        private readonly List<Meter> _meters = [];

        public object Scope { get; } = new();

        public Meter Create(MeterOptions options)
        {
            var meter = new Meter(new MeterOptions(options.Name) { Version = options.Version, Tags = options.Tags, Scope = Scope });
            _meters.Add(meter);
            return meter;
        }

        public void Dispose()
        {
            foreach (var meter in _meters)
            {
                meter.Dispose();
            }
        }
    }
}
