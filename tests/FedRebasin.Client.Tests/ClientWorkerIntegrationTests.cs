using System.Net;
using FedRebasin.Contracts.V1;
using FedRebasin.Coordinator;
using FedRebasin.Data;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace FedRebasin.Client.Tests;

[Trait("Category", "Integration")]
public sealed class ClientWorkerIntegrationTests
{
    [Fact]
    public async Task RunAsync_WrongToken_FailsWithUnauthenticatedWithoutRetrying()
    {
        var ct = TestContext.Current.CancellationToken;
        var builder = WebApplication.CreateBuilder();
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Coordinator:MinClients"] = "1",
            ["Coordinator:Model:InputShape"] = "1,8,8",
            ["Coordinator:Model:Classes"] = "4",
            ["Coordinator:Tokens:client-0"] = "secret",
        });
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(o => o.Listen(IPAddress.Loopback, 0, l => l.Protocols = HttpProtocols.Http2));
        builder.Services.AddCoordinator(builder.Configuration);
        await using var app = builder.Build();
        app.MapCoordinator();
        await app.StartAsync(ct);
        try
        {
            string listening = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First();
            var worker = new ClientWorker(new ClientOptions
            {
                CoordinatorAddress = new Uri(listening.Replace("[::1]", "127.0.0.1", StringComparison.Ordinal)),
                ClientId = "client-0",
                Token = "wrong",
                Dataset = SyntheticData.Create(60, 1, 8, 8, 4, seed: 1),
                Retry = new RetrySettings { BaseDelay = TimeSpan.FromSeconds(30), MaxDelay = TimeSpan.FromSeconds(30) },
            });

            var e = await Assert.ThrowsAsync<Grpc.Core.RpcException>(() => worker.RunAsync(ct));
            Assert.Equal(Grpc.Core.StatusCode.Unauthenticated, e.StatusCode);
        }
        finally
        {
            await app.StopAsync(CancellationToken.None);
        }
    }

    [Fact]
    public async Task RunAsync_ThreeClientsTwoRounds_AllDoneAndCoordinatorDone()
    {
        var ct = TestContext.Current.CancellationToken;
        var settings = new Dictionary<string, string?>
        {
            ["Coordinator:Strategy"] = "wm",
            ["Coordinator:Rounds"] = "2",
            ["Coordinator:MinClients"] = "3",
            ["Coordinator:PollWindow"] = "00:00:02",
            ["Coordinator:TickInterval"] = "00:00:00.100",
            ["Coordinator:Seed"] = "7",
            ["Coordinator:Model:Architecture"] = "mlp",
            ["Coordinator:Model:InputShape"] = "1,8,8",
            ["Coordinator:Model:Classes"] = "4",
            ["Coordinator:Model:Hidden:0"] = "16",
        };
        var builder = WebApplication.CreateBuilder();
        builder.Configuration.AddInMemoryCollection(settings);
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(o => o.Listen(IPAddress.Loopback, 0, l => l.Protocols = HttpProtocols.Http2));
        builder.Services.AddCoordinator(builder.Configuration);
        await using var app = builder.Build();
        app.MapCoordinator();
        await app.StartAsync(ct);
        try
        {
            string listening = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First();
            var address = new Uri($"http://127.0.0.1:{new Uri(listening).Port.ToString(System.Globalization.CultureInfo.InvariantCulture)}");
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
        finally
        {
            await app.StopAsync(CancellationToken.None);
        }
    }
}
