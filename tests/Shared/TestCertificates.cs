using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace FedRebasin.Tests.Shared;

/// <summary>
/// A throw-away PKI for TLS tests: CAs, a server certificate for 127.0.0.1/localhost and client certificates, made with
/// <see cref="CertificateRequest"/> (ECDSA P-256, fast) and written as PEM files to a temporary folder.
/// </summary>
internal sealed class TestPki : IDisposable
{
    private readonly List<TestAuthority> _authorities = [];

    /// <summary>The folder that holds every file written.</summary>
    public string Directory { get; } = System.IO.Directory.CreateTempSubdirectory("fedrebasin-pki-").FullName;

    /// <summary>A new self-signed CA; its certificate is written to <c>NAME-ca.pem</c>.</summary>
    public TestAuthority CreateAuthority(string name)
    {
        var authority = new TestAuthority(this, name);
        _authorities.Add(authority);
        return authority;
    }

    /// <summary>A path in <see cref="Directory"/>.</summary>
    public string PathOf(string fileName) => Path.Combine(Directory, fileName);

    public void Dispose()
    {
        foreach (var authority in _authorities)
        {
            authority.Dispose();
        }

        System.IO.Directory.Delete(Directory, recursive: true);
    }
}

/// <summary>One CA of a <see cref="TestPki"/>.</summary>
internal sealed class TestAuthority : IDisposable
{
    private const string ServerAuthOid = "1.3.6.1.5.5.7.3.1";
    private const string ClientAuthOid = "1.3.6.1.5.5.7.3.2";

    private readonly TestPki _pki;
    private readonly string _name;
    private readonly X509Certificate2 _certificate;

    public TestAuthority(TestPki pki, string name)
    {
        _pki = pki;
        _name = name;
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={name} test CA", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: true, hasPathLengthConstraint: false, pathLengthConstraint: 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, critical: true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, critical: false));
        var now = DateTimeOffset.UtcNow;
        _certificate = request.CreateSelfSigned(now.AddDays(-1), now.AddDays(30));
        CertificatePath = pki.PathOf($"{name}-ca.pem");
        File.WriteAllText(CertificatePath, _certificate.ExportCertificatePem());
    }

    /// <summary>The CA certificate (PEM).</summary>
    public string CertificatePath { get; }

    /// <summary>A server certificate for 127.0.0.1, ::1 and localhost: (certificate PEM, key PEM).</summary>
    public (string Certificate, string Key) IssueServer(string fileName = "server")
    {
        var names = new SubjectAlternativeNameBuilder();
        names.AddIpAddress(IPAddress.Loopback);
        names.AddIpAddress(IPAddress.IPv6Loopback);
        names.AddDnsName("localhost");
        return Issue("CN=localhost", names.Build(), ServerAuthOid, fileName);
    }

    /// <summary>A client certificate whose Common Name is <paramref name="clientId"/> (and, optionally, DNS names): (certificate PEM, key PEM).</summary>
    public (string Certificate, string Key) IssueClient(string clientId, string? fileName = null, params string[] dnsNames)
    {
        X509Extension? names = null;
        if (dnsNames.Length > 0)
        {
            var builder = new SubjectAlternativeNameBuilder();
            foreach (string dns in dnsNames)
            {
                builder.AddDnsName(dns);
            }

            names = builder.Build();
        }

        return Issue($"CN={clientId}", names, ClientAuthOid, fileName ?? $"client-{clientId}");
    }

    /// <summary>The server certificate and key as one PKCS#12 file protected by <paramref name="password"/>.</summary>
    public string IssueServerPfx(string password, string fileName = "server")
    {
        var (certificatePath, keyPath) = IssueServer(fileName);
        using var certificate = X509Certificate2.CreateFromPemFile(certificatePath, keyPath);
        string path = _pki.PathOf($"{_name}-{fileName}.pfx");
        File.WriteAllBytes(path, certificate.Export(X509ContentType.Pkcs12, password));
        return path;
    }

    public void Dispose() => _certificate.Dispose();

    private (string Certificate, string Key) Issue(string subject, X509Extension? names, string usage, string fileName)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: false, hasPathLengthConstraint: false, pathLengthConstraint: 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, critical: true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid(usage)], critical: false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(_certificate, includeKeyIdentifier: true, includeIssuerAndSerial: false));
        if (names is not null)
        {
            request.CertificateExtensions.Add(names);
        }

        var now = DateTimeOffset.UtcNow;
        byte[] serial = RandomNumberGenerator.GetBytes(12);
        serial[0] &= 0x7F;
        using var certificate = request.Create(_certificate, now.AddDays(-1), now.AddDays(10), serial);
        string certificatePath = _pki.PathOf($"{_name}-{fileName}.crt.pem");
        string keyPath = _pki.PathOf($"{_name}-{fileName}.key.pem");
        File.WriteAllText(certificatePath, certificate.ExportCertificatePem());
        File.WriteAllText(keyPath, key.ExportPkcs8PrivateKeyPem());
        return (certificatePath, keyPath);
    }
}
