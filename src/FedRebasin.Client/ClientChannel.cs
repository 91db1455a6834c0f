using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Grpc.Net.Client;

namespace FedRebasin.Client;

/// <summary>
/// The gRPC channel to the coordinator: plain HTTP/2 for http addresses; TLS for https, trusting the system store or
/// only <see cref="ClientOptions.CaCertificatePath"/>, and presenting <see cref="ClientOptions.ClientCertificatePath"/>
/// for mutual TLS. See docs/SECURITY.md.
/// </summary>
public static class ClientChannel
{
    /// <summary>Creates the channel for <paramref name="options"/> (validated). Disposing the channel disposes its handler.</summary>
    public static GrpcChannel Create(ClientOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var address = options.CoordinatorAddress
            ?? throw new ArgumentException($"{nameof(ClientOptions.CoordinatorAddress)} is required.", nameof(options));
        if (options.CaCertificatePath is null && options.ClientCertificatePath is null)
        {
            return GrpcChannel.ForAddress(address);
        }

        var ssl = new SslClientAuthenticationOptions();
        if (options.CaCertificatePath is not null)
        {
            // Custom root trust: only this bundle anchors the coordinator's chain (host name checks still apply).
            var policy = new X509ChainPolicy
            {
                TrustMode = X509ChainTrustMode.CustomRootTrust,
                // Private CAs rarely publish revocation lists; an unreachable list would fail every connection.
                RevocationMode = X509RevocationMode.NoCheck,
            };
            policy.CustomTrustStore.AddRange(LoadBundle(options.CaCertificatePath));
            ssl.CertificateChainPolicy = policy;
        }

        if (options.ClientCertificatePath is not null)
        {
            var (certificate, intermediates) = LoadClientCertificate(options.ClientCertificatePath, options.ClientKeyPath!);
            // A certificate context is sent as is, whatever CA names the server lists in its request.
            ssl.ClientCertificateContext = SslStreamCertificateContext.Create(certificate, intermediates, offline: true);
        }

        var handler = new SocketsHttpHandler
        {
            // What GrpcChannel.ForAddress uses by default: more than one HTTP/2 connection when streams run out.
            EnableMultipleHttp2Connections = true,
            SslOptions = ssl,
        };
        return GrpcChannel.ForAddress(address, new GrpcChannelOptions { HttpHandler = handler });
    }

    /// <summary>Adds a message naming the setting for every invalid TLS setting; loads the files to check them.</summary>
    internal static void Validate(ClientOptions options, List<string> errors)
    {
        bool https = options.CoordinatorAddress is { IsAbsoluteUri: true } address && address.Scheme == Uri.UriSchemeHttps;
        void RequireHttps(string setting)
        {
            if (!https)
            {
                errors.Add($"{setting} needs an https {nameof(ClientOptions.CoordinatorAddress)}");
            }
        }

        bool RequireFile(string setting, string path)
        {
            if (File.Exists(path))
            {
                return true;
            }

            errors.Add($"{setting} must name an existing file, not '{path}'");
            return false;
        }

        if (options.CaCertificatePath is { } ca)
        {
            RequireHttps(nameof(ClientOptions.CaCertificatePath));
            if (RequireFile(nameof(ClientOptions.CaCertificatePath), ca))
            {
                try
                {
                    if (LoadBundle(ca).Count == 0)
                    {
                        errors.Add($"{nameof(ClientOptions.CaCertificatePath)} '{ca}' holds no PEM certificate");
                    }
                }
                catch (Exception e) when (e is CryptographicException or IOException or UnauthorizedAccessException)
                {
                    errors.Add($"{nameof(ClientOptions.CaCertificatePath)} '{ca}' could not be loaded: {e.Message}");
                }
            }
        }

        string? certificatePath = options.ClientCertificatePath;
        string? keyPath = options.ClientKeyPath;
        if (certificatePath is null && keyPath is null)
        {
            return;
        }

        if (certificatePath is null)
        {
            errors.Add($"{nameof(ClientOptions.ClientCertificatePath)} is required with {nameof(ClientOptions.ClientKeyPath)}");
            return;
        }

        RequireHttps(nameof(ClientOptions.ClientCertificatePath));
        if (keyPath is null)
        {
            errors.Add($"{nameof(ClientOptions.ClientKeyPath)} is required with {nameof(ClientOptions.ClientCertificatePath)}");
            return;
        }

        bool certificateExists = RequireFile(nameof(ClientOptions.ClientCertificatePath), certificatePath);
        if (RequireFile(nameof(ClientOptions.ClientKeyPath), keyPath) && certificateExists)
        {
            try
            {
                using var certificate = LoadClientCertificate(certificatePath, keyPath).Certificate;
            }
            catch (Exception e) when (e is CryptographicException or ArgumentException or IOException or UnauthorizedAccessException)
            {
                errors.Add($"{nameof(ClientOptions.ClientCertificatePath)} '{certificatePath}' could not be loaded with {nameof(ClientOptions.ClientKeyPath)} '{keyPath}': {e.Message}");
            }
        }
    }

    private static X509Certificate2Collection LoadBundle(string path)
    {
        var certificates = new X509Certificate2Collection();
        certificates.ImportFromPemFile(path);
        return certificates;
    }

    /// <summary>The certificate with its key (the first in the file) and the file's other certificates (intermediates).</summary>
    private static (X509Certificate2 Certificate, X509Certificate2Collection Intermediates) LoadClientCertificate(string certificatePath, string keyPath)
    {
        var certificate = X509Certificate2.CreateFromPemFile(certificatePath, keyPath);
        if (OperatingSystem.IsWindows())
        {
            // SChannel cannot use the ephemeral key of a PEM-loaded certificate; a PKCS#12 round trip persists it.
            using var ephemeral = certificate;
            certificate = X509CertificateLoader.LoadPkcs12(ephemeral.Export(X509ContentType.Pkcs12), null);
        }

        var intermediates = new X509Certificate2Collection();
        foreach (var other in LoadBundle(certificatePath))
        {
            if (!other.RawDataMemory.Span.SequenceEqual(certificate.RawDataMemory.Span))
            {
                intermediates.Add(other);
            }
        }

        return (certificate, intermediates);
    }
}
