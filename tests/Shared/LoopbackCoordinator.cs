using FedRebasin.Coordinator;

namespace FedRebasin.Tests.Shared;

/// <summary>
/// A real coordinator (<see cref="CoordinatorServer"/>) on 127.0.0.1 with a free port, plain HTTP/2 or TLS when the
/// overrides set Coordinator:Tls:* (then <see cref="Address"/> is https). The defaults are a small run (tiny MLP on
/// 1x8x8 inputs, 4 classes, strategy wm, 2 rounds, 3 clients, short poll and tick intervals); the caller overrides any
/// "Coordinator:..." setting.
/// </summary>
internal sealed class LoopbackCoordinator : IAsyncDisposable
{
    private readonly CoordinatorServer _server;

    private LoopbackCoordinator(CoordinatorServer server)
    {
        _server = server;
    }

    /// <summary>The coordinator's address, e.g. http://127.0.0.1:40123 (https with TLS).</summary>
    public Uri Address => _server.Address;

    /// <summary>The coordinator's services.</summary>
    public IServiceProvider Services => _server.Services;

    public static async Task<LoopbackCoordinator> StartAsync(IDictionary<string, string?>? overrides = null)
    {
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
        foreach (var (key, value) in overrides ?? new Dictionary<string, string?>())
        {
            settings[key] = value;
        }

        return new LoopbackCoordinator(await CoordinatorServer.StartAsync(settings, cancellationToken: TestContext.Current.CancellationToken));
    }

    public ValueTask DisposeAsync() => _server.DisposeAsync();
}
