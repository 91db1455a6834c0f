using System.Net;
using FedRebasin.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OpenTelemetry.Metrics;

namespace FedRebasin.Cli;

/// <summary>
/// A plain HTTP/1.1 listener serving <c>/metrics</c> for Prometheus (OpenTelemetry exporter) for the meters named at
/// start: a client's, or in <c>simulate</c> the in-process coordinators' and clients' together.
/// </summary>
internal sealed class MetricsServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private MetricsServer(WebApplication app)
    {
        _app = app;
        Metrics = app.Services.GetRequiredService<ClientMetrics>();
    }

    /// <summary>The client's instruments, exported by this server.</summary>
    public ClientMetrics Metrics { get; }

    public static async Task<MetricsServer> StartAsync(int port, IReadOnlyList<string> meters, CancellationToken cancellationToken)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = [] });
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(k => k.Listen(IPAddress.Any, port, l => l.Protocols = HttpProtocols.Http1));
        builder.Services.AddMetrics();
        builder.Services.AddSingleton(provider => new ClientMetrics(provider.GetService<System.Diagnostics.Metrics.IMeterFactory>()));
        builder.Services.AddOpenTelemetry().WithMetrics(m => m.AddMeter([.. meters]).AddPrometheusExporter());
        var app = builder.Build();
        app.MapPrometheusScrapingEndpoint();
        await app.StartAsync(cancellationToken);
        return new MetricsServer(app);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync(CancellationToken.None);
        await _app.DisposeAsync();
    }
}
