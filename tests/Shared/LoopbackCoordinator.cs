using System.Globalization;
using System.Net;
using FedRebasin.Coordinator;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace FedRebasin.Tests.Shared;

/// <summary>
/// A real coordinator on Kestrel, bound to 127.0.0.1 on a free port with HTTP/2 cleartext, or TLS when the overrides
/// set Coordinator:Tls:* (then <see cref="Address"/> is https). The defaults are a small
/// run (tiny MLP on 1x8x8 inputs, 4 classes, strategy wm, 2 rounds, 3 clients, short poll and tick intervals);
/// the caller overrides any "Coordinator:..." setting.
/// </summary>
internal sealed class LoopbackCoordinator : IAsyncDisposable
{
    private readonly WebApplication _app;

    private LoopbackCoordinator(WebApplication app, Uri address)
    {
        _app = app;
        Address = address;
    }

    /// <summary>The coordinator's address, e.g. http://127.0.0.1:40123 (https with TLS).</summary>
    public Uri Address { get; }

    /// <summary>The coordinator's services.</summary>
    public IServiceProvider Services => _app.Services;

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

        var builder = WebApplication.CreateBuilder();
        builder.Configuration.AddInMemoryCollection(settings);
        builder.Logging.ClearProviders();
        // Plain HTTP/2, or TLS when the overrides set Coordinator:Tls:* (the coordinator's own endpoint helper).
        builder.WebHost.UseKestrel(o => CoordinatorEndpoint.Listen(o, IPAddress.Loopback, 0, o.ApplicationServices.GetRequiredService<IOptions<CoordinatorOptions>>().Value.Tls));
        builder.Services.AddCoordinator(builder.Configuration);
        var app = builder.Build();
        app.MapCoordinator();
        try
        {
            await app.StartAsync(TestContext.Current.CancellationToken);
        }
        catch
        {
            await app.DisposeAsync();
            throw;
        }

        string bound = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First();
        int port = new Uri(bound).Port;
        string scheme = app.Services.GetRequiredService<IOptions<CoordinatorOptions>>().Value.Tls.IsEnabled ? "https" : "http";
        return new LoopbackCoordinator(app, new Uri($"{scheme}://127.0.0.1:{port.ToString(CultureInfo.InvariantCulture)}"));
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync(CancellationToken.None);
        await _app.DisposeAsync();
    }
}
