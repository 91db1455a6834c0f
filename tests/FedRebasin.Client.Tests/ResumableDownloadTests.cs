using FedRebasin.Contracts;

namespace FedRebasin.Client.Tests;

public sealed class ResumableDownloadTests
{
    private static byte[] Payload(int length)
    {
        var bytes = new byte[length];
        new Random(3).NextBytes(bytes);
        return bytes;
    }

    [Fact]
    public void Complete_StreamBrokenThenResumedAtOffset_ReturnsThePayload()
    {
        byte[] payload = Payload(10_000);
        var chunker = new ModelChunker(1024);
        var download = new ResumableDownload();

        // First attempt: the stream breaks after four chunks.
        foreach (var chunk in chunker.Split(payload).Take(4))
        {
            download.Add(chunk);
        }

        long resumeAt = download.Offset;
        foreach (var chunk in chunker.Split(payload, resumeAt))
        {
            download.Add(chunk);
        }

        Assert.Equal(4096, resumeAt);
        Assert.Equal(payload, download.Complete(Sha256Hex.Compute(payload)));
    }

    [Fact]
    public void Complete_WrongDigest_ThrowsAndStartsOver()
    {
        byte[] payload = Payload(3000);
        var download = new ResumableDownload();
        foreach (var chunk in new ModelChunker(1024).Split(payload))
        {
            download.Add(chunk);
        }

        Assert.Throws<ModelTransferException>(() => download.Complete(new string('0', 64)));
        Assert.Equal(0, download.Offset);
    }

    [Fact]
    public void Add_ChunkOutOfOrder_ThrowsAndStartsOver()
    {
        byte[] payload = Payload(5000);
        var chunks = new ModelChunker(1024).Split(payload).ToList();
        var download = new ResumableDownload();
        download.Add(chunks[0]);
        download.Add(chunks[1]);

        Assert.Throws<ModelTransferException>(() => download.Add(chunks[3]));
        Assert.Equal(0, download.Offset);

        // The next attempt starts from 0 and succeeds.
        foreach (var chunk in chunks)
        {
            download.Add(chunk);
        }

        Assert.Equal(payload, download.Complete(Sha256Hex.Compute(payload)));
    }
}
