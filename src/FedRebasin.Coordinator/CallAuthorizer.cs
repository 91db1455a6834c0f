using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Grpc.Core;
using Microsoft.Extensions.Logging;

namespace FedRebasin.Coordinator;

/// <summary>
/// Authorizes one call: the bearer token (when <see cref="CoordinatorOptions.Tokens"/> is set) and the client certificate
/// (when <see cref="CoordinatorTlsOptions.ClientCertificateAuthorityPath"/> is set); both must pass. Missing or bad
/// credentials give UNAUTHENTICATED, credentials of another client than the call's client_id give PERMISSION_DENIED.
/// Neither tokens nor passwords ever appear in a status detail or a log line.
/// </summary>
internal static partial class CallAuthorizer
{
    private const string ClientAuthOid = "1.3.6.1.5.5.7.3.2";
    private const string CommonNameOid = "2.5.4.3";
    private const string BearerPrefix = "Bearer ";

    /// <summary>Throws an <see cref="RpcException"/> unless the call may act for <paramref name="clientId"/> (null: any client, e.g. GetStatus).</summary>
    public static void Authorize(CoordinatorOptions options, ServerCallContext context, string? clientId, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(logger);

        // Authentication first (who is calling), then authorization (may they act for this client_id), so a caller
        // with a bad credential never learns whether the other one would have matched.
        string? tokenOwner = AuthenticateToken(options, context, logger);
        X509Certificate2? certificate = AuthenticateCertificate(options, context, logger);
        if (clientId is null)
        {
            return;
        }

        if (tokenOwner is not null && !string.Equals(tokenOwner, clientId, StringComparison.Ordinal))
        {
            throw Refuse(logger, context, StatusCode.PermissionDenied, $"The bearer token is not valid for client '{clientId}'.");
        }

        if (certificate is not null && !HasIdentity(certificate, clientId))
        {
            throw Refuse(logger, context, StatusCode.PermissionDenied,
                $"The client certificate '{certificate.Subject}' is not valid for client '{clientId}' (neither its Common Name nor a DNS name is '{clientId}').");
        }
    }

    /// <summary>
    /// Whether <paramref name="certificate"/> chains to one of <paramref name="authorities"/> (custom root trust: the
    /// system store plays no part) and may be used for client authentication. Revocation is not checked.
    /// </summary>
    public static bool IsTrusted(X509Certificate2 certificate, X509Certificate2Collection authorities, out string reason)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        ArgumentNullException.ThrowIfNull(authorities);
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(authorities);
        // Private CAs rarely publish revocation lists; an unreachable list would refuse every client.
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.ApplicationPolicy.Add(new Oid(ClientAuthOid));
        try
        {
            if (chain.Build(certificate))
            {
                reason = string.Empty;
                return true;
            }

            reason = string.Join("; ", chain.ChainStatus.Select(s => s.StatusInformation.Trim()).Where(s => s.Length > 0).Distinct(StringComparer.Ordinal));
            if (reason.Length == 0)
            {
                reason = "the chain is not valid";
            }

            return false;
        }
        finally
        {
            foreach (var element in chain.ChainElements)
            {
                element.Certificate.Dispose();
            }
        }
    }

    /// <summary>Whether the certificate's Common Name or one of its DNS subject alternative names is <paramref name="clientId"/> (ordinal).</summary>
    public static bool HasIdentity(X509Certificate2 certificate, string clientId)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        foreach (var name in certificate.SubjectName.EnumerateRelativeDistinguishedNames())
        {
            if (!name.HasMultipleElements && name.GetSingleElementType().Value == CommonNameOid
                && string.Equals(name.GetSingleElementValue(), clientId, StringComparison.Ordinal))
            {
                return true;
            }
        }

        foreach (var extension in certificate.Extensions)
        {
            if (extension is X509SubjectAlternativeNameExtension names
                && names.EnumerateDnsNames().Any(n => string.Equals(n, clientId, StringComparison.Ordinal)))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>The client whose token the call carries, or null when no tokens are configured.</summary>
    private static string? AuthenticateToken(CoordinatorOptions options, ServerCallContext context, ILogger logger)
    {
        var tokens = options.Tokens;
        if (tokens is null || tokens.Count == 0)
        {
            return null;
        }

        string? header = context.RequestHeaders.GetValue("authorization");
        if (header is null || !header.StartsWith(BearerPrefix, StringComparison.OrdinalIgnoreCase))
        {
            throw Refuse(logger, context, StatusCode.Unauthenticated, "Missing 'authorization: Bearer <token>' metadata.");
        }

        string presented = header[BearerPrefix.Length..].Trim();
        string? owner = tokens.FirstOrDefault(p => FixedTimeEquals(p.Value, presented)).Key;
        return owner ?? throw Refuse(logger, context, StatusCode.Unauthenticated, "The bearer token is not valid.");
    }

    /// <summary>The connection's trusted client certificate, or null when mutual TLS is off.</summary>
    private static X509Certificate2? AuthenticateCertificate(CoordinatorOptions options, ServerCallContext context, ILogger logger)
    {
        var tls = options.Tls;
        if (tls is null || !tls.RequiresClientCertificate)
        {
            return null;
        }

        // The TLS handshake already refuses untrusted certificates (CoordinatorEndpoint); checking again here keeps the
        // rule when the coordinator is hosted on an endpoint configured some other way.
        var certificate = context.GetHttpContext().Connection.ClientCertificate
            ?? throw Refuse(logger, context, StatusCode.Unauthenticated, "Mutual TLS is required: the connection presented no client certificate.");
        if (!IsTrusted(certificate, tls.LoadClientAuthorities(), out string reason))
        {
            throw Refuse(logger, context, StatusCode.Unauthenticated, $"The client certificate '{certificate.Subject}' is not trusted: {reason}.");
        }

        return certificate;
    }

    private static bool FixedTimeEquals(string a, string b) =>
        CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(a), Encoding.UTF8.GetBytes(b));

    private static RpcException Refuse(ILogger logger, ServerCallContext context, StatusCode code, string detail)
    {
        LogRefused(logger, context.Method, code, detail);
        return new RpcException(new Status(code, detail));
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Call {Method} refused with {Code}: {Detail}")]
    private static partial void LogRefused(ILogger logger, string method, StatusCode code, string detail);
}
