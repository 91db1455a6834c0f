using Grpc.Core;

namespace FedRebasin.Contracts;

/// <summary>Why a chunked model transfer was refused.</summary>
public enum TransferFailure
{
    /// <summary>Not classified.</summary>
    Unknown = 0,

    /// <summary>A chunk starts after the expected offset: a chunk is missing (or chunks were reordered).</summary>
    Gap,

    /// <summary>A chunk starts before the expected offset: a duplicated (or reordered) chunk.</summary>
    Overlap,

    /// <summary>A chunk is larger than the chunk size limit.</summary>
    ChunkTooLarge,

    /// <summary>The declared total is negative or differs between chunks.</summary>
    TotalMismatch,

    /// <summary>The declared total is above the maximum payload size.</summary>
    PayloadTooLarge,

    /// <summary>More bytes arrived than the declared total.</summary>
    Excess,

    /// <summary>The stream ended (or a chunk carrying the digest marked the end) before the declared total arrived.</summary>
    Truncated,

    /// <summary>The digest is missing or malformed.</summary>
    DigestMissing,

    /// <summary>The payload's SHA-256 differs from the declared digest.</summary>
    DigestMismatch,
}

/// <summary>A chunked transfer that cannot be reassembled; <see cref="Reason"/> says why.</summary>
public sealed class ModelTransferException : Exception
{
    public ModelTransferException()
    {
    }

    public ModelTransferException(string message)
        : base(message)
    {
    }

    public ModelTransferException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public ModelTransferException(TransferFailure reason, string message)
        : base(message)
    {
        Reason = reason;
    }

    /// <summary>The kind of failure.</summary>
    public TransferFailure Reason { get; }

    /// <summary>The gRPC status code the coordinator answers this failure with (see docs/PROTOCOL.md).</summary>
    public StatusCode StatusCode => Reason switch
    {
        TransferFailure.ChunkTooLarge or TransferFailure.PayloadTooLarge => StatusCode.ResourceExhausted,
        TransferFailure.Truncated or TransferFailure.DigestMismatch => StatusCode.DataLoss,
        _ => StatusCode.InvalidArgument,
    };
}
