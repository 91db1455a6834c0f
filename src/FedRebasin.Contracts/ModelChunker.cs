using System.Globalization;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using FedRebasin.Contracts.V1;
using Google.Protobuf;

namespace FedRebasin.Contracts;

/// <summary>
/// Splits a model payload into <see cref="ModelChunk"/> messages of at most <see cref="MaxChunkBytes"/> bytes,
/// and reassembles them with every check of the protocol (order, offsets, total, SHA-256).
/// Rules (docs/PROTOCOL.md): chunks are contiguous and in order; every chunk carries <c>total_bytes</c>;
/// only the last chunk carries <c>sha256</c>; an empty payload travels as one empty chunk.
/// </summary>
public sealed class ModelChunker
{
    /// <summary>Default chunk size: 1 MiB.</summary>
    public const int DefaultChunkBytes = 1024 * 1024;

    /// <summary>
    /// Largest chunk size allowed: 3 MiB, leaving room for the message framing under the 4 MB
    /// (4,194,304 bytes) default gRPC receive limit.
    /// </summary>
    public const int MaxAllowedChunkBytes = 3 * 1024 * 1024;

    /// <summary>The default gRPC message-size limit (server and client receive), 4 MB.</summary>
    public const int GrpcDefaultMaxMessageBytes = 4 * 1024 * 1024;

