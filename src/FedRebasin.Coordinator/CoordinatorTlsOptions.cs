using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace FedRebasin.Coordinator;

/// <summary>
/// TLS and mutual TLS of the coordinator's endpoint, bound from <c>Coordinator:Tls</c>. Empty (the default) means plain
/// HTTP/2. See docs/SECURITY.md.
/// </summary>
public sealed class CoordinatorTlsOptions
{
    /// <summary>The configuration section, below <see cref="CoordinatorOptions.SectionName"/>.</summary>
    public const string SectionName = CoordinatorOptions.SectionName + ":Tls";

    private const string ServerAuthOid = "1.3.6.1.5.5.7.3.1";

    // Trust roots of client certificates, loaded once per path and shared by the TLS handshake and the call checks.
    // A reference (not a tuple struct), so a racing first load can never be read half-written.
    private LoadedAuthorities? _clientAuthorities;

    /// <summary>
    /// The server certificate: a PEM file (the leaf first, then any intermediate CA certificates, which are sent in the
    /// handshake) or a PKCS#12 file (<c>.pfx</c> or <c>.p12</c>). Null or empty: no TLS.
    /// </summary>
    public string? CertificatePath { get; set; }

    /// <summary>The PEM private key of a PEM <see cref="CertificatePath"/> (may name the same file); not used with PKCS#12.</summary>
    public string? KeyPath { get; set; }

    /// <summary>Password of a PKCS#12 <see cref="CertificatePath"/> or of an encrypted PEM key; optional. Never logged.</summary>
    public string? CertificatePassword { get; set; }

    /// <summary>
    /// PEM bundle of the CA certificates that issue client certificates (intermediates included). When set, mutual TLS
    /// is required: every connection must present a certificate that chains to one of them, and every call's
    /// <c>client_id</c> must equal the certificate's Common Name or one of its DNS names.
    /// </summary>
    public string? ClientCertificateAuthorityPath { get; set; }

    /// <summary>Whether the endpoint uses TLS (<see cref="CertificatePath"/> is set).</summary>
    public bool IsEnabled => !string.IsNullOrWhiteSpace(CertificatePath);

    /// <summary>Whether clients must present a certificate (<see cref="ClientCertificateAuthorityPath"/> is set).</summary>
    public bool RequiresClientCertificate => !string.IsNullOrWhiteSpace(ClientCertificateAuthorityPath);

    /// <summary>Adds a message naming the setting for every invalid TLS setting; loads the files to check them.</summary>
    internal static void Validate(CoordinatorTlsOptions? tls, ICollection<string> errors)
    {
        if (tls is null)
        {
            return;
        }

        const string Prefix = SectionName + ":";
        if (!tls.IsEnabled)
        {
            if (!string.IsNullOrWhiteSpace(tls.KeyPath))
            {
                errors.Add($"{Prefix}{nameof(KeyPath)} is set but {Prefix}{nameof(CertificatePath)} is not.");
            }

            if (!string.IsNullOrEmpty(tls.CertificatePassword))
            {
                errors.Add($"{Prefix}{nameof(CertificatePassword)} is set but {Prefix}{nameof(CertificatePath)} is not.");
            }

            if (tls.RequiresClientCertificate)
            {
                errors.Add($"{Prefix}{nameof(ClientCertificateAuthorityPath)} needs {Prefix}{nameof(CertificatePath)}: mutual TLS requires TLS.");
            }

            return;
        }

        bool filesExist = true;
        void RequireFile(string setting, string path)
        {
            if (!File.Exists(path))
            {
                errors.Add($"{Prefix}{setting} must name an existing file, not '{path}'.");
                filesExist = false;
            }
        }

        RequireFile(nameof(CertificatePath), tls.CertificatePath!);
        if (IsPkcs12(tls.CertificatePath!))
        {
            if (!string.IsNullOrWhiteSpace(tls.KeyPath))
            {
                errors.Add($"{Prefix}{nameof(KeyPath)} is not used with a .pfx/.p12 {Prefix}{nameof(CertificatePath)} (the key is inside it); remove it.");
                filesExist = false;
            }
        }
        else if (string.IsNullOrWhiteSpace(tls.KeyPath))
        {
            errors.Add($"{Prefix}{nameof(KeyPath)} is required with a PEM {Prefix}{nameof(CertificatePath)}.");
            filesExist = false;
        }
        else
        {
            RequireFile(nameof(KeyPath), tls.KeyPath);
        }

        if (filesExist)
        {
            try
            {
                var (certificate, _) = tls.LoadServerCertificate();
                using (certificate)
                {
                    if (!certificate.HasPrivateKey)
                    {
                        errors.Add($"{Prefix}{nameof(CertificatePath)} '{tls.CertificatePath}' holds no private key.");
                    }

                    if (!AllowsServerAuthentication(certificate))
                    {
                        errors.Add($"{Prefix}{nameof(CertificatePath)} '{tls.CertificatePath}' is not valid for server authentication (its extended key usage lacks serverAuth, {ServerAuthOid}).");
                    }
                }
            }
            catch (Exception e) when (e is CryptographicException or ArgumentException or IOException or UnauthorizedAccessException)
            {
                // The messages of these exceptions name neither the password nor key material.
                errors.Add($"{Prefix}{nameof(CertificatePath)} '{tls.CertificatePath}' could not be loaded{(IsPkcs12(tls.CertificatePath!) ? "" : $" with {Prefix}{nameof(KeyPath)} '{tls.KeyPath}'")}: {e.Message}");
            }
        }

        if (tls.RequiresClientCertificate)
        {
            string path = tls.ClientCertificateAuthorityPath!;
            if (!File.Exists(path))
            {
                errors.Add($"{Prefix}{nameof(ClientCertificateAuthorityPath)} must name an existing file, not '{path}'.");
                return;
            }

            try
            {
                if (tls.LoadClientAuthorities().Count == 0)
                {
                    errors.Add($"{Prefix}{nameof(ClientCertificateAuthorityPath)} '{path}' holds no PEM certificate.");
                }
            }
            catch (Exception e) when (e is CryptographicException or IOException or UnauthorizedAccessException)
            {
                errors.Add($"{Prefix}{nameof(ClientCertificateAuthorityPath)} '{path}' could not be loaded: {e.Message}");
            }
        }
    }

