using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using FedRebasin.Contracts.V1;
using FedRebasin.Tests.Shared;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.Extensions.Options;

namespace FedRebasin.Coordinator.Tests;

/// <summary>Start-up validation of Coordinator:Tls; every message names the setting.</summary>
public sealed class CoordinatorTlsOptionsTests : IDisposable
{
    private readonly TestPki _pki = new();
    private readonly TestAuthority _ca;

    public CoordinatorTlsOptionsTests() => _ca = _pki.CreateAuthority("main");

    public void Dispose() => _pki.Dispose();

    [Fact]
    public void Validate_PemCertificateKeyAndClientCa_Succeeds()
    {
        var (certificate, key) = _ca.IssueServer();

        var result = Validate(new CoordinatorTlsOptions { CertificatePath = certificate, KeyPath = key, ClientCertificateAuthorityPath = _ca.CertificatePath });

        Assert.True(result.Succeeded, result.FailureMessage);
    }

    [Fact]
    public void Validate_PfxWithPassword_Succeeds()
    {
        string pfx = _ca.IssueServerPfx("pfx-pass-1");

        var result = Validate(new CoordinatorTlsOptions { CertificatePath = pfx, CertificatePassword = "pfx-pass-1" });

        Assert.True(result.Succeeded, result.FailureMessage);
    }