    public ModelChunker(int maxChunkBytes = DefaultChunkBytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxChunkBytes);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(maxChunkBytes, MaxAllowedChunkBytes);
        MaxChunkBytes = maxChunkBytes;
    }

    /// <summary>Largest number of payload bytes in one chunk.</summary>
    public int MaxChunkBytes { get; }

    /// <summary>
    /// Splits <paramref name="payload"/> into chunks, starting at <paramref name="startOffset"/> (to resume a
    /// download). The chunks wrap <paramref name="payload"/> without copying: it must not change while they are in use.
    /// </summary>
    public IEnumerable<ModelChunk> Split(ReadOnlyMemory<byte> payload, long startOffset = 0) =>
        Split(payload, Sha256Hex.Compute(payload.Span), startOffset);

    /// <summary>
    /// Like <see cref="Split(ReadOnlyMemory{byte}, long)"/> with the payload's digest already known (a server serving
    /// the same model many times hashes it once, not per download).
    /// </summary>
    public IEnumerable<ModelChunk> Split(ReadOnlyMemory<byte> payload, string sha256, long startOffset = 0)
    {
        ArgumentException.ThrowIfNullOrEmpty(sha256);
        ArgumentOutOfRangeException.ThrowIfNegative(startOffset);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(startOffset, payload.Length);
        return SplitCore(payload, (int)startOffset, sha256);
    }

    /// <summary>
    /// Reads <paramref name="totalBytes"/> bytes from <paramref name="content"/> and yields them as chunks
    /// (each a fresh buffer). The digest is computed while reading and set on the last chunk. Throws
    /// <see cref="ModelTransferException"/> (<see cref="TransferFailure.Truncated"/>) when the stream ends early.
    /// </summary>
    public async IAsyncEnumerable<ModelChunk> SplitAsync(
        Stream content,
        long totalBytes,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(content);
        ArgumentOutOfRangeException.ThrowIfNegative(totalBytes);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        long offset = 0;
        do
        {
            var size = (int)Math.Min(MaxChunkBytes, totalBytes - offset);
            var buffer = new byte[size];
            var read = await content.ReadAtLeastAsync(buffer, size, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
            if (read < size)
            {
                throw new ModelTransferException(
                    TransferFailure.Truncated,
                    string.Create(CultureInfo.InvariantCulture, $"Stream ended after {offset + read} of {totalBytes} bytes."));
            }

            hash.AppendData(buffer);
            var chunk = new ModelChunk
            {
                Data = UnsafeByteOperations.UnsafeWrap(buffer),
                Offset = offset,
                TotalBytes = totalBytes,
            };
            offset += size;
            if (offset == totalBytes)
            {
                chunk.Sha256 = Convert.ToHexStringLower(hash.GetHashAndReset());
            }

            yield return chunk;
        }
        while (offset < totalBytes);
    }

    /// <summary>
    /// Reassembles a complete chunk sequence (starting at offset 0) into one array, checking order, offsets,
    /// sizes, total and digest. <paramref name="expectedSha256"/>, when given (e.g. the task's model_sha256),
    /// must also match. Throws <see cref="ModelTransferException"/> on any mismatch.
    /// </summary>
    public byte[] Reassemble(IEnumerable<ModelChunk> chunks, string? expectedSha256 = null)
    {
        ArgumentNullException.ThrowIfNull(chunks);
        using var buffer = new MemoryStream();
        ReassembleInto(chunks, buffer, expectedSha256);
        return buffer.ToArray();
    }

    /// <summary>
    /// Like <see cref="Reassemble"/> but writes into <paramref name="destination"/>; returns the verified digest.
    /// On failure the destination holds a partial payload that the caller must discard.
    /// </summary>
    public string ReassembleInto(IEnumerable<ModelChunk> chunks, Stream destination, string? expectedSha256 = null)
    {
        ArgumentNullException.ThrowIfNull(chunks);
        ArgumentNullException.ThrowIfNull(destination);
        ChunkReassembler? reassembler = null;
        string? declaredDigest = null;
        try
        {
            foreach (var chunk in chunks)
            {
                if (reassembler is null)
                {
                    reassembler = new ChunkReassembler(destination, chunk.TotalBytes, MaxChunkBytes);
                }
                else if (chunk.TotalBytes != reassembler.TotalBytes)
                {
                    throw new ModelTransferException(
                        TransferFailure.TotalMismatch,
                        string.Create(CultureInfo.InvariantCulture, $"Chunk at offset {chunk.Offset} declares {chunk.TotalBytes} bytes in total, earlier chunks {reassembler.TotalBytes}."));
                }

                if (declaredDigest is not null)
                {
                    throw new ModelTransferException(
                        TransferFailure.Excess,
                        string.Create(CultureInfo.InvariantCulture, $"Chunk at offset {chunk.Offset} follows the last chunk."));
                }

                reassembler.Append(chunk.Data.Span, chunk.Offset);
                if (chunk.Sha256.Length > 0)
                {
                    if (!reassembler.IsFull)
                    {
                        throw new ModelTransferException(
                            TransferFailure.Truncated,
                            string.Create(CultureInfo.InvariantCulture, $"Chunk at offset {chunk.Offset} carries the digest (marks the end) but only {reassembler.BytesReceived} of {reassembler.TotalBytes} bytes arrived."));
                    }

                    declaredDigest = chunk.Sha256;
                }
            }

            if (reassembler is null)
            {
                throw new ModelTransferException(TransferFailure.Truncated, "No chunks were received.");
            }

            if (reassembler.IsFull && declaredDigest is null)
            {
                throw new ModelTransferException(TransferFailure.DigestMissing, "The last chunk carries no SHA-256 digest.");
            }

            var actual = reassembler.Complete(declaredDigest);
            if (expectedSha256 is not null && !Sha256Hex.Matches(expectedSha256, actual))
            {
                throw new ModelTransferException(
                    TransferFailure.DigestMismatch,
                    $"SHA-256 mismatch: expected {expectedSha256}, received payload hashes to {actual}.");
            }

            return actual;
        }
        finally
        {
            reassembler?.Dispose();
        }
    }

    private IEnumerable<ModelChunk> SplitCore(ReadOnlyMemory<byte> payload, int startOffset, string digest)
    {
        var offset = startOffset;
        do
        {
            var size = Math.Min(MaxChunkBytes, payload.Length - offset);
            var chunk = new ModelChunk
            {
                Data = UnsafeByteOperations.UnsafeWrap(payload.Slice(offset, size)),
                Offset = offset,
                TotalBytes = payload.Length,
            };
            offset += size;
            if (offset == payload.Length)
            {
                chunk.Sha256 = digest;
            }

            yield return chunk;
        }
        while (offset < payload.Length);
    }
}
