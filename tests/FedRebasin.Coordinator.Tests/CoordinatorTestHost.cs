using FedRebasin.Contracts;
using FedRebasin.Contracts.V1;
using FedRebasin.Models;
using FedRebasin.Tensors;
using FedRebasin.Tests.Shared;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using static TorchSharp.torch;

namespace FedRebasin.Coordinator.Tests;

/// <summary>A coordinator on real Kestrel (127.0.0.1, a free port, HTTP/2 cleartext) and a gRPC channel to it.</summary>
internal sealed class CoordinatorTestHost : IAsyncDisposable
{
    private readonly LoopbackCoordinator _coordinator;

    private CoordinatorTestHost(LoopbackCoordinator coordinator)
    {
        _coordinator = coordinator;
        Channel = GrpcChannel.ForAddress(coordinator.Address);
        Client = new Contracts.V1.Federation.FederationClient(Channel);
    }

    public GrpcChannel Channel { get; }

    public Contracts.V1.Federation.FederationClient Client { get; }

    /// <summary>The coordinator's address.</summary>
    public Uri Address => _coordinator.Address;

    /// <summary>The coordinator's services.</summary>
    public IServiceProvider Services => _coordinator.Services;

    public static async Task<CoordinatorTestHost> StartAsync(IDictionary<string, string?>? overrides = null)
    {
        // Small chunks both ways, so the tests' small models still travel in many of them.
        var settings = new Dictionary<string, string?> { ["Coordinator:DownloadChunkBytes"] = "1024", ["Coordinator:MaxUploadChunkBytes"] = "1024" };
        foreach (var (key, value) in overrides ?? new Dictionary<string, string?>())
        {
            settings[key] = value;
        }

        return new CoordinatorTestHost(await LoopbackCoordinator.StartAsync(settings));
    }

    public async ValueTask DisposeAsync()
    {
        Channel.Dispose();
        await _coordinator.DisposeAsync();
    }
}

/// <summary>A client played by the test.</summary>
internal sealed class TestClient(Contracts.V1.Federation.FederationClient client, string clientId, Metadata? headers = null)
{
    public string ClientId { get; } = clientId;

    public string SessionId { get; private set; } = string.Empty;

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    public async Task RegisterAsync(long samples = 100)
    {
        var reply = await client.RegisterAsync(new RegisterRequest { ClientId = ClientId, SampleCount = samples }, headers, cancellationToken: Token);
        SessionId = reply.SessionId;
    }

    public async Task<TaskReply> GetTaskAsync(long lastRound) =>
        await client.GetTaskAsync(new GetTaskRequest { ClientId = ClientId, SessionId = SessionId, LastRound = lastRound }, headers, cancellationToken: Token);

    /// <summary>Polls until a Train or Done task arrives.</summary>
    public async Task<TaskReply> WaitForTaskAsync(long lastRound)
    {
        for (int i = 0; i < 30; i++)
        {
            var task = await GetTaskAsync(lastRound);
            if (task.TaskCase != TaskReply.TaskOneofCase.Wait)
            {
                return task;
            }
        }

        throw new TimeoutException($"{ClientId} got no task.");
    }

    public async Task<byte[]> DownloadAsync(string version, string expectedSha)
    {
        using var call = client.DownloadModel(new DownloadModelRequest { ClientId = ClientId, SessionId = SessionId, ModelVersion = version }, headers, cancellationToken: Token);
        var chunks = new List<ModelChunk>();
        await foreach (var chunk in call.ResponseStream.ReadAllAsync(Token))
        {
            chunks.Add(chunk);
        }

        return new ModelChunker().Reassemble(chunks, expectedSha);
    }

    /// <summary>Downloads, perturbs slightly and returns the trained payload.</summary>
    public async Task<byte[]> TrainAsync(TrainTask task, int seed)
    {
        byte[] global = await DownloadAsync(task.ModelVersion, task.ModelSha256);
        return Perturb(global, seed);
    }

    public static byte[] Perturb(byte[] payload, int seed)
    {
        using var model = ModelFile.FromSafeTensors(SafeTensors.Parse(payload, "download"), "download");
        using (no_grad())
        {
            var generator = new TorchSharp.torch.Generator((ulong)seed);
            foreach (var parameter in model.parameters())
            {
                using var noise = randn(parameter.shape, generator: generator) * 0.01;
                parameter.add_(noise);
            }
        }

        return SafeTensors.ToBytes(ModelFile.ToSafeTensors(model));
    }

    /// <summary>The channel moments of <paramref name="payload"/>'s model at every repair point on 64 seeded random inputs (what a client sends for repair).</summary>
    public static ChannelMoments[] Moments(byte[] payload, int seed)
    {
        using var scope = NewDisposeScope();
        using var model = ModelFile.FromSafeTensors(SafeTensors.Parse(payload, "trained"), "trained");
        var shape = new long[] { 64, model.Spec.InputChannels, model.Spec.InputHeight, model.Spec.InputWidth };
        var inputs = randn(shape, generator: new TorchSharp.torch.Generator((ulong)seed));
        var moments = Models.Permutations.MomentCollector.Collect(model, [inputs]);
        return [.. model.RepairPoints.Select((point, i) =>
        {
            var proto = new ChannelMoments { Point = point.Name, Count = (long)moments[i].Count };
            proto.Sum.AddRange(moments[i].Sum);
            proto.SumSquares.AddRange(moments[i].SumSquares);
            return proto;
        })];
    }

    /// <summary>
    /// Uploads <paramref name="payload"/> (with <paramref name="moments"/> for repair, when given); <paramref name="sendBytes"/>
    /// limits what is sent, <paramref name="sha"/> overrides the digest.
    /// </summary>
    public async Task<SubmitReply> UploadAsync(long round, string version, byte[] payload, string? sha = null, int? sendBytes = null, int chunkBytes = 1000, IEnumerable<ChannelMoments>? moments = null)
    {
        using var call = client.SubmitUpdate(headers, cancellationToken: Token);
        var header = new UpdateHeader
        {
            ClientId = ClientId,
            SessionId = SessionId,
            Round = round,
            ModelVersion = version,
            SampleCount = 100,
            Sha256 = sha ?? Sha256Hex.Compute(payload),
            TotalBytes = payload.Length,
        };
        header.Moments.AddRange(moments ?? []);
        await call.RequestStream.WriteAsync(new UpdateMessage { Header = header }, Token);
        int limit = sendBytes ?? payload.Length;
        try
        {
            for (int offset = 0; offset < limit; offset += chunkBytes)
            {
                int length = Math.Min(chunkBytes, limit - offset);
                await call.RequestStream.WriteAsync(new UpdateMessage { Chunk = ByteString.CopyFrom(payload, offset, length) }, Token);
            }

            await call.RequestStream.CompleteAsync();
        }
        catch (RpcException)
        {
            // The server may refuse on the header alone (duplicate, wrong round) and end the call while chunks are
            // still being written; the write then fails with a generic status. The reply carries the real one.
        }

        return await call.ResponseAsync;
    }
}