    /// <summary>Loads the server certificate with its private key, and the other certificates of the file (intermediates).</summary>
    internal (X509Certificate2 Certificate, X509Certificate2Collection Chain) LoadServerCertificate()
    {
        string path = CertificatePath ?? throw new InvalidOperationException($"{SectionName}:{nameof(CertificatePath)} is not set.");
        string? password = string.IsNullOrEmpty(CertificatePassword) ? null : CertificatePassword;
        X509Certificate2 certificate;
        var all = new X509Certificate2Collection();
        if (IsPkcs12(path))
        {
            all = X509CertificateLoader.LoadPkcs12CollectionFromFile(path, password);
            certificate = all.FirstOrDefault(c => c.HasPrivateKey)
                ?? throw new CryptographicException("The PKCS#12 file holds no certificate with a private key.");
        }
        else
        {
            string keyPath = KeyPath ?? throw new InvalidOperationException($"{SectionName}:{nameof(KeyPath)} is not set.");
            certificate = password is null
                ? X509Certificate2.CreateFromPemFile(path, keyPath)
                : X509Certificate2.CreateFromEncryptedPemFile(path, password, keyPath);
            all.ImportFromPemFile(path);
            if (OperatingSystem.IsWindows())
            {
                // SChannel cannot use the ephemeral key of a PEM-loaded certificate; a PKCS#12 round trip persists it.
                using var ephemeral = certificate;
                certificate = X509CertificateLoader.LoadPkcs12(ephemeral.Export(X509ContentType.Pkcs12), null);
            }
        }

        var chain = new X509Certificate2Collection();
        foreach (var other in all)
        {
            if (!other.RawDataMemory.Span.SequenceEqual(certificate.RawDataMemory.Span))
            {
                chain.Add(other);
            }
        }

        return (certificate, chain);
    }

    /// <summary>The CA certificates of <see cref="ClientCertificateAuthorityPath"/>, loaded on first use.</summary>
    internal X509Certificate2Collection LoadClientAuthorities()
    {
        string path = ClientCertificateAuthorityPath ?? throw new InvalidOperationException($"{SectionName}:{nameof(ClientCertificateAuthorityPath)} is not set.");
        if (_clientAuthorities is { } cached && string.Equals(cached.Path, path, StringComparison.Ordinal))
        {
            return cached.Certificates;
        }

        var certificates = new X509Certificate2Collection();
        certificates.ImportFromPemFile(path);
        _clientAuthorities = new LoadedAuthorities(path, certificates);
        return certificates;
    }

    private sealed record LoadedAuthorities(string Path, X509Certificate2Collection Certificates);

    private static bool IsPkcs12(string path) =>
        path.EndsWith(".pfx", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".p12", StringComparison.OrdinalIgnoreCase);

    /// <summary>A certificate without an extended key usage extension may be used for anything.</summary>
    private static bool AllowsServerAuthentication(X509Certificate2 certificate)
    {
        foreach (var extension in certificate.Extensions)
        {
            if (extension is X509EnhancedKeyUsageExtension usage)
            {
                return usage.EnhancedKeyUsages.Cast<Oid>().Any(o => o.Value == ServerAuthOid);
            }
        }

        return true;
    }
}
