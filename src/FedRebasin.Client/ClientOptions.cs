using System.Globalization;
using System.Text.RegularExpressions;
using FedRebasin.Data;

namespace FedRebasin.Client;

/// <summary>Settings of one client worker. Call <see cref="Validate"/> before use; errors name the setting.</summary>
public sealed partial class ClientOptions
{
    /// <summary>Coordinator address, e.g. <c>http://127.0.0.1:5000</c>.</summary>
    public Uri? CoordinatorAddress { get; set; }

    /// <summary>Stable client name, 1..64 characters of [A-Za-z0-9._-].</summary>
    public string ClientId { get; set; } = string.Empty;

    /// <summary>Bearer token sent as <c>authorization: Bearer</c>; optional. Never logged.</summary>
    public string? Token { get; set; }

    /// <summary>
    /// PEM bundle of the CA certificates trusted for the coordinator's TLS certificate (instead of the system's trust
    /// store); needs an https <see cref="CoordinatorAddress"/>. Null: system trust.
    /// </summary>
    public string? CaCertificatePath { get; set; }

    /// <summary>PEM client certificate for mutual TLS (any intermediates after it); needs <see cref="ClientKeyPath"/> and an https address.</summary>
    public string? ClientCertificatePath { get; set; }

    /// <summary>PEM private key of <see cref="ClientCertificatePath"/> (may name the same file).</summary>
    public string? ClientKeyPath { get; set; }

    /// <summary>Dataset name (see <see cref="DatasetCatalog.KnownNames"/>); ignored when <see cref="Dataset"/> is given.</summary>
    public string DatasetName { get; set; } = "synthetic";

    /// <summary>Directory of the dataset files (null: the catalog's defaults).</summary>
    public string? DataDirectory { get; set; }

    /// <summary>A dataset given directly (tests); takes precedence over <see cref="DatasetName"/>.</summary>
    public ImageDataset? Dataset { get; set; }

    /// <summary>Partition spec: <c>iid</c>, <c>dirichlet:A</c> or <c>shards:K</c>.</summary>
    public string Partition { get; set; } = "iid";

    /// <summary>Number of clients the dataset is split among.</summary>
    public int Clients { get; set; } = 1;

    /// <summary>This client's split, in [0, Clients).</summary>
    public int ClientIndex { get; set; }

    /// <summary>Seed of the partitioning (every client must use the same one to get disjoint splits).</summary>
    public int PartitionSeed { get; set; }

    /// <summary>Compute device: auto, cpu, cuda or cuda:N.</summary>
    public string Device { get; set; } = "cpu";

    /// <summary>Deadline of each unary/streaming call attempt (not the GetTask long poll).</summary>
    public TimeSpan CallTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Deadline of each GetTask attempt; must exceed the coordinator's poll window (about 30 s).</summary>
    public TimeSpan PollTimeout { get; set; } = TimeSpan.FromSeconds(45);

    /// <summary>Retry and circuit-breaker settings.</summary>
    public RetrySettings Retry { get; set; } = new();

    /// <summary>
    /// Shared by the workers of one process (the one-box simulation) to cap how many train or measure at once, so a
    /// device's memory and cores are not oversubscribed; null: no cap.
    /// </summary>
    public SemaphoreSlim? ComputeSlots { get; set; }

    /// <summary>
    /// LibTorch intra-op threads of this worker's training and measuring (see <see cref="FedRebasin.Torch.TorchThreads"/>);
    /// 0: LibTorch's default (all cores). The one-box simulation shares the cores out among the clients that compute at once.
    /// </summary>
    public int TorchThreads { get; set; }

    /// <summary>
    /// Called with every model this worker trained, before it is uploaded; the one-box simulation keeps the last
    /// round's to draw the interpolation curve of the last merge. Null: nothing is called.
    /// </summary>
    public Action<TrainedModel>? ModelTrained { get; set; }

    /// <summary>Local examples used for channel moments and statistics tasks (federated repair); all when the split is smaller.</summary>
    public int StatisticsExamples { get; set; } = 5000;

