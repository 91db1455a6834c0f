using System.Globalization;
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace FedRebasin.Coordinator;

/// <summary>
/// A coordinator served by Kestrel in this process: the one-box simulation and the tests start it on 127.0.0.1 with a
/// free port; settings are "Coordinator:..." keys. Plain HTTP/2, or TLS when the settings configure Coordinator:Tls.
/// </summary>
public sealed class CoordinatorServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private CoordinatorServer(WebApplication app, Uri address)
    {
        _app = app;
        Address = address;
    }

    /// <summary>The address clients use, e.g. http://127.0.0.1:40123 (https with TLS).</summary>
    public Uri Address { get; }

    /// <summary>The coordinator's services.</summary>
    public IServiceProvider Services => _app.Services;

    /// <summary>The run: rounds, current model, evaluation.</summary>
    public CoordinatorRun Run => _app.Services.GetRequiredService<CoordinatorRun>();

    /// <summary>Starts a coordinator on <paramref name="address"/>:<paramref name="port"/> (port 0: a free one).</summary>
    /// <param name="settings">Configuration keys such as <c>Coordinator:Strategy</c>.</param>
    /// <param name="address">Local address; <see cref="IPAddress.Loopback"/> when null.</param>
    /// <param name="port">Port; 0 picks a free one.</param>
    /// <param name="logging">Configures logging; none when null.</param>
    /// <param name="kestrel">Further Kestrel settings (e.g. HTTP/2 windows for a benchmark); none when null.</param>
    /// <param name="cancellationToken">Cancels the start-up.</param>
    /// <exception cref="OptionsValidationException">A setting is invalid; the message names it.</exception>
    public static async Task<CoordinatorServer> StartAsync(
        IEnumerable<KeyValuePair<string, string?>> settings,
        IPAddress? address = null,
        int port = 0,
        Action<ILoggingBuilder>? logging = null,
        Action<Microsoft.AspNetCore.Server.Kestrel.Core.KestrelServerOptions>? kestrel = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var listenOn = address ?? IPAddress.Loopback;
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = [] });
        builder.Configuration.AddInMemoryCollection(settings);
        builder.Logging.ClearProviders();
        logging?.Invoke(builder.Logging);
        builder.WebHost.UseKestrel(o =>
        {
            kestrel?.Invoke(o);
            var coordinator = o.ApplicationServices.GetRequiredService<IOptions<CoordinatorOptions>>().Value;
            CoordinatorEndpoint.Listen(o, listenOn, port, coordinator.Tls);
            if (coordinator.MetricsPort is int metricsPort)
            {
                CoordinatorEndpoint.ListenMetrics(o, listenOn, metricsPort);
            }
        });
        builder.Services.AddCoordinator(builder.Configuration);
        var app = builder.Build();
        app.MapCoordinator();
        try
        {
            await app.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await app.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        string bound = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First();
        int boundPort = new Uri(bound).Port;
        string scheme = app.Services.GetRequiredService<IOptions<CoordinatorOptions>>().Value.Tls.IsEnabled ? "https" : "http";
        string host = listenOn.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{listenOn}]" : listenOn.ToString();
        return new CoordinatorServer(app, new Uri(string.Create(CultureInfo.InvariantCulture, $"{scheme}://{host}:{boundPort}")));
    }

    /// <summary>Stops the server and frees the coordinator.</summary>
    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync(CancellationToken.None).ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
    }
}
