using FedRebasin.Contracts.V1;
using Google.Protobuf;

namespace FedRebasin.Contracts.Tests;

public sealed class ModelChunkerTests
{
    private const int Chunk = ModelChunker.DefaultDownloadChunkBytes;

    public static TheoryData<int> Sizes => new()
    {
        0,
        1,
        Chunk - 1,
        Chunk,
        Chunk + 1,
        5_300_000,
    };

    [Theory]
    [MemberData(nameof(Sizes))]
    public void Split_ThenReassemble_RoundTrips(int size)
    {
        var payload = Payload(size);
        var chunker = new ModelChunker();

        var chunks = chunker.Split(payload).ToList();
        var result = chunker.Reassemble(chunks, Sha256Hex.Compute(payload));

        Assert.Equal(payload, result);
        Assert.Equal(Math.Max(1, (size + Chunk - 1) / Chunk), chunks.Count);
    }

    [Theory]
    [MemberData(nameof(Sizes))]
    public void Split_AnySize_ChunksWithinLimitsAndDigestOnLastOnly(int size)
    {
        var payload = Payload(size);

        var chunks = new ModelChunker().Split(payload).ToList();

        long expectedOffset = 0;
        foreach (var chunk in chunks)
        {
            Assert.True(chunk.Data.Length <= Chunk);
            Assert.True(chunk.CalculateSize() < ModelChunker.GrpcDefaultMaxMessageBytes);
            Assert.Equal(expectedOffset, chunk.Offset);
            Assert.Equal(size, chunk.TotalBytes);
            expectedOffset += chunk.Data.Length;
        }

        Assert.All(chunks.SkipLast(1), c => Assert.Empty(c.Sha256));
        Assert.Equal(Sha256Hex.Compute(payload), chunks[^1].Sha256);
    }

    [Theory]
    [MemberData(nameof(Sizes))]
    public async Task SplitAsync_Stream_ProducesSameChunksAsSplit(int size)
    {
        var payload = Payload(size);
        var chunker = new ModelChunker();
        using var stream = new MemoryStream(payload);

        var chunks = new List<ModelChunk>();
        await foreach (var chunk in chunker.SplitAsync(stream, size, TestContext.Current.CancellationToken))
        {
            chunks.Add(chunk);
        }

        Assert.Equal(chunker.Split(payload), chunks);
    }

    [Fact]
    public async Task SplitAsync_StreamShorterThanTotal_ThrowsTruncated()
    {
        using var stream = new MemoryStream(Payload(10));
        var chunker = new ModelChunker(4);

        var error = await Assert.ThrowsAsync<ModelTransferException>(async () =>
        {
            await foreach (var chunk in chunker.SplitAsync(stream, 11, TestContext.Current.CancellationToken))
            {
                Assert.NotNull(chunk);
            }
        });

        Assert.Equal(TransferFailure.Truncated, error.Reason);
    }

    [Fact]
    public void Split_CustomChunkSize_RespectsLimit()
    {
        var chunks = new ModelChunker(1000).Split(Payload(2500)).ToList();

        Assert.Equal([1000, 1000, 500], chunks.Select(c => c.Data.Length));
        Assert.Equal([0L, 1000L, 2000L], chunks.Select(c => c.Offset));
    }

    [Fact]
    public void Split_ResumeFromOffset_StartsThere()
    {
        var payload = Payload(2500);

        var chunks = new ModelChunker(1000).Split(payload, 1500).ToList();

        Assert.Equal([1500L], chunks.Select(c => c.Offset));
        Assert.Equal(1000, chunks[0].Data.Length);
        Assert.Equal(Sha256Hex.Compute(payload), chunks[^1].Sha256);
    }

    [Fact]
    public void Split_ResumeAtEnd_SendsEmptyLastChunkWithDigest()
    {
        var payload = Payload(2500);

        var chunk = Assert.Single(new ModelChunker(1000).Split(payload, 2500));

        Assert.True(chunk.Data.IsEmpty);
        Assert.Equal(Sha256Hex.Compute(payload), chunk.Sha256);
    }