    /// <summary>How long the worker keeps trying to reach a coordinator that answered before and stopped (e.g. restarting) before it gives up.</summary>
    public TimeSpan ReconnectTimeout { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>Throws <see cref="ArgumentException"/> naming every invalid setting.</summary>
    public void Validate()
    {
        var errors = new List<string>();
        void Check(bool ok, string name, string rule)
        {
            if (!ok)
            {
                errors.Add($"{name} {rule}");
            }
        }

        Check(CoordinatorAddress is { IsAbsoluteUri: true } && (CoordinatorAddress.Scheme == Uri.UriSchemeHttp || CoordinatorAddress.Scheme == Uri.UriSchemeHttps),
            nameof(CoordinatorAddress), "must be an absolute http(s) address");
        Check(ClientId is not null && ClientIdPattern().IsMatch(ClientId), nameof(ClientId), "must be 1..64 characters of [A-Za-z0-9._-]");
        Check(Token is null || !string.IsNullOrWhiteSpace(Token), nameof(Token), "must not be blank when set");
        Check(Dataset is not null || !string.IsNullOrWhiteSpace(DatasetName), nameof(DatasetName), "is required when no Dataset is given");
        Check(PartitionSpec.TryParse(Partition, out _), nameof(Partition), "must be iid, dirichlet:A or shards:K");
        Check(Clients >= 1, nameof(Clients), "must be at least 1");
        Check(ClientIndex >= 0 && ClientIndex < Clients, nameof(ClientIndex), string.Create(CultureInfo.InvariantCulture, $"must be in [0, {Clients})"));
        Check(!string.IsNullOrWhiteSpace(Device), nameof(Device), "is required");
        Check(CallTimeout > TimeSpan.Zero, nameof(CallTimeout), "must be positive");
        Check(PollTimeout > TimeSpan.Zero, nameof(PollTimeout), "must be positive");
        Check(TorchThreads >= 0, nameof(TorchThreads), "must not be negative (0: LibTorch's default)");
        Check(StatisticsExamples >= 1, nameof(StatisticsExamples), "must be at least 1");
        Check(ReconnectTimeout >= TimeSpan.Zero, nameof(ReconnectTimeout), "must not be negative");
        ClientChannel.Validate(this, errors);
        if (Retry is null)
        {
            errors.Add($"{nameof(Retry)} is required");
        }
        else
        {
            Retry.Validate(errors);
        }

        if (errors.Count > 0)
        {
            throw new ArgumentException("Invalid client options: " + string.Join("; ", errors) + ".");
        }
    }

    [GeneratedRegex("^[A-Za-z0-9._-]{1,64}$", RegexOptions.CultureInvariant)]
    private static partial Regex ClientIdPattern();
}

/// <summary>
/// Retry and circuit-breaker settings. The defaults suit the call rate of a client: a handful of calls per round
/// (one long poll every ≤ 30 s, one download, one upload), so the breaker needs only a few calls in its window
/// (<see cref="BreakerMinimumThroughput"/> = 4 within <see cref="BreakerSamplingDuration"/> = 60 s) and opens only when
/// most of them fail (<see cref="BreakerFailureRatio"/> = 0.75), then rests for <see cref="BreakerBreakDuration"/> = 10 s,
/// shorter than the longest retry delay so a retrying call finds it half-open.
/// </summary>
public sealed class RetrySettings
{
    /// <summary>Retries after the first attempt.</summary>
    public int MaxRetryAttempts { get; set; } = 6;

    /// <summary>First backoff delay; doubled each retry, with jitter. Zero in tests.</summary>
    public TimeSpan BaseDelay { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Largest backoff delay.</summary>
    public TimeSpan MaxDelay { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Failure ratio in the sampling window that opens the breaker.</summary>
    public double BreakerFailureRatio { get; set; } = 0.75;

    /// <summary>Calls needed in the window before the breaker may open (at least 2).</summary>
    public int BreakerMinimumThroughput { get; set; } = 4;

    /// <summary>Sampling window of the breaker (at least 0.5 s).</summary>
    public TimeSpan BreakerSamplingDuration { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>How long the breaker stays open (at least 0.5 s).</summary>
    public TimeSpan BreakerBreakDuration { get; set; } = TimeSpan.FromSeconds(10);

    internal void Validate(List<string> errors)
    {
        void Check(bool ok, string name, string rule)
        {
            if (!ok)
            {
                errors.Add($"Retry:{name} {rule}");
            }
        }

        Check(MaxRetryAttempts >= 0 && MaxRetryAttempts <= 100, nameof(MaxRetryAttempts), "must be in [0, 100]");
        Check(BaseDelay >= TimeSpan.Zero, nameof(BaseDelay), "must not be negative");
        Check(MaxDelay >= BaseDelay, nameof(MaxDelay), "must be at least BaseDelay");
        Check(BreakerFailureRatio > 0 && BreakerFailureRatio <= 1, nameof(BreakerFailureRatio), "must be in (0, 1]");
        Check(BreakerMinimumThroughput >= 2, nameof(BreakerMinimumThroughput), "must be at least 2");
        Check(BreakerSamplingDuration >= TimeSpan.FromMilliseconds(500), nameof(BreakerSamplingDuration), "must be at least 0.5 s");
        Check(BreakerBreakDuration >= TimeSpan.FromMilliseconds(500), nameof(BreakerBreakDuration), "must be at least 0.5 s");
    }
}

/// <summary>A model a client worker trained for a round (see <see cref="ClientOptions.ModelTrained"/>).</summary>
/// <param name="ClientId">The worker's client id.</param>
/// <param name="ClientIndex">Its split index.</param>
/// <param name="Round">The round trained for.</param>
/// <param name="SampleCount">Examples in its split (its averaging weight).</param>
/// <param name="SafeTensors">The trained model as uploaded (safetensors bytes; do not modify).</param>
public sealed record TrainedModel(string ClientId, int ClientIndex, long Round, long SampleCount, byte[] SafeTensors);
