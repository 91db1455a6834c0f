using FedRebasin.Contracts.V1;

namespace FedRebasin.Contracts.Tests;

public sealed class ModelChunkSequenceTests
{
    [Fact]
    public void Add_ChunksInOrder_WritesIntoTheDestinationOpenedForTheDeclaredTotal()
    {
        byte[] payload = Payload(10_000);
        long? opened = null;
        var destination = new MemoryStream();
        using var sequence = new ModelChunkSequence(total => { opened = total; return destination; });

        foreach (var chunk in new ModelChunker(1024).Split(payload))
        {
            sequence.Add(chunk);
        }

        Assert.Equal(Sha256Hex.Compute(payload), sequence.Complete(Sha256Hex.Compute(payload)));
        Assert.Equal(10_000, opened);
        Assert.Equal(payload, destination.ToArray());
    }

    [Fact]
    public void Add_ChunkAfterAGap_RefusedAtOnce()
    {
        var chunks = new ModelChunker(1024).Split(Payload(5000)).ToList();
        using var sequence = new ModelChunkSequence(_ => new MemoryStream());
        sequence.Add(chunks[0]);

        var error = Assert.Throws<ModelTransferException>(() => sequence.Add(chunks[2]));

        Assert.Equal(TransferFailure.Gap, error.Reason);
        Assert.Equal(1024, sequence.BytesReceived);
    }

    [Fact]
    public void Add_TotalAboveTheLimit_RefusedBeforeTheDestinationIsOpened()
    {
        bool opened = false;
        using var sequence = new ModelChunkSequence(_ => { opened = true; return new MemoryStream(); }, maxTotalBytes: 4096);

        var error = Assert.Throws<ModelTransferException>(() => sequence.Add(new ModelChunker(1024).Split(Payload(5000)).First()));

        Assert.Equal(TransferFailure.PayloadTooLarge, error.Reason);
        Assert.False(opened);
    }

    [Fact]
    public void Add_ChunkDeclaringAnotherTotal_Refused()
    {
        var chunks = new ModelChunker(1024).Split(Payload(5000)).ToList();
        using var sequence = new ModelChunkSequence(_ => new MemoryStream());
        sequence.Add(chunks[0]);
        var other = chunks[1].Clone();
        other.TotalBytes = 6000;

        Assert.Equal(TransferFailure.TotalMismatch, Assert.Throws<ModelTransferException>(() => sequence.Add(other)).Reason);
    }

    [Fact]
    public void Complete_NothingReceived_Truncated()
    {
        using var sequence = new ModelChunkSequence(_ => new MemoryStream());

        Assert.Equal(TransferFailure.Truncated, Assert.Throws<ModelTransferException>(() => sequence.Complete()).Reason);
    }

    [Fact]
    public void Complete_ExpectedDigestDiffers_DigestMismatch()
    {
        using var sequence = new ModelChunkSequence(_ => new MemoryStream());
        foreach (var chunk in new ModelChunker(1024).Split(Payload(3000)))
        {
            sequence.Add(chunk);
        }

        Assert.Equal(TransferFailure.DigestMismatch, Assert.Throws<ModelTransferException>(() => sequence.Complete(new string('0', 64))).Reason);
    }

    private static byte[] Payload(int length)
    {
        var bytes = new byte[length];
        new Random(11).NextBytes(bytes);
        return bytes;
    }
}
