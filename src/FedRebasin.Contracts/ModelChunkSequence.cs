using System.Globalization;

namespace FedRebasin.Contracts;

/// <summary>
/// Checks a <see cref="V1.ModelChunk"/> stream as it arrives and writes each chunk where it belongs, so a download
/// never holds its chunks twice: contiguous and in order, one declared total, the digest on the last chunk only, and
/// at the end every byte present and the SHA-256 right (docs/PROTOCOL.md). The destination is opened once the first
/// chunk declares the size, so a caller can allocate exactly that much. Nothing is trusted until
/// <see cref="Complete"/> returns; after a failure the caller discards the destination.
/// </summary>
public sealed class ModelChunkSequence : IDisposable
{
    private readonly Func<long, Stream> _openDestination;
    private readonly int _maxChunkBytes;
    private readonly long _maxTotalBytes;
    private ChunkReassembler? _reassembler;
    private string? _declaredDigest;

    /// <param name="openDestination">Called once, with the declared total, before the first chunk is written.</param>
    /// <param name="maxChunkBytes">Largest chunk accepted.</param>
    /// <param name="maxTotalBytes">Largest payload accepted (checked before the destination is opened).</param>
    public ModelChunkSequence(Func<long, Stream> openDestination, int maxChunkBytes = ModelChunker.MaxAllowedChunkBytes, long maxTotalBytes = long.MaxValue)
    {
        ArgumentNullException.ThrowIfNull(openDestination);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxChunkBytes);
        _openDestination = openDestination;
        _maxChunkBytes = maxChunkBytes;
        _maxTotalBytes = maxTotalBytes;
    }

    /// <summary>Payload bytes written so far: the offset a resumed stream must start at.</summary>
    public long BytesReceived => _reassembler?.BytesReceived ?? 0;

    /// <summary>Checks the next chunk against the ones before it and writes its bytes.</summary>
    /// <exception cref="ModelTransferException">The chunk does not continue the sequence.</exception>
    public void Add(V1.ModelChunk chunk)
    {
        ArgumentNullException.ThrowIfNull(chunk);
        if (_reassembler is null)
        {
            ChunkReassembler.CheckTotal(chunk.TotalBytes, _maxTotalBytes);
            _reassembler = new ChunkReassembler(_openDestination(chunk.TotalBytes), chunk.TotalBytes, _maxChunkBytes, _maxTotalBytes);
        }
        else if (chunk.TotalBytes != _reassembler.TotalBytes)
        {
            throw Fail(TransferFailure.TotalMismatch, $"Chunk at offset {chunk.Offset} declares {chunk.TotalBytes} bytes in total, earlier chunks {_reassembler.TotalBytes}.");
        }

        if (_declaredDigest is not null)
        {
            throw Fail(TransferFailure.Excess, $"Chunk at offset {chunk.Offset} follows the last chunk.");
        }

        _reassembler.Append(chunk.Data.Span, chunk.Offset);
        if (chunk.Sha256.Length > 0)
        {
            if (!_reassembler.IsFull)
            {
                throw Fail(TransferFailure.Truncated, $"Chunk at offset {chunk.Offset} carries the digest (marks the end) but only {_reassembler.BytesReceived} of {_reassembler.TotalBytes} bytes arrived.");
            }

            _declaredDigest = chunk.Sha256;
        }
    }

    /// <summary>
    /// Checks that the sequence is complete and its digest right; <paramref name="expectedSha256"/>, when given (e.g.
    /// the task's model_sha256), must match too. Returns the digest (lowercase hex).
    /// </summary>
    /// <exception cref="ModelTransferException">Something is missing or the digest is wrong.</exception>
    public string Complete(string? expectedSha256 = null)
    {
        if (_reassembler is null)
        {
            throw Fail(TransferFailure.Truncated, $"No chunks were received.");
        }

        if (_reassembler.IsFull && _declaredDigest is null)
        {
            throw Fail(TransferFailure.DigestMissing, $"The last chunk carries no SHA-256 digest.");
        }

        var actual = _reassembler.Complete(_declaredDigest);
        if (expectedSha256 is not null && !Sha256Hex.Matches(expectedSha256, actual))
        {
            throw Fail(TransferFailure.DigestMismatch, $"SHA-256 mismatch: expected {expectedSha256}, received payload hashes to {actual}.");
        }

        return actual;
    }

    public void Dispose()
    {
        _reassembler?.Dispose();
    }

    private static ModelTransferException Fail(TransferFailure reason, FormattableString message) =>
        new(reason, message.ToString(CultureInfo.InvariantCulture));
}
