using System.Net;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace FedRebasin.Coordinator;

/// <summary>
/// Configures the coordinator's Kestrel endpoint: HTTP/2 only, plain or, when <see cref="CoordinatorTlsOptions.IsEnabled"/>,
/// HTTPS with the configured certificate; with <see cref="CoordinatorTlsOptions.ClientCertificateAuthorityPath"/> the
/// handshake requires a client certificate that chains to that CA bundle and refuses any other.
/// </summary>
public static partial class CoordinatorEndpoint
{
    /// <summary>Listens on <paramref name="address"/>:<paramref name="port"/> (port 0: a free port).</summary>
    /// <param name="kestrel">The server options, e.g. from <c>ConfigureKestrel</c>.</param>
    /// <param name="address">The local address, e.g. <see cref="IPAddress.Loopback"/>.</param>
    /// <param name="port">The port; 0 picks a free one.</param>
    /// <param name="tls">The TLS settings (typically <c>CoordinatorOptions.Tls</c>); null or empty for plain HTTP/2.</param>
    public static void Listen(KestrelServerOptions kestrel, IPAddress address, int port, CoordinatorTlsOptions? tls)
    {
        ArgumentNullException.ThrowIfNull(kestrel);
        ArgumentNullException.ThrowIfNull(address);
        var logger = LoggerFor(kestrel);
        kestrel.Listen(address, port, listen => Configure(listen, tls, logger));
    }

    /// <summary>Listens on <paramref name="port"/> on every interface (IPv6 and IPv4 where the host has IPv6).</summary>
    /// <param name="kestrel">The server options, e.g. from <c>ConfigureKestrel</c>.</param>
    /// <param name="port">The port.</param>
    /// <param name="tls">The TLS settings (typically <c>CoordinatorOptions.Tls</c>); null or empty for plain HTTP/2.</param>
    public static void ListenAnyIP(KestrelServerOptions kestrel, int port, CoordinatorTlsOptions? tls)
    {
        ArgumentNullException.ThrowIfNull(kestrel);
        var logger = LoggerFor(kestrel);
        kestrel.ListenAnyIP(port, listen => Configure(listen, tls, logger));
    }

    /// <summary>Listens on <paramref name="address"/>:<paramref name="port"/> with plain HTTP/1.1 for the Prometheus scrape endpoint.</summary>
    public static void ListenMetrics(KestrelServerOptions kestrel, IPAddress address, int port)
    {
        ArgumentNullException.ThrowIfNull(kestrel);
        ArgumentNullException.ThrowIfNull(address);
        kestrel.Listen(address, port, listen => listen.Protocols = HttpProtocols.Http1);
    }

    /// <summary>
    /// A few words for start-up messages: "gRPC over mutual TLS" (client certificates required), "gRPC over TLS" or
    /// "gRPC over plain HTTP/2, no TLS".
    /// </summary>
    public static string Describe(CoordinatorTlsOptions? tls) => tls switch
    {
        { IsEnabled: true, RequiresClientCertificate: true } => "gRPC over mutual TLS",
        { IsEnabled: true } => "gRPC over TLS",
        _ => "gRPC over plain HTTP/2, no TLS",
    };

    private static void Configure(ListenOptions listen, CoordinatorTlsOptions? tls, ILogger logger)
    {
        listen.Protocols = HttpProtocols.Http2;
        if (tls is not { IsEnabled: true })
        {
            return;
        }

        var (certificate, chain) = tls.LoadServerCertificate();
        var https = new HttpsConnectionAdapterOptions
        {
            ServerCertificate = certificate,
            ServerCertificateChain = chain.Count > 0 ? chain : null,
        };
        if (tls.RequiresClientCertificate)
        {
            var authorities = tls.LoadClientAuthorities();
            // HTTP/2 forbids renegotiation, so the certificate must be asked for in the first handshake.
            https.ClientCertificateMode = ClientCertificateMode.RequireCertificate;
            // The callback replaces Kestrel's system-trust check: only the configured bundle is trusted.
            https.ClientCertificateValidation = (presented, _, _) =>
            {
                if (CallAuthorizer.IsTrusted(presented, authorities, out string reason))
                {
                    return true;
                }

                LogCertificateRefused(logger, presented.Subject, reason);
                return false;
            };
        }

        listen.UseHttps(https);
    }

    private static ILogger LoggerFor(KestrelServerOptions kestrel) =>
        (kestrel.ApplicationServices?.GetService<ILoggerFactory>())?.CreateLogger(typeof(CoordinatorEndpoint).FullName!)
        ?? NullLogger.Instance;

    [LoggerMessage(Level = LogLevel.Warning, Message = "TLS handshake refused: client certificate {Subject} is not trusted ({Reason})")]
    private static partial void LogCertificateRefused(ILogger logger, string subject, string reason);
}
