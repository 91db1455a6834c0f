using FedRebasin.Contracts;
using FedRebasin.Contracts.V1;
using FedRebasin.Models;
using FedRebasin.Tensors;
using Google.Protobuf;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using static TorchSharp.torch;

namespace FedRebasin.Coordinator.Tests;

/// <summary>
/// Every refusal of an update through the real service: the status code, a message naming the problem, and no trace
/// (the update is not counted and a correct upload from the same client is still accepted afterwards).
/// </summary>
[Trait("Category", "Integration")]
public sealed class UpdateRefusalTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private sealed record Round(CoordinatorTestHost Host, TestClient[] Clients, TrainTask Task) : IAsyncDisposable
    {
        public ValueTask DisposeAsync() => Host.DisposeAsync();
    }

    private static async Task<Round> StartAsync(Dictionary<string, string?>? settings = null)
    {
        var host = await CoordinatorTestHost.StartAsync(settings);
        var clients = new[] { "a", "b", "c" }.Select(id => new TestClient(host.Client, id)).ToArray();
        foreach (var client in clients)
        {
            await client.RegisterAsync(100);
        }

        var task = await clients[0].WaitForTaskAsync(0);
        return new Round(host, clients, task.Train);
    }

    /// <summary>Uploads with full control of the header; returns the status code of the refusal (or OK).</summary>
    private static async Task<(StatusCode Code, string Detail)> UploadAsync(Round round, byte[] payload, Action<UpdateHeader>? edit = null, int chunkBytes = 1000)
    {
        var client = round.Clients[0];
        var header = new UpdateHeader
        {
            ClientId = client.ClientId,
            SessionId = client.SessionId,
            Round = round.Task.Round,
            ModelVersion = round.Task.ModelVersion,
            SampleCount = 100,
            Sha256 = Sha256Hex.Compute(payload),
            TotalBytes = payload.Length,
        };
        edit?.Invoke(header);
        using var call = round.Host.Client.SubmitUpdate(cancellationToken: Token);
        try
        {
            await call.RequestStream.WriteAsync(new UpdateMessage { Header = header }, Token);
            for (int offset = 0; offset < payload.Length; offset += chunkBytes)
            {
                await call.RequestStream.WriteAsync(new UpdateMessage { Chunk = ByteString.CopyFrom(payload, offset, Math.Min(chunkBytes, payload.Length - offset)) }, Token);
            }

            await call.RequestStream.CompleteAsync();
        }
        catch (RpcException)
        {
            // Refused on the header while chunks were still being written: the response has the real status.
        }

        try
        {
            await call.ResponseAsync;
            return (StatusCode.OK, string.Empty);
        }
        catch (RpcException e)
        {
            return (e.StatusCode, e.Status.Detail);
        }
    }

    private static async Task AssertNoTraceAsync(Round round)
    {
        Assert.Equal(0, (await round.Host.Client.GetStatusAsync(new StatusRequest(), cancellationToken: Token)).UpdatesReceived);
        byte[] good = await round.Clients[0].TrainAsync(round.Task, 1);
        Assert.Equal(StatusCode.OK, (await UploadAsync(round, good)).Code);
    }

    private static byte[] Edit(byte[] payload, Action<ClassifierModel> change)
    {
        using var model = ModelFile.FromSafeTensors(SafeTensors.Parse(payload, "test"), "test");
        using (no_grad())
        {
            change(model);
        }

        return SafeTensors.ToBytes(ModelFile.ToSafeTensors(model));
    }

    [Fact]
    public async Task NonFiniteWeight_InvalidArgument_AndTheRoundGoesOnWithoutThatClient()
    {
        await using var round = await StartAsync();
        byte[] payload = Edit(await round.Clients[0].TrainAsync(round.Task, 1), m => m.parameters().First().view(-1)[3] = float.NaN);

        var (code, detail) = await UploadAsync(round, payload);
        int receivedAfter = (await round.Host.Client.GetStatusAsync(new StatusRequest(), cancellationToken: Token)).UpdatesReceived;
        foreach (var (client, seed) in round.Clients.Skip(1).Select((c, i) => (c, i + 2)))
        {
            await client.UploadAsync(round.Task.Round, round.Task.ModelVersion, await client.TrainAsync(round.Task, seed));
        }

        // Diverged training would diverge again from the same start: the round stops waiting for a and closes with b and c.
        StatusReply status = await round.Host.Client.GetStatusAsync(new StatusRequest(), cancellationToken: Token);
        for (int i = 0; i < 50 && status.Round == 1; i++)
        {
            await Task.Delay(100, Token);
            status = await round.Host.Client.GetStatusAsync(new StatusRequest(), cancellationToken: Token);
        }

        Assert.Equal(StatusCode.InvalidArgument, code);
        Assert.Contains("non-finite", detail, StringComparison.Ordinal);
        Assert.Equal(0, receivedAfter);
        Assert.Equal(2, status.Round);
    }

    [Fact]
    public async Task EveryParticipantDiverges_RoundRetriedAtOnce_ThenTheRunStopsAsFailed()
    {
        await using var round = await StartAsync(new() { ["Coordinator:MaxRoundAttempts"] = "2", ["Coordinator:TrainingDeadline"] = "01:00:00" });
        byte[] poisoned = Edit(await round.Clients[0].TrainAsync(round.Task, 1), m => m.parameters().First().view(-1)[0] = float.PositiveInfinity);
        async Task PoisonAllAsync(TrainTask task)
        {
            foreach (var client in round.Clients)
            {
                var refused = await Assert.ThrowsAsync<RpcException>(() => client.UploadAsync(task.Round, task.ModelVersion, poisoned));
                Assert.Equal(StatusCode.InvalidArgument, refused.StatusCode);
            }
        }

        await PoisonAllAsync(round.Task);
        // Nobody is left to respond: the round is retried now, not when its hour-long deadline passes.
        var retry = await round.Clients[0].WaitForTaskAsync(0);
        Assert.Equal(TaskReply.TaskOneofCase.Train, retry.TaskCase);
        Assert.Equal(1, retry.Train.Round);
        await PoisonAllAsync(retry.Train);

        var done = await round.Clients[1].WaitForTaskAsync(0);
        var status = await round.Host.Client.GetStatusAsync(new StatusRequest(), cancellationToken: Token);
        var run = round.Host.Services.GetRequiredService<CoordinatorRun>();
        var stopped = await Assert.ThrowsAsync<InvalidOperationException>(() => run.WaitUntilDoneAsync(Token).WaitAsync(TimeSpan.FromSeconds(30), Token));

        Assert.Equal(TaskReply.TaskOneofCase.Done, done.TaskCase);
        Assert.Equal(0, done.Done.FinalRound);
        Assert.Equal(RunState.Failed, status.State);
        Assert.Contains("round 1 was abandoned 2 times", stopped.Message, StringComparison.Ordinal);
        Assert.Contains("round 1 was abandoned 2 times", run.StopReason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task OtherArchitecture_InvalidArgumentNamingTheLayout()
    {
        await using var round = await StartAsync();
        using var other = ModelRegistry.Create(ModelRegistry.DefaultSpec("mlp", 1, 8, 8, 4, [17]), seed: 1);

        var (code, detail) = await UploadAsync(round, SafeTensors.ToBytes(ModelFile.ToSafeTensors(other)));

        Assert.Equal(StatusCode.InvalidArgument, code);
        Assert.Contains("shape", detail, StringComparison.OrdinalIgnoreCase);
        await AssertNoTraceAsync(round);
    }

    [Fact]
    public async Task NotSafetensors_InvalidArgument()
    {
        await using var round = await StartAsync();
        byte[] junk = new byte[3000];
        new Random(1).NextBytes(junk);

        var (code, detail) = await UploadAsync(round, junk);

        Assert.Equal(StatusCode.InvalidArgument, code);
        Assert.Contains("safetensors", detail, StringComparison.Ordinal);
        await AssertNoTraceAsync(round);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(101)]
    public async Task SampleCountZeroOrAboveTheRegisteredOne_InvalidArgument(long samples)
    {
        await using var round = await StartAsync();
        byte[] payload = await round.Clients[0].TrainAsync(round.Task, 1);

        var (code, detail) = await UploadAsync(round, payload, h => h.SampleCount = samples);

        Assert.Equal(StatusCode.InvalidArgument, code);
        Assert.Contains("samples", detail, StringComparison.Ordinal);
        await AssertNoTraceAsync(round);
    }

    [Fact]
    public async Task MomentsOfTheWrongShape_InvalidArgument()
    {
        await using var round = await StartAsync();
        byte[] payload = await round.Clients[0].TrainAsync(round.Task, 1);
        var moments = new Contracts.V1.ChannelMoments { Point = "nowhere", Count = 10 };
        moments.Sum.Add(1.0);
        moments.SumSquares.Add(1.0);

        var (code, _) = await UploadAsync(round, payload, h => h.Moments.Add(moments));

        Assert.Equal(StatusCode.InvalidArgument, code);
        await AssertNoTraceAsync(round);
    }

    [Fact]
    public async Task PayloadAboveMaxModelBytes_ResourceExhaustedBeforeAnyChunk()
    {
        await using var round = await StartAsync(new Dictionary<string, string?> { ["Coordinator:MaxModelBytes"] = "2000" });
        byte[] payload = await round.Clients[0].TrainAsync(round.Task, 1);
        Assert.True(payload.Length > 2000);

        var (code, detail) = await UploadAsync(round, payload);

        Assert.Equal(StatusCode.ResourceExhausted, code);
        Assert.Contains("MaxModelBytes", detail, StringComparison.Ordinal);
        Assert.Equal(0, (await round.Host.Client.GetStatusAsync(new StatusRequest(), cancellationToken: Token)).UpdatesReceived);
    }

    [Fact]
    public async Task ChunkAboveMaxUploadChunkBytes_ResourceExhausted()
    {
        await using var round = await StartAsync();
        byte[] payload = await round.Clients[0].TrainAsync(round.Task, 1);

        var (code, _) = await UploadAsync(round, payload, chunkBytes: 2048);

        Assert.Equal(StatusCode.ResourceExhausted, code);
        await AssertNoTraceAsync(round);
    }

    [Fact]
    public async Task ClientNotSelected_FailedPrecondition()
    {
        // Four clients, three picked per round: the fourth may not upload.
        await using var host = await CoordinatorTestHost.StartAsync(new Dictionary<string, string?> { ["Coordinator:FractionPerRound"] = "0.5" });
        var clients = new[] { "a", "b", "c", "d" }.Select(id => new TestClient(host.Client, id)).ToArray();
        foreach (var client in clients)
        {
            await client.RegisterAsync(100);
        }

        var tasks = new List<TaskReply>();
        foreach (var client in clients)
        {
            tasks.Add(await client.GetTaskAsync(0));
        }

        int outsider = tasks.FindIndex(t => t.TaskCase == TaskReply.TaskOneofCase.Wait);
        var train = tasks.First(t => t.TaskCase == TaskReply.TaskOneofCase.Train).Train;
        byte[] payload = await clients[outsider].TrainAsync(train, 1);

        var error = await Assert.ThrowsAsync<RpcException>(() => clients[outsider].UploadAsync(train.Round, train.ModelVersion, payload));

        Assert.Equal(StatusCode.FailedPrecondition, error.StatusCode);
        Assert.Contains("not a participant", error.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task UploadAfterTheRoundClosed_AbortedAndNotCounted()
    {
        await using var round = await StartAsync(new Dictionary<string, string?> { ["Coordinator:MinResponses"] = "2", ["Coordinator:GracePeriod"] = "00:00:00" });
        foreach (var (client, seed) in round.Clients.Take(2).Select((c, i) => (c, i)))
        {
            await client.UploadAsync(round.Task.Round, round.Task.ModelVersion, await client.TrainAsync(round.Task, seed));
        }

        StatusReply status = await round.Host.Client.GetStatusAsync(new StatusRequest(), cancellationToken: Token);
        for (int i = 0; i < 50 && status.Round == 1; i++)
        {
            await Task.Delay(100, Token);
            status = await round.Host.Client.GetStatusAsync(new StatusRequest(), cancellationToken: Token);
        }

        var late = round.Clients[2];
        var error = await Assert.ThrowsAsync<RpcException>(async () => await late.UploadAsync(round.Task.Round, round.Task.ModelVersion, await late.TrainAsync(round.Task, 3)));

        Assert.Equal(2, status.Round);
        Assert.Equal(StatusCode.Aborted, error.StatusCode);
        Assert.Contains("closed", error.Status.Detail, StringComparison.Ordinal);
    }
}
