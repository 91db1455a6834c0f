using System.Security.Cryptography;

namespace FedRebasin.Contracts;

/// <summary>
/// Receives the chunks of one payload in order, writes them to a destination stream and checks offsets,
/// sizes, the declared total and the SHA-256 digest. Used for both directions: ModelChunk downloads
/// (explicit offsets) and SubmitUpdate uploads (raw chunks, offset implied).
/// Nothing is trusted until <see cref="Complete"/> returns: on any failure the caller discards the destination.
/// </summary>
public sealed class ChunkReassembler : IDisposable
{
    private readonly Stream _destination;
    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private bool _completed;

    /// <param name="destination">Where the payload is written (a preallocated buffer or a temporary file).</param>
    /// <param name="totalBytes">Declared size of the whole payload.</param>
    /// <param name="maxChunkBytes">Largest chunk accepted.</param>
    /// <param name="maxTotalBytes">Largest payload accepted.</param>
    public ChunkReassembler(
        Stream destination,
        long totalBytes,
        int maxChunkBytes = ModelChunker.DefaultMaxUploadChunkBytes,
        long maxTotalBytes = long.MaxValue)
    {
        ArgumentNullException.ThrowIfNull(destination);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxChunkBytes);
        CheckTotal(totalBytes, maxTotalBytes);
        _destination = destination;
        TotalBytes = totalBytes;
        MaxChunkBytes = maxChunkBytes;
    }

    /// <summary>Declared size of the whole payload.</summary>
    public long TotalBytes { get; }

    /// <summary>Refuses a declared total that is negative or above <paramref name="maxTotalBytes"/> (before anything is allocated for it).</summary>
    /// <exception cref="ModelTransferException">The total is refused.</exception>
    public static void CheckTotal(long totalBytes, long maxTotalBytes)
    {
        if (totalBytes < 0)
        {
            throw Fail(TransferFailure.TotalMismatch, $"Declared total {totalBytes} bytes is negative.");
        }

        if (totalBytes > maxTotalBytes)
        {
            throw Fail(TransferFailure.PayloadTooLarge, $"Declared total {totalBytes} bytes exceeds the limit of {maxTotalBytes} bytes.");
        }
    }

    /// <summary>Largest chunk accepted.</summary>
    public int MaxChunkBytes { get; }

    /// <summary>Bytes received so far (the offset the next chunk must start at).</summary>
    public long BytesReceived { get; private set; }

    /// <summary>Whether all declared bytes have arrived.</summary>
    public bool IsFull => BytesReceived == TotalBytes;

    /// <summary>Appends the next chunk; its offset is implied (upload stream).</summary>
    public void Append(ReadOnlySpan<byte> data)
    {
        Append(data, BytesReceived);
    }

    /// <summary>Appends a chunk that declares its <paramref name="offset"/> (download stream).</summary>
    public void Append(ReadOnlySpan<byte> data, long offset)
    {
        ObjectDisposedException.ThrowIf(_completed, this);
        if (offset > BytesReceived)
        {
            throw Fail(TransferFailure.Gap, $"Chunk at offset {offset} but {BytesReceived} bytes received: a chunk is missing or out of order.");
        }

        if (offset < BytesReceived)
        {
            throw Fail(TransferFailure.Overlap, $"Chunk at offset {offset} but {BytesReceived} bytes received: a chunk is duplicated or out of order.");
        }

        if (data.Length > MaxChunkBytes)
        {
            throw Fail(TransferFailure.ChunkTooLarge, $"Chunk of {data.Length} bytes exceeds the chunk limit of {MaxChunkBytes} bytes.");
        }

        if (data.Length > TotalBytes - BytesReceived)
        {
            throw Fail(TransferFailure.Excess, $"Chunk of {data.Length} bytes at offset {offset} runs past the declared total of {TotalBytes} bytes.");
        }

        if (data.IsEmpty && !IsFull)
        {
            throw Fail(TransferFailure.Gap, $"Empty chunk at offset {offset} before the declared total of {TotalBytes} bytes.");
        }

        _destination.Write(data);
        _hash.AppendData(data);
        BytesReceived += data.Length;
    }

    /// <summary>
    /// Checks that every declared byte arrived and that the payload's digest equals <paramref name="expectedSha256"/>;
    /// returns the digest (lowercase hex).
    /// </summary>
    public string Complete(string? expectedSha256)
    {
        ObjectDisposedException.ThrowIf(_completed, this);
        _completed = true;
        if (!IsFull)
        {
            throw Fail(TransferFailure.Truncated, $"Transfer ended after {BytesReceived} of {TotalBytes} bytes.");
        }

        if (!Sha256Hex.IsValid(expectedSha256))
        {
            throw Fail(TransferFailure.DigestMissing, $"The SHA-256 digest is missing or malformed (expected 64 hex characters).");
        }

        var actual = Convert.ToHexStringLower(_hash.GetHashAndReset());
        if (!Sha256Hex.Matches(expectedSha256, actual))
        {
            throw Fail(TransferFailure.DigestMismatch, $"SHA-256 mismatch: declared {expectedSha256}, received payload hashes to {actual}.");
        }

        return actual;
    }

    public void Dispose()
    {
        _completed = true;
        _hash.Dispose();
    }

    private static ModelTransferException Fail(TransferFailure reason, FormattableString message)
    {
        return new ModelTransferException(reason, FormattableString.Invariant(message));
    }
}
