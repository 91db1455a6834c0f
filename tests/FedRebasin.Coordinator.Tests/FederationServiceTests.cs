using FedRebasin.Contracts.V1;
using Grpc.Core;

namespace FedRebasin.Coordinator.Tests;

[Trait("Category", "Integration")]
public sealed class FederationServiceTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task TwoRounds_ThreeClients_ReachDoneAndAdvanceModelVersion()
    {
        await using var host = await CoordinatorTestHost.StartAsync();
        var clients = new[] { "alice", "bob", "carol" }.Select(id => new TestClient(host.Client, id)).ToArray();
        var versions = new System.Collections.Concurrent.ConcurrentBag<string>();
        var digests = new System.Collections.Concurrent.ConcurrentBag<string>();

        async Task<long> PlayAsync(TestClient client, int index)
        {
            await client.RegisterAsync(100 + index);
            long last = 0;
            while (true)
            {
                var task = await client.WaitForTaskAsync(last);
                if (task.TaskCase == TaskReply.TaskOneofCase.Done)
                {
                    return task.Done.FinalRound;
                }

                var train = task.Train;
                versions.Add(train.ModelVersion);
                digests.Add(train.ModelSha256);
                byte[] trained = await client.TrainAsync(train, (index * 100) + (int)train.Round);
                var reply = await client.UploadAsync(train.Round, train.ModelVersion, trained);
                Assert.True(reply.Accepted);
                last = train.Round;
            }
        }

        long[] finals = await Task.WhenAll(clients.Select(PlayAsync));

        Assert.All(finals, f => Assert.Equal(2, f));
        Assert.Equal(["0", "1"], versions.Distinct().Order(StringComparer.Ordinal));
        var status = await host.Client.GetStatusAsync(new StatusRequest(), cancellationToken: Token);
        Assert.Equal(RunState.Done, status.State);
        Assert.Equal(2, status.Round);
        Assert.Equal("wm", status.Strategy);
        Assert.Equal(3, status.ClientsRegistered);
        // The published model of round 2 can be downloaded and parsed.
        string digest = await DigestOfLastChunkAsync(host, clients[0]);
        byte[] final = await clients[0].DownloadAsync("2", digest);
        Assert.NotEmpty(TestClient.Perturb(final, 1));
        Assert.Equal(2, digests.Distinct(StringComparer.Ordinal).Count());
        Assert.DoesNotContain(digest, digests);
    }

    [Fact]
    public async Task SubmitUpdate_Duplicate_AlreadyExistsAndCountedOnce()
    {
        await using var host = await CoordinatorTestHost.StartAsync();
        var (a, train) = await StartRoundAsync(host);
        byte[] payload = await a.TrainAsync(train, 1);

        Assert.True((await a.UploadAsync(train.Round, train.ModelVersion, payload)).Accepted);
        var error = await Assert.ThrowsAsync<RpcException>(() => a.UploadAsync(train.Round, train.ModelVersion, payload));

        Assert.Equal(StatusCode.AlreadyExists, error.StatusCode);
        Assert.Equal(1, (await StatusAsync(host)).UpdatesReceived);
    }

    [Fact]
    public async Task SubmitUpdate_WrongDigest_DataLossAndNotCounted()
    {
        await using var host = await CoordinatorTestHost.StartAsync();
        var (a, train) = await StartRoundAsync(host);
        byte[] payload = await a.TrainAsync(train, 1);

        var error = await Assert.ThrowsAsync<RpcException>(() => a.UploadAsync(train.Round, train.ModelVersion, payload, sha: new string('0', 64)));

        Assert.Equal(StatusCode.DataLoss, error.StatusCode);
        Assert.Equal(0, (await StatusAsync(host)).UpdatesReceived);
        // The client was not marked as responded: a correct retry is accepted.
        Assert.True((await a.UploadAsync(train.Round, train.ModelVersion, payload)).Accepted);
        Assert.Equal(1, (await StatusAsync(host)).UpdatesReceived);
    }

    [Fact]
    public async Task SubmitUpdate_WrongRound_FailedPrecondition()
    {
        await using var host = await CoordinatorTestHost.StartAsync();
        var (a, train) = await StartRoundAsync(host);
        byte[] payload = await a.TrainAsync(train, 1);

        var error = await Assert.ThrowsAsync<RpcException>(() => a.UploadAsync(train.Round + 1, train.ModelVersion, payload));

        Assert.Equal(StatusCode.FailedPrecondition, error.StatusCode);
        Assert.Equal(0, (await StatusAsync(host)).UpdatesReceived);
    }

    [Fact]
    public async Task SubmitUpdate_StreamEndsBeforeTotal_DataLossAndAggregateUntouched()
    {
        await using var host = await CoordinatorTestHost.StartAsync();
        var (a, train) = await StartRoundAsync(host);
        byte[] payload = await a.TrainAsync(train, 1);

        var error = await Assert.ThrowsAsync<RpcException>(() => a.UploadAsync(train.Round, train.ModelVersion, payload, sendBytes: payload.Length / 2));

        Assert.Equal(StatusCode.DataLoss, error.StatusCode);
        Assert.Equal(0, (await StatusAsync(host)).UpdatesReceived);
        Assert.True((await a.UploadAsync(train.Round, train.ModelVersion, payload)).Accepted);
    }

    [Fact]
    public async Task SubmitUpdate_StartsWithChunk_FailedPrecondition()
    {
        await using var host = await CoordinatorTestHost.StartAsync();
        using var call = host.Client.SubmitUpdate(cancellationToken: Token);
        await call.RequestStream.WriteAsync(new UpdateMessage { Chunk = Google.Protobuf.ByteString.CopyFrom(1, 2, 3) }, Token);
        await call.RequestStream.CompleteAsync();

        var error = await Assert.ThrowsAsync<RpcException>(async () => await call);

        Assert.Equal(StatusCode.FailedPrecondition, error.StatusCode);
    }

    [Fact]
    public async Task Register_TokensConfiguredMissingOrWrongToken_Unauthenticated()
    {
        await using var host = await CoordinatorTestHost.StartAsync(new Dictionary<string, string?>
        {
            ["Coordinator:Tokens:alice"] = "secret-a",
            ["Coordinator:Tokens:bob"] = "secret-b",
        });

        var missing = await Assert.ThrowsAsync<RpcException>(() => new TestClient(host.Client, "alice").RegisterAsync());
        var wrong = await Assert.ThrowsAsync<RpcException>(() => new TestClient(host.Client, "alice", Bearer("nope")).RegisterAsync());
        var other = await Assert.ThrowsAsync<RpcException>(() => new TestClient(host.Client, "alice", Bearer("secret-b")).RegisterAsync());
        var status = await Assert.ThrowsAsync<RpcException>(async () => await host.Client.GetStatusAsync(new StatusRequest(), cancellationToken: Token));

        Assert.Equal(StatusCode.Unauthenticated, missing.StatusCode);
        Assert.Equal(StatusCode.Unauthenticated, wrong.StatusCode);
        Assert.Equal(StatusCode.PermissionDenied, other.StatusCode);
        Assert.Equal(StatusCode.Unauthenticated, status.StatusCode);
        await new TestClient(host.Client, "alice", Bearer("secret-a")).RegisterAsync();
    }

    [Fact]
    public async Task GetTask_UnknownSession_FailedPrecondition()
    {
        await using var host = await CoordinatorTestHost.StartAsync();

        var error = await Assert.ThrowsAsync<RpcException>(() => new TestClient(host.Client, "ghost").GetTaskAsync(0));

        Assert.Equal(StatusCode.FailedPrecondition, error.StatusCode);
    }

    private static Metadata Bearer(string token) => new() { { "authorization", $"Bearer {token}" } };

    private static async Task<StatusReply> StatusAsync(CoordinatorTestHost host) =>
        await host.Client.GetStatusAsync(new StatusRequest(), cancellationToken: Token);

    private static async Task<string> DigestOfLastChunkAsync(CoordinatorTestHost host, TestClient client)
    {
        using var call = host.Client.DownloadModel(new DownloadModelRequest { ClientId = client.ClientId, SessionId = client.SessionId, ModelVersion = "2" }, cancellationToken: Token);
        string sha = string.Empty;
        await foreach (var chunk in call.ResponseStream.ReadAllAsync(Token))
        {
            sha = chunk.Sha256;
        }

        return sha;
    }

    /// <summary>Registers three clients (round 1 starts) and returns the first with its Train task.</summary>
    private static async Task<(TestClient Client, TrainTask Task)> StartRoundAsync(CoordinatorTestHost host)
    {
        var clients = new[] { "a", "b", "c" }.Select(id => new TestClient(host.Client, id)).ToArray();
        foreach (var client in clients)
        {
            await client.RegisterAsync();
        }

        var task = await clients[0].WaitForTaskAsync(0);
        Assert.Equal(TaskReply.TaskOneofCase.Train, task.TaskCase);
        Assert.Equal(1, task.Train.Round);
        return (clients[0], task.Train);
    }
}
