using FedRebasin.Contracts.V1;
using FedRebasin.Data;
using FedRebasin.Tests.Shared;
using Grpc.Net.Client;

namespace FedRebasin.Client.Tests;

[Trait("Category", "Integration")]
public sealed class ClientWorkerIntegrationTests
{
    [Fact]
    public async Task RunAsync_WrongToken_FailsWithUnauthenticatedWithoutRetrying()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var coordinator = await LoopbackCoordinator.StartAsync(new Dictionary<string, string?>
        {
            ["Coordinator:MinClients"] = "1",
            ["Coordinator:Tokens:client-0"] = "secret",
        });
        var worker = new ClientWorker(new ClientOptions
        {
            CoordinatorAddress = coordinator.Address,
            ClientId = "client-0",
            Token = "wrong",
            Dataset = SyntheticData.Create(60, 1, 8, 8, 4, seed: 1),
            Retry = new RetrySettings { BaseDelay = TimeSpan.FromSeconds(30), MaxDelay = TimeSpan.FromSeconds(30) },
        });

        var e = await Assert.ThrowsAsync<Grpc.Core.RpcException>(() => worker.RunAsync(ct));
        Assert.Equal(Grpc.Core.StatusCode.Unauthenticated, e.StatusCode);
    }

    [Fact]
    public async Task RunAsync_WithMetrics_RecordsEachRoundsTraining()
    {
        var ct = TestContext.Current.CancellationToken;
        var rounds = new List<long>();
        var losses = new List<double>();
        using var listener = new System.Diagnostics.Metrics.MeterListener();
        using var metrics = new ClientMetrics();
        listener.InstrumentPublished = (instrument, l) =>
        {
            // Only this test creates client metrics in this process.
            if (instrument.Meter.Name == ClientMetrics.MeterName)
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, _, _) =>
        {
            if (instrument.Name == "fedrebasin.client.rounds.trained")
            {
                lock (rounds)
                {
                    rounds.Add(value);
                }
            }
        });
        listener.SetMeasurementEventCallback<double>((instrument, value, _, _) =>
        {
            if (instrument.Name == "fedrebasin.client.train.loss")
            {
                losses.Add(value);
            }
        });
        listener.Start();
        await using var coordinator = await LoopbackCoordinator.StartAsync(new Dictionary<string, string?> { ["Coordinator:MinClients"] = "1" });
        var worker = new ClientWorker(new ClientOptions
        {
            CoordinatorAddress = coordinator.Address,
            ClientId = "client-0",
            Dataset = SyntheticData.Create(200, 1, 8, 8, 4, seed: 1),
            Retry = new RetrySettings { BaseDelay = TimeSpan.FromMilliseconds(50), MaxDelay = TimeSpan.FromMilliseconds(500) },
        }, metrics: metrics);

        long final = await worker.RunAsync(ct);
        listener.RecordObservableInstruments();

        Assert.Equal(2, final);
        lock (rounds)
        {
            Assert.Equal(2, rounds.Count(v => v == 1));
        }

        Assert.Single(losses);
        Assert.True(double.IsFinite(losses[0]) && losses[0] > 0);
    }

    [Fact]
    public async Task RunAsync_ThreeClientsTwoRounds_AllDoneAndCoordinatorDone()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var coordinator = await LoopbackCoordinator.StartAsync();
        var address = coordinator.Address;
        var dataset = SyntheticData.Create(600, 1, 8, 8, 4, seed: 1);

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(60));
        var workers = Enumerable.Range(0, 3).Select(i => new ClientWorker(new ClientOptions
        {
            CoordinatorAddress = address,
            ClientId = $"client-{i}",
            Dataset = dataset,
            Partition = "iid",
            Clients = 3,
            ClientIndex = i,
            PartitionSeed = 11,
            Device = "cpu",
            CallTimeout = TimeSpan.FromSeconds(20),
            PollTimeout = TimeSpan.FromSeconds(10),
            Retry = new RetrySettings { BaseDelay = TimeSpan.FromMilliseconds(50), MaxDelay = TimeSpan.FromMilliseconds(500) },
        }));
        long[] finals = await Task.WhenAll(workers.Select(w => Task.Run(() => w.RunAsync(timeout.Token), timeout.Token)));

        Assert.All(finals, f => Assert.Equal(2, f));
        using var channel = GrpcChannel.ForAddress(address);
        var status = await new Contracts.V1.Federation.FederationClient(channel).GetStatusAsync(new StatusRequest(), deadline: DateTime.UtcNow.AddSeconds(10), cancellationToken: ct);
        Assert.Equal(RunState.Done, status.State);
        Assert.Equal(2, status.Round);
    }
}
