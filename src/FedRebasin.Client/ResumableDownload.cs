using FedRebasin.Contracts;
using FedRebasin.Contracts.V1;

namespace FedRebasin.Client;

/// <summary>
/// The chunks of one model download kept across attempts, so a retry after a broken stream asks only for the rest
/// (<see cref="Offset"/>). A payload that fails its checks (digest, offsets) is dropped whole and fetched again from 0.
/// </summary>
internal sealed class ResumableDownload
{
    private readonly List<ModelChunk> _chunks = [];

    /// <summary>Bytes held so far: the offset the next attempt starts at.</summary>
    public long Offset { get; private set; }

    /// <summary>Keeps a received chunk.</summary>
    public void Add(ModelChunk chunk)
    {
        ArgumentNullException.ThrowIfNull(chunk);
        _chunks.Add(chunk);
        Offset += chunk.Data.Length;
    }

    /// <summary>Checks offsets, size and the digest against <paramref name="expectedSha256"/> and returns the payload.</summary>
    /// <exception cref="ModelTransferException">The chunks do not form the expected payload; everything held is dropped.</exception>
    public byte[] Complete(string expectedSha256)
    {
        try
        {
            return new ModelChunker(ModelChunker.MaxAllowedChunkBytes).Reassemble(_chunks, expectedSha256);
        }
        catch (ModelTransferException)
        {
            _chunks.Clear();
            Offset = 0;
            throw;
        }
    }
}
