namespace FedRebasin.Federation.Updates;

/// <summary>Why an update (or a call about one) was refused.</summary>
public enum RefusalReason
{
    /// <summary>The caller presented no valid credentials.</summary>
    Unauthenticated,

    /// <summary>The credentials are valid but not for this client.</summary>
    NotParticipant,

    /// <summary>The update is for another round than the open one.</summary>
    WrongRound,

    /// <summary>An update for this (client, round) was already accepted.</summary>
    Duplicate,

    /// <summary>The round stopped accepting updates before this one completed.</summary>
    TooLate,

    /// <summary>The payload's SHA-256 differs from the digest in the header.</summary>
    DigestMismatch,

    /// <summary>The payload (or its tensor count) is above a limit of <see cref="UpdateLimits"/>.</summary>
    TooLarge,

    /// <summary>The payload is not a valid safetensors file, or the header is malformed.</summary>
    Malformed,

    /// <summary>Tensor names, shapes or dtypes differ from the global model's.</summary>
    LayoutMismatch,

    /// <summary>A floating-point tensor, or the channel moments, hold NaN or an infinity (local training diverged).</summary>
    NonFinite,

    /// <summary>The sample count is not positive or is above <see cref="UpdateLimits.MaxSampleCount"/>.</summary>
    BadSampleCount,

    /// <summary>The channel moments do not fit the model's repair points or hold non-finite values.</summary>
    BadMoments,
}

/// <summary>
/// The status codes a refusal maps to, with the names and numeric values of gRPC's <c>StatusCode</c> (so the transport
/// layer converts with a cast or by name, and this project needs no gRPC reference).
/// </summary>
public enum RpcStatusCode
{
    /// <summary>Not an error.</summary>
    OK = 0,

    /// <summary>The operation was cancelled.</summary>
    Cancelled = 1,

    /// <summary>Unknown error.</summary>
    Unknown = 2,

    /// <summary>The client sent an invalid argument; retrying the same request will not help.</summary>
    InvalidArgument = 3,

    /// <summary>A deadline expired.</summary>
    DeadlineExceeded = 4,

    /// <summary>Something requested was not found.</summary>
    NotFound = 5,

    /// <summary>What the client tried to create already exists.</summary>
    AlreadyExists = 6,

    /// <summary>The caller may not do this.</summary>
    PermissionDenied = 7,

    /// <summary>A limit or quota was exceeded.</summary>
    ResourceExhausted = 8,

    /// <summary>The system is not in the state the operation needs.</summary>
    FailedPrecondition = 9,

    /// <summary>The operation was aborted (e.g. by a concurrent change).</summary>
    Aborted = 10,

    /// <summary>Out of the valid range.</summary>
    OutOfRange = 11,

    /// <summary>Not implemented.</summary>
    Unimplemented = 12,

    /// <summary>Internal error.</summary>
    Internal = 13,

    /// <summary>The service is unavailable; retry with backoff.</summary>
    Unavailable = 14,

    /// <summary>Unrecoverable data loss or corruption.</summary>
    DataLoss = 15,

    /// <summary>No valid authentication credentials.</summary>
    Unauthenticated = 16,
}

/// <summary>Maps refusal reasons to status codes (docs/PROTOCOL.md, "Status codes").</summary>
public static class RefusalReasons
{
    /// <summary>The status code a refusal is reported with.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The reason is not a defined value.</exception>
    public static RpcStatusCode ToStatusCode(RefusalReason reason) => reason switch
    {
        RefusalReason.DigestMismatch => RpcStatusCode.DataLoss,
        RefusalReason.TooLarge => RpcStatusCode.ResourceExhausted,
        RefusalReason.Malformed or RefusalReason.LayoutMismatch or RefusalReason.NonFinite
            or RefusalReason.BadSampleCount or RefusalReason.BadMoments => RpcStatusCode.InvalidArgument,
        // Not selected is a state of the round, not a question of credentials (those get PERMISSION_DENIED).
        RefusalReason.WrongRound or RefusalReason.NotParticipant => RpcStatusCode.FailedPrecondition,
        RefusalReason.TooLate => RpcStatusCode.Aborted,
        RefusalReason.Duplicate => RpcStatusCode.AlreadyExists,
        RefusalReason.Unauthenticated => RpcStatusCode.Unauthenticated,
        _ => throw new ArgumentOutOfRangeException(nameof(reason), reason, "Unknown refusal reason."),
    };

    /// <summary>A short lower-case name for metrics labels and logs, e.g. <c>digest-mismatch</c>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The reason is not a defined value.</exception>
    public static string ToName(RefusalReason reason) => reason switch
    {
        RefusalReason.Unauthenticated => "unauthenticated",
        RefusalReason.NotParticipant => "not-participant",
        RefusalReason.WrongRound => "wrong-round",
        RefusalReason.Duplicate => "duplicate",
        RefusalReason.TooLate => "too-late",
        RefusalReason.DigestMismatch => "digest-mismatch",
        RefusalReason.TooLarge => "too-large",
        RefusalReason.Malformed => "malformed",
        RefusalReason.LayoutMismatch => "layout-mismatch",
        RefusalReason.NonFinite => "non-finite",
        RefusalReason.BadSampleCount => "bad-sample-count",
        RefusalReason.BadMoments => "bad-moments",
        _ => throw new ArgumentOutOfRangeException(nameof(reason), reason, "Unknown refusal reason."),
    };
}

/// <summary>A refused update: the reason (which fixes the status code) and a message a person understands.</summary>
/// <param name="Reason">Why it was refused.</param>
/// <param name="Message">What was wrong, naming the tensor, point or value concerned.</param>
public sealed record Refusal(RefusalReason Reason, string Message)
{
    /// <summary>The status code to report this refusal with.</summary>
    public RpcStatusCode StatusCode => RefusalReasons.ToStatusCode(Reason);

    /// <inheritdoc />
    public override string ToString() => $"{Reason} ({StatusCode}): {Message}";
}
