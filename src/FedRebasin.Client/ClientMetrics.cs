using System.Diagnostics.Metrics;

namespace FedRebasin.Client;

/// <summary>
/// A client worker's instruments (meter <see cref="MeterName"/>; one client per process, so no client label): local
/// training time, loss and speed of the last round, rounds trained, bytes uploaded and retried calls by operation.
/// </summary>
public sealed class ClientMetrics : IDisposable
{
    /// <summary>The meter's name.</summary>
    public const string MeterName = "FedRebasin.Client";

    private readonly Meter _meter;
    private readonly Histogram<double> _training;
    private readonly Counter<long> _rounds;
    private readonly Counter<long> _uploaded;
    private readonly Counter<long> _retries;
    private readonly Lock _gate = new();
    private double _loss = double.NaN;
    private double _examplesPerSecond = double.NaN;

    /// <summary>Creates the instruments, with <paramref name="meterFactory"/> when given (a host's DI container).</summary>
    public ClientMetrics(IMeterFactory? meterFactory = null)
    {
        _meter = meterFactory?.Create(MeterName) ?? new Meter(MeterName);
        _training = _meter.CreateHistogram<double>("fedrebasin.client.training.duration", "s", "Wall time of one round's local training.");
        _rounds = _meter.CreateCounter<long>("fedrebasin.client.rounds.trained", "{round}", "Rounds this client trained and uploaded.");
        _uploaded = _meter.CreateCounter<long>("fedrebasin.client.upload.bytes", "By", "Model bytes uploaded (accepted uploads).");
        _retries = _meter.CreateCounter<long>("fedrebasin.client.call.retries", "{retry}", "Coordinator calls retried, by operation.");
        _rounds.Add(0);
        _meter.CreateObservableGauge("fedrebasin.client.train.loss", () => Read(ref _loss), description: "Training loss of the last local epoch of the last round.");
        _meter.CreateObservableGauge("fedrebasin.client.examples_per_second", () => Read(ref _examplesPerSecond), description: "Training examples per second in the last round.");
    }

    /// <summary>Records one round's local training and its upload.</summary>
    public void Trained(double seconds, double loss, double examplesPerSecond, long uploadedBytes)
    {
        _training.Record(seconds);
        _rounds.Add(1);
        _uploaded.Add(uploadedBytes);
        lock (_gate)
        {
            _loss = loss;
            _examplesPerSecond = examplesPerSecond;
        }
    }

    /// <summary>Counts a retried call.</summary>
    public void Retried(string operation) => _retries.Add(1, new KeyValuePair<string, object?>("operation", operation));

    /// <inheritdoc />
    public void Dispose() => _meter.Dispose();

    // NaN (nothing trained yet) is reported as no measurement.
    private IEnumerable<Measurement<double>> Read(ref double field)
    {
        double value;
        lock (_gate)
        {
            value = field;
        }

        return double.IsNaN(value) ? [] : [new Measurement<double>(value)];
    }
}