    [Fact]
    public void Validate_KeyPasswordAndClientCaWithoutCertificate_NameEachSetting()
    {
        var result = Validate(new CoordinatorTlsOptions { KeyPath = "server.key", CertificatePassword = "never-shown-7", ClientCertificateAuthorityPath = _ca.CertificatePath });

        Assert.True(result.Failed);
        Assert.Contains("Coordinator:Tls:KeyPath is set but Coordinator:Tls:CertificatePath is not", result.FailureMessage, StringComparison.Ordinal);
        Assert.Contains("Coordinator:Tls:CertificatePassword is set", result.FailureMessage, StringComparison.Ordinal);
        Assert.Contains("Coordinator:Tls:ClientCertificateAuthorityPath needs Coordinator:Tls:CertificatePath", result.FailureMessage, StringComparison.Ordinal);
        Assert.DoesNotContain("never-shown-7", result.FailureMessage, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_MissingFiles_NameEachSetting()
    {
        var result = Validate(new CoordinatorTlsOptions
        {
            CertificatePath = _pki.PathOf("nope.crt.pem"),
            KeyPath = _pki.PathOf("nope.key.pem"),
            ClientCertificateAuthorityPath = _pki.PathOf("nope-ca.pem"),
        });

        Assert.True(result.Failed);
        Assert.Contains("Coordinator:Tls:CertificatePath must name an existing file", result.FailureMessage, StringComparison.Ordinal);
        Assert.Contains("Coordinator:Tls:KeyPath must name an existing file", result.FailureMessage, StringComparison.Ordinal);
        Assert.Contains("Coordinator:Tls:ClientCertificateAuthorityPath must name an existing file", result.FailureMessage, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_PemCertificateWithoutKey_NamesKeyPath()
    {
        var (certificate, _) = _ca.IssueServer();

        var result = Validate(new CoordinatorTlsOptions { CertificatePath = certificate });

        Assert.True(result.Failed);
        Assert.Contains("Coordinator:Tls:KeyPath is required with a PEM Coordinator:Tls:CertificatePath", result.FailureMessage, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_KeyOfAnotherCertificate_NamesCertificatePath()
    {
        var (certificate, _) = _ca.IssueServer("one");
        var (_, otherKey) = _ca.IssueServer("two");

        var result = Validate(new CoordinatorTlsOptions { CertificatePath = certificate, KeyPath = otherKey });

        Assert.True(result.Failed);
        Assert.Contains("Coordinator:Tls:CertificatePath", result.FailureMessage, StringComparison.Ordinal);
        Assert.Contains("could not be loaded with Coordinator:Tls:KeyPath", result.FailureMessage, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_PfxWithWrongPassword_NamesCertificatePathWithoutThePassword()
    {
        string pfx = _ca.IssueServerPfx("right-pass-1");

        var result = Validate(new CoordinatorTlsOptions { CertificatePath = pfx, CertificatePassword = "wrong-pass-2" });

        Assert.True(result.Failed);
        Assert.Contains("Coordinator:Tls:CertificatePath", result.FailureMessage, StringComparison.Ordinal);
        Assert.DoesNotContain("wrong-pass-2", result.FailureMessage, StringComparison.Ordinal);
        Assert.DoesNotContain("right-pass-1", result.FailureMessage, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_PfxWithKeyPath_NamesKeyPath()
    {
        string pfx = _ca.IssueServerPfx("p");
        var (_, key) = _ca.IssueServer("other");

        var result = Validate(new CoordinatorTlsOptions { CertificatePath = pfx, CertificatePassword = "p", KeyPath = key });

        Assert.True(result.Failed);
        Assert.Contains("Coordinator:Tls:KeyPath is not used with a .pfx/.p12", result.FailureMessage, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_ClientCertificateAsServerCertificate_RefusedForServerAuthentication()
    {
        var (certificate, key) = _ca.IssueClient("a");

        var result = Validate(new CoordinatorTlsOptions { CertificatePath = certificate, KeyPath = key });

        Assert.True(result.Failed);
        Assert.Contains("not valid for server authentication", result.FailureMessage, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_ClientCaWithoutCertificates_NamesTheSetting()
    {
        var (certificate, key) = _ca.IssueServer();
        string empty = _pki.PathOf("empty.pem");
        File.WriteAllText(empty, "no certificates here\n");

        var result = Validate(new CoordinatorTlsOptions { CertificatePath = certificate, KeyPath = key, ClientCertificateAuthorityPath = empty });

        Assert.True(result.Failed);
        Assert.Contains("Coordinator:Tls:ClientCertificateAuthorityPath", result.FailureMessage, StringComparison.Ordinal);
        Assert.Contains("holds no PEM certificate", result.FailureMessage, StringComparison.Ordinal);
    }

    private static ValidateOptionsResult Validate(CoordinatorTlsOptions tls) =>
        new CoordinatorOptionsValidator().Validate(null, new CoordinatorOptions { Tls = tls });
}

/// <summary>The certificate checks of <see cref="CallAuthorizer"/>: chain to the configured CA, identity = client_id.</summary>
public sealed class CallAuthorizerTlsTests : IDisposable
{
    private readonly TestPki _pki = new();

    public void Dispose() => _pki.Dispose();

    [Fact]
    public void IsTrusted_OwnCaOnly()
    {
        var main = _pki.CreateAuthority("main");
        var other = _pki.CreateAuthority("other");
        using var ours = Load(main.IssueClient("a"));
        using var theirs = Load(other.IssueClient("a"));
        using var server = Load(main.IssueServer());
        var authorities = new X509Certificate2Collection();
        authorities.ImportFromPemFile(main.CertificatePath);

        Assert.True(CallAuthorizer.IsTrusted(ours, authorities, out _));
        Assert.False(CallAuthorizer.IsTrusted(theirs, authorities, out string reason));
        Assert.NotEmpty(reason);
        // A server certificate (EKU serverAuth only) is no client certificate.
        Assert.False(CallAuthorizer.IsTrusted(server, authorities, out _));
    }

    [Fact]
    public void HasIdentity_CommonNameOrDnsName_Ordinal()
    {
        var main = _pki.CreateAuthority("main");
        using var byName = Load(main.IssueClient("client-a"));
        using var byDns = Load(main.IssueClient("someone", "dns", "client-b", "client-c"));

        Assert.True(CallAuthorizer.HasIdentity(byName, "client-a"));
        Assert.False(CallAuthorizer.HasIdentity(byName, "Client-A"));
        Assert.False(CallAuthorizer.HasIdentity(byName, "client-b"));
        Assert.True(CallAuthorizer.HasIdentity(byDns, "client-b"));
        Assert.True(CallAuthorizer.HasIdentity(byDns, "client-c"));
        Assert.True(CallAuthorizer.HasIdentity(byDns, "someone"));
    }

    private static X509Certificate2 Load((string Certificate, string Key) files) => X509Certificate2.CreateFromPemFile(files.Certificate, files.Key);
}

/// <summary>A coordinator serving TLS (no client certificates) on loopback.</summary>
[Trait("Category", "Integration")]
public sealed class CoordinatorTlsTests : IDisposable
{
    private readonly TestPki _pki = new();
    private readonly TestAuthority _ca;
    private readonly TestAuthority _otherCa;

    public CoordinatorTlsTests()
    {
        _ca = _pki.CreateAuthority("main");
        _otherCa = _pki.CreateAuthority("other");
    }

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    public void Dispose() => _pki.Dispose();

    [Fact]
    public async Task OneRound_OverTls_RegisterDownloadUploadDone()
    {
        var (certificate, key) = _ca.IssueServer();
        await using var coordinator = await LoopbackCoordinator.StartAsync(Settings(certificate, key));
        Assert.Equal(Uri.UriSchemeHttps, coordinator.Address.Scheme);
        using var channel = TlsChannels.Create(coordinator.Address, _ca.CertificatePath);
        var client = new TestClient(new Contracts.V1.Federation.FederationClient(channel), "a");

        await client.RegisterAsync();
        var task = await client.WaitForTaskAsync(0);
        Assert.Equal(TaskReply.TaskOneofCase.Train, task.TaskCase);
        byte[] trained = await client.TrainAsync(task.Train, seed: 1);
        var reply = await client.UploadAsync(task.Train.Round, task.Train.ModelVersion, trained);
        var done = await client.WaitForTaskAsync(task.Train.Round);

        Assert.True(reply.Accepted);
        Assert.Equal(TaskReply.TaskOneofCase.Done, done.TaskCase);
    }

    [Fact]
    public async Task Pfx_WithPassword_ServesTls()
    {
        string pfx = _ca.IssueServerPfx("pfx-pass-3");
        await using var coordinator = await LoopbackCoordinator.StartAsync(new Dictionary<string, string?>
        {
            ["Coordinator:Tls:CertificatePath"] = pfx,
            ["Coordinator:Tls:CertificatePassword"] = "pfx-pass-3",
        });
        using var channel = TlsChannels.Create(coordinator.Address, _ca.CertificatePath);

        var status = await new Contracts.V1.Federation.FederationClient(channel).GetStatusAsync(new StatusRequest(), cancellationToken: Token);

        Assert.Equal(RunState.WaitingForClients, status.State);
    }

    [Fact]
    public async Task PlaintextClient_AgainstTlsCoordinator_FailsAndRegistersNothing()
    {
        var (certificate, key) = _ca.IssueServer();
        await using var coordinator = await LoopbackCoordinator.StartAsync(Settings(certificate, key));
        var plain = new UriBuilder(coordinator.Address) { Scheme = Uri.UriSchemeHttp }.Uri;
        using var plainChannel = GrpcChannel.ForAddress(plain);

        var error = await Assert.ThrowsAsync<RpcException>(() => Register(plainChannel, "a"));

        Assert.True(error.StatusCode is StatusCode.Unavailable or StatusCode.Internal, error.ToString());
        using var channel = TlsChannels.Create(coordinator.Address, _ca.CertificatePath);
        var status = await new Contracts.V1.Federation.FederationClient(channel).GetStatusAsync(new StatusRequest(), cancellationToken: Token);
        Assert.Equal(0, status.ClientsRegistered);
    }

    [Fact]
    public async Task Client_TrustingAnotherCa_FailsTheHandshake()
    {
        var (certificate, key) = _ca.IssueServer();
        await using var coordinator = await LoopbackCoordinator.StartAsync(Settings(certificate, key));
        using var channel = TlsChannels.Create(coordinator.Address, _otherCa.CertificatePath);

        var error = await Assert.ThrowsAsync<RpcException>(() => Register(channel, "a"));

        // Grpc.Net.Client reports a failed handshake as INTERNAL or UNAVAILABLE; the cause is the certificate check.
        Assert.True(error.StatusCode is StatusCode.Internal or StatusCode.Unavailable, error.ToString());
        Assert.True(TlsChannels.IsAuthenticationFailure(error), error.ToString());
    }

    [Fact]
    public async Task StartAsync_MissingCertificate_FailsNamingTheSetting()
    {
        var error = await Assert.ThrowsAsync<OptionsValidationException>(
            () => LoopbackCoordinator.StartAsync(Settings(_pki.PathOf("missing.pem"), _pki.PathOf("missing.key"))));

        Assert.Contains("Coordinator:Tls:CertificatePath must name an existing file", error.Message, StringComparison.Ordinal);
    }

    internal static Task<RegisterReply> Register(GrpcChannel channel, string clientId, Metadata? headers = null) =>
        new Contracts.V1.Federation.FederationClient(channel)
            .RegisterAsync(new RegisterRequest { ClientId = clientId, SampleCount = 10 }, headers, DateTime.UtcNow.AddSeconds(20), Token).ResponseAsync;

    private static Dictionary<string, string?> Settings(string certificate, string key) => new()
    {
        ["Coordinator:MinClients"] = "1",
        ["Coordinator:Rounds"] = "1",
        ["Coordinator:Tls:CertificatePath"] = certificate,
        ["Coordinator:Tls:KeyPath"] = key,
    };
}

/// <summary>A coordinator requiring client certificates (mutual TLS), alone and with bearer tokens.</summary>
[Trait("Category", "Integration")]
public sealed class MutualTlsTests : IDisposable
{
    private readonly TestPki _pki = new();
    private readonly TestAuthority _ca;
    private readonly TestAuthority _otherCa;

    public MutualTlsTests()
    {
        _ca = _pki.CreateAuthority("main");
        _otherCa = _pki.CreateAuthority("other");
    }

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    public void Dispose() => _pki.Dispose();

    [Fact]
    public async Task CertificateOfTheClient_Registers()
    {
        await using var coordinator = await StartAsync();
        using var channel = TlsChannels.Create(coordinator.Address, _ca.CertificatePath, _ca.IssueClient("a"));

        var reply = await CoordinatorTlsTests.Register(channel, "a");

        Assert.NotEmpty(reply.SessionId);
    }

    [Fact]
    public async Task CertificateWithTheClientIdAsDnsName_Registers()
    {
        await using var coordinator = await StartAsync();
        using var channel = TlsChannels.Create(coordinator.Address, _ca.CertificatePath, _ca.IssueClient("worker-7.example", "dns", "a"));

        var reply = await CoordinatorTlsTests.Register(channel, "a");

        Assert.NotEmpty(reply.SessionId);
    }

    [Fact]
    public async Task NoClientCertificate_Refused()
    {
        await using var coordinator = await StartAsync();
        using var channel = TlsChannels.Create(coordinator.Address, _ca.CertificatePath);

        var error = await Assert.ThrowsAsync<RpcException>(() => CoordinatorTlsTests.Register(channel, "a"));

        AssertRefused(error);
        await AssertNobodyRegisteredAsync(coordinator);
    }

    [Fact]
    public async Task CertificateFromAnotherCa_Refused()
    {
        await using var coordinator = await StartAsync();
        using var channel = TlsChannels.Create(coordinator.Address, _ca.CertificatePath, _otherCa.IssueClient("a"));

        var error = await Assert.ThrowsAsync<RpcException>(() => CoordinatorTlsTests.Register(channel, "a"));

        AssertRefused(error);
        await AssertNobodyRegisteredAsync(coordinator);
    }

    [Fact]
    public async Task CertificateOfB_UsedAsA_PermissionDenied()
    {
        await using var coordinator = await StartAsync();
        using var channel = TlsChannels.Create(coordinator.Address, _ca.CertificatePath, _ca.IssueClient("b"));

        var error = await Assert.ThrowsAsync<RpcException>(() => CoordinatorTlsTests.Register(channel, "a"));

        Assert.Equal(StatusCode.PermissionDenied, error.StatusCode);
        Assert.Contains("'a'", error.Status.Detail, StringComparison.Ordinal);
        // The same connection may still act as b.
        Assert.NotEmpty((await CoordinatorTlsTests.Register(channel, "b")).SessionId);
    }

    [Fact]
    public async Task GetStatus_AnyTrustedCertificate_Allowed()
    {
        await using var coordinator = await StartAsync();
        using var channel = TlsChannels.Create(coordinator.Address, _ca.CertificatePath, _ca.IssueClient("observer"));

        var status = await new Contracts.V1.Federation.FederationClient(channel).GetStatusAsync(new StatusRequest(), cancellationToken: Token);

        Assert.Equal(RunState.WaitingForClients, status.State);
    }

    [Fact]
    public async Task MutualTlsAndTokens_BothMustPass()
    {
        await using var coordinator = await StartAsync(new()
        {
            ["Coordinator:Tokens:a"] = "token-of-a",
            ["Coordinator:Tokens:b"] = "token-of-b",
        });
        using var channelA = TlsChannels.Create(coordinator.Address, _ca.CertificatePath, _ca.IssueClient("a"));
        using var channelB = TlsChannels.Create(coordinator.Address, _ca.CertificatePath, _ca.IssueClient("b"));
        using var noCertificate = TlsChannels.Create(coordinator.Address, _ca.CertificatePath);
        static Metadata Bearer(string token) => [new("authorization", "Bearer " + token)];

        // Both right.
        Assert.NotEmpty((await CoordinatorTlsTests.Register(channelA, "a", Bearer("token-of-a"))).SessionId);
        // Certificate right, token missing or wrong.
        var noToken = await Assert.ThrowsAsync<RpcException>(() => CoordinatorTlsTests.Register(channelA, "a"));
        var badToken = await Assert.ThrowsAsync<RpcException>(() => CoordinatorTlsTests.Register(channelA, "a", Bearer("guess")));
        var tokenOfB = await Assert.ThrowsAsync<RpcException>(() => CoordinatorTlsTests.Register(channelA, "a", Bearer("token-of-b")));
        // Token right, certificate of another client or none.
        var certificateOfB = await Assert.ThrowsAsync<RpcException>(() => CoordinatorTlsTests.Register(channelB, "a", Bearer("token-of-a")));
        var withoutCertificate = await Assert.ThrowsAsync<RpcException>(() => CoordinatorTlsTests.Register(noCertificate, "a", Bearer("token-of-a")));

        Assert.Equal(StatusCode.Unauthenticated, noToken.StatusCode);
        Assert.Equal(StatusCode.Unauthenticated, badToken.StatusCode);
        Assert.Equal(StatusCode.PermissionDenied, tokenOfB.StatusCode);
        Assert.Equal(StatusCode.PermissionDenied, certificateOfB.StatusCode);
        AssertRefused(withoutCertificate);
        foreach (var error in new[] { noToken, badToken, tokenOfB, certificateOfB })
        {
            Assert.DoesNotContain("token-of-", error.Status.Detail, StringComparison.Ordinal);
            Assert.DoesNotContain("guess", error.Status.Detail, StringComparison.Ordinal);
        }
    }

    /// <summary>
    /// Refused in the TLS handshake: with TLS 1.3 the client learns it only when the server closes the connection, so
    /// the call fails with UNAVAILABLE (INTERNAL on some stacks); a call that got past the handshake gets UNAUTHENTICATED.
    /// </summary>
    private static void AssertRefused(RpcException error) =>
        Assert.True(error.StatusCode is StatusCode.Unavailable or StatusCode.Internal or StatusCode.Unauthenticated, error.ToString());

    private async Task AssertNobodyRegisteredAsync(LoopbackCoordinator coordinator)
    {
        using var channel = TlsChannels.Create(coordinator.Address, _ca.CertificatePath, _ca.IssueClient("observer"));
        var status = await new Contracts.V1.Federation.FederationClient(channel).GetStatusAsync(new StatusRequest(), cancellationToken: Token);
        Assert.Equal(0, status.ClientsRegistered);
    }

    private Task<LoopbackCoordinator> StartAsync(Dictionary<string, string?>? extra = null)
    {
        var (certificate, key) = _ca.IssueServer();
        var settings = new Dictionary<string, string?>
        {
            ["Coordinator:MinClients"] = "2",
            ["Coordinator:Tls:CertificatePath"] = certificate,
            ["Coordinator:Tls:KeyPath"] = key,
            ["Coordinator:Tls:ClientCertificateAuthorityPath"] = _ca.CertificatePath,
        };
        foreach (var (name, value) in extra ?? [])
        {
            settings[name] = value;
        }

        return LoopbackCoordinator.StartAsync(settings);
    }
}

/// <summary>gRPC channels with TLS settings of the test's choosing (independent of the client worker's own code).</summary>
internal static class TlsChannels
{
    public static GrpcChannel Create(Uri address, string trustedCa, (string Certificate, string Key)? clientCertificate = null)
    {
        var policy = new X509ChainPolicy { TrustMode = X509ChainTrustMode.CustomRootTrust, RevocationMode = X509RevocationMode.NoCheck };
        policy.CustomTrustStore.ImportFromPemFile(trustedCa);
        var ssl = new SslClientAuthenticationOptions { CertificateChainPolicy = policy };
        if (clientCertificate is { } files)
        {
            ssl.ClientCertificateContext = SslStreamCertificateContext.Create(X509Certificate2.CreateFromPemFile(files.Certificate, files.Key), null, offline: true);
        }

        return GrpcChannel.ForAddress(address, new GrpcChannelOptions { HttpHandler = new SocketsHttpHandler { SslOptions = ssl } });
    }

    /// <summary>Whether the failure came from the TLS handshake (an <see cref="AuthenticationException"/> in the transport's exception).</summary>
    public static bool IsAuthenticationFailure(RpcException error)
    {
        for (Exception? e = error.Status.DebugException; e is not null; e = e.InnerException)
        {
            if (e is AuthenticationException)
            {
                return true;
            }
        }

        return false;
    }
}
