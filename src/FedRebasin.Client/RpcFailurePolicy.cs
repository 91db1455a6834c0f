using FedRebasin.Contracts;
using Grpc.Core;
using Polly.CircuitBreaker;
using Polly.Timeout;

namespace FedRebasin.Client;

/// <summary>How the client treats a failed call attempt.</summary>
public enum RetryDecision
{
    /// <summary>Do not retry: the request is wrong or not allowed, retrying gives the same answer.</summary>
    Fatal,

    /// <summary>Transient: retry the whole call with backoff.</summary>
    Transient,

    /// <summary>Corruption in transit (DATA_LOSS): retry the whole call once.</summary>
    RetryOnce,
}

/// <summary>Pure classification of gRPC failures for the retry and circuit-breaker strategies.</summary>
public static class RpcFailurePolicy
{
    /// <summary>
    /// Classifies a status code. <paramref name="fromTransport"/> tells whether the client's transport raised it
    /// (Grpc.Net.Client attaches the underlying exception as <see cref="Status.DebugException"/>): INTERNAL is
    /// transient only then, since an INTERNAL sent by the server is a bug that a retry does not fix.
    /// </summary>
    public static RetryDecision Classify(StatusCode code, bool fromTransport) => code switch
    {
        StatusCode.Unavailable or StatusCode.DeadlineExceeded or StatusCode.ResourceExhausted => RetryDecision.Transient,
        StatusCode.Internal when fromTransport => RetryDecision.Transient,
        StatusCode.DataLoss => RetryDecision.RetryOnce,
        _ => RetryDecision.Fatal,
    };

    /// <summary>Classifies an exception thrown by a call attempt.</summary>
    public static RetryDecision Classify(Exception exception) => exception switch
    {
        RpcException rpc => Classify(rpc.StatusCode, rpc.Status.DebugException is not null),
        ModelTransferException transfer => Classify(transfer.StatusCode, fromTransport: false),
        TimeoutRejectedException or BrokenCircuitException => RetryDecision.Transient,
        _ => RetryDecision.Fatal,
    };

    /// <summary>Whether the attempt numbered <paramref name="attemptNumber"/> (0 = first) that failed with <paramref name="exception"/> is retried.</summary>
    public static bool ShouldRetry(Exception? exception, int attemptNumber) => exception is not null && Classify(exception) switch
    {
        RetryDecision.Transient => true,
        RetryDecision.RetryOnce => attemptNumber == 0,
        _ => false,
    };

    /// <summary>Whether a failure counts against the circuit breaker (transient faults of the coordinator or the network).</summary>
    public static bool CountsAsFault(Exception? exception) =>
        exception is RpcException or TimeoutRejectedException && Classify(exception) == RetryDecision.Transient;
}