    [Fact]
    public void Constructor_ChunkAboveAllowed_Throws()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new ModelChunker(ModelChunker.MaxAllowedChunkBytes + 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ModelChunker(0));
    }

    [Fact]
    public void Reassemble_MissingChunk_ThrowsGap()
    {
        var chunks = ThreeChunks();
        chunks.RemoveAt(1);

        AssertFails(TransferFailure.Gap, chunks);
    }

    [Fact]
    public void Reassemble_DuplicatedChunk_ThrowsOverlap()
    {
        var chunks = ThreeChunks();
        chunks.Insert(1, chunks[0]);

        AssertFails(TransferFailure.Overlap, chunks);
    }

    [Fact]
    public void Reassemble_ReorderedChunks_Throws()
    {
        var chunks = ThreeChunks();
        (chunks[0], chunks[1]) = (chunks[1], chunks[0]);

        AssertFails(TransferFailure.Gap, chunks);
    }

    [Fact]
    public void Reassemble_LastChunkMissing_ThrowsTruncated()
    {
        var chunks = ThreeChunks();
        chunks.RemoveAt(2);

        AssertFails(TransferFailure.Truncated, chunks);
    }

    [Fact]
    public void Reassemble_NoChunks_ThrowsTruncated()
    {
        AssertFails(TransferFailure.Truncated, []);
    }

    [Fact]
    public void Reassemble_TotalDiffersBetweenChunks_ThrowsTotalMismatch()
    {
        var chunks = ThreeChunks();
        chunks[1] = new ModelChunk(chunks[1]) { TotalBytes = 9999 };

        AssertFails(TransferFailure.TotalMismatch, chunks);
    }

    [Fact]
    public void Reassemble_WrongTotalOnAllChunks_Throws()
    {
        var chunks = ThreeChunks().Select(c => new ModelChunk(c) { TotalBytes = c.TotalBytes + 1 }).ToList();

        AssertFails(TransferFailure.Truncated, chunks);
    }

    [Fact]
    public void Reassemble_TotalSmallerThanData_ThrowsExcess()
    {
        var chunks = ThreeChunks().Select(c => new ModelChunk(c) { TotalBytes = c.TotalBytes - 1 }).ToList();

        AssertFails(TransferFailure.Excess, chunks);
    }

    [Fact]
    public void Reassemble_WrongDigest_ThrowsDigestMismatch()
    {
        var chunks = ThreeChunks();
        chunks[2] = new ModelChunk(chunks[2]) { Sha256 = Sha256Hex.Compute([1, 2, 3]) };

        var error = AssertFails(TransferFailure.DigestMismatch, chunks);

        Assert.Equal(Grpc.Core.StatusCode.DataLoss, error.StatusCode);
    }

    [Fact]
    public void Reassemble_CorruptedByte_ThrowsDigestMismatch()
    {
        var chunks = ThreeChunks();
        var bytes = chunks[1].Data.ToByteArray();
        bytes[0] ^= 0xFF;
        chunks[1] = new ModelChunk(chunks[1]) { Data = ByteString.CopyFrom(bytes) };

        AssertFails(TransferFailure.DigestMismatch, chunks);
    }

    [Fact]
    public void Reassemble_ExpectedDigestDiffers_ThrowsDigestMismatch()
    {
        var error = Assert.Throws<ModelTransferException>(
            () => new ModelChunker(1000).Reassemble(ThreeChunks(), Sha256Hex.Compute([9])));

        Assert.Equal(TransferFailure.DigestMismatch, error.Reason);
    }

    [Fact]
    public void Reassemble_DigestMissingOnLastChunk_ThrowsDigestMissing()
    {
        var chunks = ThreeChunks();
        chunks[2] = new ModelChunk(chunks[2]) { Sha256 = string.Empty };

        AssertFails(TransferFailure.DigestMissing, chunks);
    }

    [Fact]
    public void Reassemble_DigestOnEarlyChunk_ThrowsTruncated()
    {
        var chunks = ThreeChunks();
        chunks[0] = new ModelChunk(chunks[0]) { Sha256 = chunks[2].Sha256 };

        AssertFails(TransferFailure.Truncated, chunks);
    }

    [Fact]
    public void Reassemble_ChunkLargerThanLimit_ThrowsChunkTooLarge()
    {
        var chunks = new ModelChunker(2000).Split(Payload(2500)).ToList();

        var error = Assert.Throws<ModelTransferException>(() => new ModelChunker(1000).Reassemble(chunks));

        Assert.Equal(TransferFailure.ChunkTooLarge, error.Reason);
        Assert.Equal(Grpc.Core.StatusCode.ResourceExhausted, error.StatusCode);
    }

    [Fact]
    public void ChunkReassembler_UploadStreamWithImpliedOffsets_Completes()
    {
        var payload = Payload(2500);
        using var destination = new MemoryStream();
        using var reassembler = new ChunkReassembler(destination, payload.Length, 1000);

        foreach (var piece in payload.Chunk(1000))
        {
            reassembler.Append(piece);
        }

        Assert.Equal(Sha256Hex.Compute(payload), reassembler.Complete(Sha256Hex.Compute(payload).ToUpperInvariant()));
        Assert.Equal(payload, destination.ToArray());
    }

    [Fact]
    public void ChunkReassembler_TotalAboveLimit_ThrowsPayloadTooLarge()
    {
        using var destination = new MemoryStream();

        var error = Assert.Throws<ModelTransferException>(() => new ChunkReassembler(destination, 101, 10, maxTotalBytes: 100));

        Assert.Equal(TransferFailure.PayloadTooLarge, error.Reason);
    }

    [Fact]
    public void ModelChunk_FullOneMiBChunkWithDigest_SerializesUnderGrpcDefault()
    {
        var chunk = new ModelChunk
        {
            Data = ByteString.CopyFrom(Payload(ModelChunker.DefaultMaxUploadChunkBytes)),
            Offset = long.MaxValue,
            TotalBytes = long.MaxValue,
            Sha256 = new string('f', Sha256Hex.Length),
        };

        var size = chunk.ToByteArray().Length;

        Assert.True(size < ModelChunker.GrpcDefaultMaxMessageBytes);
        Assert.True(size < ModelChunker.DefaultMaxUploadChunkBytes + 128);
    }

    [Fact]
    public void UpdateMessage_LargestAllowedChunk_SerializesUnderGrpcDefault()
    {
        var message = new UpdateMessage { Chunk = ByteString.CopyFrom(Payload(ModelChunker.MaxAllowedChunkBytes)) };

        Assert.True(message.CalculateSize() < ModelChunker.GrpcDefaultMaxMessageBytes);
    }

    private static List<ModelChunk> ThreeChunks()
    {
        return new ModelChunker(1000).Split(Payload(2500)).ToList();
    }

    private static ModelTransferException AssertFails(TransferFailure expected, List<ModelChunk> chunks)
    {
        var error = Assert.Throws<ModelTransferException>(() => new ModelChunker(1000).Reassemble(chunks));
        Assert.Equal(expected, error.Reason);
        Assert.False(string.IsNullOrWhiteSpace(error.Message));
        return error;
    }

    private static byte[] Payload(int size)
    {
        var bytes = new byte[size];
        new Random(size).NextBytes(bytes);
        return bytes;
    }
}
