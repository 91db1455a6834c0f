using System.Diagnostics.Metrics;
using FedRebasin.Contracts;
using FedRebasin.Contracts.V1;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Reflection.V1Alpha;

namespace FedRebasin.Coordinator.Tests;

/// <summary>Upload slots, the request-rate limit, dropping silent clients, refusal counters and server reflection, on real Kestrel.</summary>
[Trait("Category", "Integration")]
public sealed class CoordinatorLimitsTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private static async Task<(TestClient[] Clients, TrainTask Task)> StartRoundAsync(CoordinatorTestHost host)
    {
        var clients = new[] { "a", "b", "c" }.Select(id => new TestClient(host.Client, id)).ToArray();
        foreach (var client in clients)
        {
            await client.RegisterAsync();
        }

        var task = await clients[0].WaitForTaskAsync(0);
        Assert.Equal(TaskReply.TaskOneofCase.Train, task.TaskCase);
        return (clients, task.Train);
    }

    [Fact]
    public async Task SubmitUpdate_AllSlotsBusy_ResourceExhaustedUntilOneFrees()
    {
        await using var host = await CoordinatorTestHost.StartAsync(new Dictionary<string, string?>
        {
            ["Coordinator:MaxConcurrentUploads"] = "1",
            ["Coordinator:UploadSlotTimeout"] = "00:00:00.300",
        });
        var (clients, train) = await StartRoundAsync(host);
        byte[] first = await clients[0].TrainAsync(train, 1);
        byte[] second = await clients[1].TrainAsync(train, 2);

        // Client a sends its header and half of its payload, then holds the stream open: it owns the only slot.
        using var held = host.Client.SubmitUpdate(cancellationToken: Token);
        await held.RequestStream.WriteAsync(new UpdateMessage { Header = Header(clients[0], train, first) }, Token);
        int half = first.Length / 2;
        await WriteChunksAsync(held.RequestStream, first, 0, half);
        await Task.Delay(200, Token);
        var busy = await Assert.ThrowsAsync<RpcException>(() => clients[1].UploadAsync(train.Round, train.ModelVersion, second));

        await WriteChunksAsync(held.RequestStream, first, half, first.Length);
        await held.RequestStream.CompleteAsync();
        var landed = await held.ResponseAsync;
        var retried = await clients[1].UploadAsync(train.Round, train.ModelVersion, second);

        Assert.Equal(StatusCode.ResourceExhausted, busy.StatusCode);
        Assert.Contains("MaxConcurrentUploads", busy.Status.Detail, StringComparison.Ordinal);
        Assert.True(landed.Accepted);
        Assert.True(retried.Accepted);
    }

    [Fact]
    public async Task SubmitUpdate_ClientVanishesMidUpload_LeavesNoTraceAndTheRoundCompletesWithoutIt()
    {
        await using var host = await CoordinatorTestHost.StartAsync(new Dictionary<string, string?>
        {
            ["Coordinator:MinResponses"] = "2",
            ["Coordinator:GracePeriod"] = "00:00:00.200",
        });
        var (clients, train) = await StartRoundAsync(host);
        byte[] payload = await clients[0].TrainAsync(train, 1);

        // Client a's connection dies after half its payload: its own channel is torn down with the call still open.
        using (var doomed = Grpc.Net.Client.GrpcChannel.ForAddress(host.Address))
        {
            var call = new Contracts.V1.Federation.FederationClient(doomed).SubmitUpdate(cancellationToken: Token);
            await call.RequestStream.WriteAsync(new UpdateMessage { Header = Header(clients[0], train, payload) }, Token);
            await WriteChunksAsync(call.RequestStream, payload, 0, payload.Length / 2);
            await Task.Delay(100, Token);
        }

        StatusReply afterCrash = await host.Client.GetStatusAsync(new StatusRequest(), cancellationToken: Token);
        foreach (var (client, seed) in clients.Skip(1).Select((c, i) => (c, i + 2)))
        {
            Assert.True((await client.UploadAsync(train.Round, train.ModelVersion, await client.TrainAsync(train, seed))).Accepted);
        }

        StatusReply status = afterCrash;
        for (int i = 0; i < 50 && status.Round == 1; i++)
        {
            await Task.Delay(100, Token);
            status = await host.Client.GetStatusAsync(new StatusRequest(), cancellationToken: Token);
        }

        Assert.Equal(0, afterCrash.UpdatesReceived);
        Assert.Equal(2, status.Round);
        var run = (CoordinatorRun)host.Services.GetService(typeof(CoordinatorRun))!;
        Assert.Equal("1", run.ModelVersion);
    }

    [Fact]
    public async Task SubmitUpdate_StalledStream_DeadlineExceededAndTheSlotFreed()
    {
        await using var host = await CoordinatorTestHost.StartAsync(new Dictionary<string, string?>
        {
            ["Coordinator:MaxConcurrentUploads"] = "1",
            ["Coordinator:UploadTimeout"] = "00:00:00.300",
        });
        var (clients, train) = await StartRoundAsync(host);
        byte[] payload = await clients[0].TrainAsync(train, 1);

        using var stalled = host.Client.SubmitUpdate(cancellationToken: Token);
        await stalled.RequestStream.WriteAsync(new UpdateMessage { Header = Header(clients[0], train, payload) }, Token);
        await WriteChunksAsync(stalled.RequestStream, payload, 0, 1000);
        var error = await Assert.ThrowsAsync<RpcException>(async () => await stalled.ResponseAsync);
        var next = await clients[1].UploadAsync(train.Round, train.ModelVersion, await clients[1].TrainAsync(train, 2));

        Assert.Equal(StatusCode.DeadlineExceeded, error.StatusCode);
        Assert.Contains("UploadTimeout", error.Status.Detail, StringComparison.Ordinal);
        Assert.True(next.Accepted);
    }

    [Fact]
    public async Task ClientsBusyInLongCalls_AreNotDroppedAsSilent()
    {
        await using var host = await CoordinatorTestHost.StartAsync(new Dictionary<string, string?>
        {
            ["Coordinator:MaxConcurrentUploads"] = "1",
            ["Coordinator:HeartbeatInterval"] = "00:00:00.100",
            ["Coordinator:MissedHeartbeats"] = "2",
            ["Coordinator:MinResponses"] = "2",
        });
        var (clients, train) = await StartRoundAsync(host);
        byte[] first = await clients[0].TrainAsync(train, 1);
        byte[] second = await clients[1].TrainAsync(train, 2);

        // a holds the only slot for well over the silence limit (0.2 s) while b waits for it; c is silent.
        using var held = host.Client.SubmitUpdate(cancellationToken: Token);
        await held.RequestStream.WriteAsync(new UpdateMessage { Header = Header(clients[0], train, first) }, Token);
        await WriteChunksAsync(held.RequestStream, first, 0, 1000);
        var waiting = clients[1].UploadAsync(train.Round, train.ModelVersion, second);
        await Task.Delay(800, Token);
        await WriteChunksAsync(held.RequestStream, first, 1000, first.Length);
        await held.RequestStream.CompleteAsync();

        Assert.True((await held.ResponseAsync).Accepted);
        Assert.True((await waiting).Accepted);
        var stale = await Assert.ThrowsAsync<RpcException>(() => clients[2].GetTaskAsync(0));
        Assert.Equal(StatusCode.FailedPrecondition, stale.StatusCode);
    }

    [Fact]
    public async Task Calls_AboveTheRequestRate_ResourceExhausted()
    {
        await using var host = await CoordinatorTestHost.StartAsync(new Dictionary<string, string?>
        {
            ["Coordinator:MaxRequestsPerSecond"] = "1",
            ["Coordinator:RequestBurst"] = "2",
        });

        await host.Client.GetStatusAsync(new StatusRequest(), cancellationToken: Token);
        await host.Client.GetStatusAsync(new StatusRequest(), cancellationToken: Token);
        var error = await Assert.ThrowsAsync<RpcException>(async () => await host.Client.GetStatusAsync(new StatusRequest(), cancellationToken: Token));

        Assert.Equal(StatusCode.ResourceExhausted, error.StatusCode);
        Assert.Contains("MaxRequestsPerSecond", error.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SilentParticipant_IsDropped_AndTheRoundClosesWithTheOthers()
    {
        await using var host = await CoordinatorTestHost.StartAsync(new Dictionary<string, string?>
        {
            ["Coordinator:HeartbeatInterval"] = "00:00:00.200",
            ["Coordinator:MissedHeartbeats"] = "3",
            ["Coordinator:MinResponses"] = "2",
        });
        var (clients, train) = await StartRoundAsync(host);

        // a and b upload and keep sending heartbeats; c says nothing after registering.
        foreach (var (client, seed) in clients.Take(2).Select((c, i) => (c, i)))
        {
            await client.UploadAsync(train.Round, train.ModelVersion, await client.TrainAsync(train, seed));
        }

        StatusReply status = await host.Client.GetStatusAsync(new StatusRequest(), cancellationToken: Token);
        for (int i = 0; i < 50 && status.Round == 1; i++)
        {
            foreach (var client in clients.Take(2))
            {
                await host.Client.HeartbeatAsync(new HeartbeatRequest { ClientId = client.ClientId, SessionId = client.SessionId }, cancellationToken: Token);
            }

            await Task.Delay(100, Token);
            status = await host.Client.GetStatusAsync(new StatusRequest(), cancellationToken: Token);
        }

        Assert.True(status.Round >= 2, $"round {status.Round}, state {status.State}");
        Assert.Equal(2, status.ClientsRegistered);
        var stale = await Assert.ThrowsAsync<RpcException>(() => clients[2].GetTaskAsync(0));
        Assert.Equal(StatusCode.FailedPrecondition, stale.StatusCode);
    }

    [Fact]
    public async Task Refusals_AreCountedByReason()
    {
        var seen = new List<(long Value, string? Reason)>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == CoordinatorMetrics.MeterName && instrument.Name == "fedrebasin.updates.refused")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            lock (seen)
            {
                seen.Add((value, tags.ToArray().FirstOrDefault(t => t.Key == "reason").Value as string));
            }
        });
        listener.Start();
        await using var host = await CoordinatorTestHost.StartAsync();
        var (clients, train) = await StartRoundAsync(host);
        byte[] payload = await clients[0].TrainAsync(train, 1);

        await clients[0].UploadAsync(train.Round, train.ModelVersion, payload);
        await Assert.ThrowsAsync<RpcException>(() => clients[0].UploadAsync(train.Round, train.ModelVersion, payload));
        await Assert.ThrowsAsync<RpcException>(() => clients[1].UploadAsync(train.Round + 1, train.ModelVersion, payload));

        lock (seen)
        {
            Assert.Contains((1L, "duplicate"), seen);
            Assert.Contains((1L, "wrong-round"), seen);
        }
    }

    [Fact]
    public async Task Reflection_ListsTheFederationAndHealthServices()
    {
        await using var host = await CoordinatorTestHost.StartAsync();
        var reflection = new ServerReflection.ServerReflectionClient(host.Channel);

        using var call = reflection.ServerReflectionInfo(cancellationToken: Token);
        await call.RequestStream.WriteAsync(new ServerReflectionRequest { ListServices = string.Empty }, Token);
        await call.RequestStream.CompleteAsync();
        Assert.True(await call.ResponseStream.MoveNext(Token));
        var names = call.ResponseStream.Current.ListServicesResponse.Service.Select(s => s.Name).ToList();

        Assert.Contains("fedrebasin.v1.Federation", names);
        Assert.Contains("grpc.health.v1.Health", names);
    }

    /// <summary>Writes payload[from..to) in chunks under the test host's 1024-byte chunk limit.</summary>
    private static async Task WriteChunksAsync(IClientStreamWriter<UpdateMessage> stream, byte[] payload, int from, int to)
    {
        for (int offset = from; offset < to; offset += 1000)
        {
            await stream.WriteAsync(new UpdateMessage { Chunk = ByteString.CopyFrom(payload, offset, Math.Min(1000, to - offset)) }, Token);
        }
    }

    private static UpdateHeader Header(TestClient client, TrainTask train, byte[] payload) => new()
    {
        ClientId = client.ClientId,
        SessionId = client.SessionId,
        Round = train.Round,
        ModelVersion = train.ModelVersion,
        SampleCount = 100,
        Sha256 = Sha256Hex.Compute(payload),
        TotalBytes = payload.Length,
    };
}
