using FedRebasin.Contracts;
using FedRebasin.Contracts.V1;

namespace FedRebasin.Client;

/// <summary>
/// One model download kept across attempts, so a retry after a broken stream asks only for the rest
/// (<see cref="Offset"/>). Each chunk is checked and copied into one array of the declared size as it arrives (the
/// chunks themselves are not kept); a sequence that fails a check (order, total, digest) is dropped whole and fetched
/// again from 0.
/// </summary>
internal sealed class ResumableDownload : IDisposable
{
    private ModelChunkSequence? _sequence;
    private byte[]? _payload;

    /// <summary>Bytes held so far: the offset the next attempt starts at.</summary>
    public long Offset => _sequence?.BytesReceived ?? 0;

    /// <summary>Checks a received chunk and copies it into place.</summary>
    /// <exception cref="ModelTransferException">The chunk does not continue the download; everything held is dropped.</exception>
    public void Add(ModelChunk chunk)
    {
        ArgumentNullException.ThrowIfNull(chunk);
        _sequence ??= NewSequence();
        try
        {
            _sequence.Add(chunk);
        }
        catch (ModelTransferException)
        {
            Reset();
            throw;
        }
    }

    /// <summary>Checks size and the digest against <paramref name="expectedSha256"/> and returns the payload.</summary>
    /// <exception cref="ModelTransferException">The chunks do not form the expected payload; everything held is dropped.</exception>
    public byte[] Complete(string expectedSha256)
    {
        try
        {
            (_sequence ?? NewSequence()).Complete(expectedSha256);
            return _payload!;
        }
        catch (ModelTransferException)
        {
            Reset();
            throw;
        }
    }

    public void Dispose() => Reset();

    // A payload is one array: a declared total above Array.MaxLength is refused as too large.
    private ModelChunkSequence NewSequence() => new(Open, ModelChunker.MaxAllowedChunkBytes, Array.MaxLength);

    // Unzeroed: every byte is written before Complete succeeds, and a failed download is dropped.
    private MemoryStream Open(long totalBytes) =>
        new(_payload = GC.AllocateUninitializedArray<byte>(checked((int)totalBytes)), writable: true);

    private void Reset()
    {
        _sequence?.Dispose();
        _sequence = null;
        _payload = null;
    }
}
