using FedRebasin.Contracts.V1;
using FedRebasin.Data;
using FedRebasin.Tests.Shared;
using Grpc.Core;

namespace FedRebasin.Client.Tests;

/// <summary>Validation of the client's TLS settings; every message names the setting.</summary>
public sealed class ClientTlsOptionsTests : IDisposable
{
    private static readonly Uri s_https = new("https://127.0.0.1:5001");
    private readonly TestPki _pki = new();
    private readonly TestAuthority _ca;

    public ClientTlsOptionsTests() => _ca = _pki.CreateAuthority("main");

    public void Dispose() => _pki.Dispose();

    [Fact]
    public void Validate_CaAndClientCertificate_Succeeds()
    {
        var (certificate, key) = _ca.IssueClient("c-1");
        var options = Options(s_https, ca: _ca.CertificatePath, certificate: certificate, key: key);

        options.Validate();
        using var channel = ClientChannel.Create(options);

        Assert.Equal(s_https.Authority, channel.Target);
    }

    [Fact]
    public void Validate_TlsSettingsWithHttpAddress_NameThem()
    {
        var (certificate, key) = _ca.IssueClient("c-1");
        var options = Options(new Uri("http://127.0.0.1:5000"), ca: _ca.CertificatePath, certificate: certificate, key: key);

        var e = Assert.Throws<ArgumentException>(options.Validate);

        Assert.Contains("CaCertificatePath needs an https CoordinatorAddress", e.Message, StringComparison.Ordinal);
        Assert.Contains("ClientCertificatePath needs an https CoordinatorAddress", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_MissingFiles_NameThem()
    {
        var options = Options(s_https, ca: _pki.PathOf("none-ca.pem"), certificate: _pki.PathOf("none.crt.pem"), key: _pki.PathOf("none.key.pem"));

        var e = Assert.Throws<ArgumentException>(options.Validate);

        Assert.Contains("CaCertificatePath must name an existing file", e.Message, StringComparison.Ordinal);
        Assert.Contains("ClientCertificatePath must name an existing file", e.Message, StringComparison.Ordinal);
        Assert.Contains("ClientKeyPath must name an existing file", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_CertificateWithoutKey_NamesClientKeyPath()
    {
        var (certificate, _) = _ca.IssueClient("c-1");

        var e = Assert.Throws<ArgumentException>(Options(s_https, certificate: certificate).Validate);

        Assert.Contains("ClientKeyPath is required with ClientCertificatePath", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_KeyWithoutCertificate_NamesClientCertificatePath()
    {
        var (_, key) = _ca.IssueClient("c-1");

        var e = Assert.Throws<ArgumentException>(Options(s_https, key: key).Validate);

        Assert.Contains("ClientCertificatePath is required with ClientKeyPath", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_KeyOfAnotherCertificate_NamesBoth()
    {
        var (certificate, _) = _ca.IssueClient("c-1");
        var (_, otherKey) = _ca.IssueClient("c-2");

        var e = Assert.Throws<ArgumentException>(Options(s_https, certificate: certificate, key: otherKey).Validate);

        Assert.Contains("ClientCertificatePath", e.Message, StringComparison.Ordinal);
        Assert.Contains("could not be loaded with ClientKeyPath", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_CaFileWithoutCertificates_NamesCaCertificatePath()
    {
        string empty = _pki.PathOf("empty.pem");
        File.WriteAllText(empty, "nothing\n");

        var e = Assert.Throws<ArgumentException>(Options(s_https, ca: empty).Validate);

        Assert.Contains("CaCertificatePath", e.Message, StringComparison.Ordinal);
        Assert.Contains("holds no PEM certificate", e.Message, StringComparison.Ordinal);
    }

    private static ClientOptions Options(Uri address, string? ca = null, string? certificate = null, string? key = null) => new()
    {
        CoordinatorAddress = address,
        ClientId = "c-1",
        CaCertificatePath = ca,
        ClientCertificatePath = certificate,
        ClientKeyPath = key,
    };
}

/// <summary>Client workers against a loopback coordinator serving TLS or mutual TLS.</summary>
[Trait("Category", "Integration")]
public sealed class ClientTlsIntegrationTests : IDisposable
{
    private static readonly ImageDataset s_dataset = SyntheticData.Create(600, 1, 8, 8, 4, seed: 1);
    private readonly TestPki _pki = new();
    private readonly TestAuthority _ca;

    public ClientTlsIntegrationTests() => _ca = _pki.CreateAuthority("main");

    public void Dispose() => _pki.Dispose();

    [Fact]
    public async Task RunAsync_ThreeClientsOverTls_TwoRoundsDone()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var coordinator = await StartAsync(mutual: false);

        long[] finals = await RunAllAsync(Enumerable.Range(0, 3).Select(i => Worker(coordinator.Address, i, o => o.CaCertificatePath = _ca.CertificatePath)), ct);

        Assert.All(finals, f => Assert.Equal(2, f));
        await AssertDoneAsync(coordinator);
    }

    [Fact]
    public async Task RunAsync_ThreeClientsOverMutualTlsWithTokens_TwoRoundsDone()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var coordinator = await StartAsync(mutual: true, new Dictionary<string, string?>
        {
            ["Coordinator:Tokens:client-0"] = "t0",
            ["Coordinator:Tokens:client-1"] = "t1",
            ["Coordinator:Tokens:client-2"] = "t2",
        });

        long[] finals = await RunAllAsync(Enumerable.Range(0, 3).Select(i => Worker(coordinator.Address, i, o =>
        {
            var (certificate, key) = _ca.IssueClient(o.ClientId);
            o.CaCertificatePath = _ca.CertificatePath;
            o.ClientCertificatePath = certificate;
            o.ClientKeyPath = key;
            o.Token = $"t{i}";
        })), ct);

        Assert.All(finals, f => Assert.Equal(2, f));
        await AssertDoneAsync(coordinator, token: "t0");
    }

    [Fact]
    public async Task RunAsync_TrustingAnotherCa_Fails()
    {
        var ct = TestContext.Current.CancellationToken;
        var other = _pki.CreateAuthority("other");
        await using var coordinator = await StartAsync(mutual: false);
        var worker = Worker(coordinator.Address, 0, o => o.CaCertificatePath = other.CertificatePath);

        var e = await Assert.ThrowsAsync<RpcException>(() => worker.RunAsync(ct));

        Assert.True(e.StatusCode is StatusCode.Internal or StatusCode.Unavailable, e.ToString());
        Assert.Contains("SSL", e.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RunAsync_PlaintextAgainstTls_Fails()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var coordinator = await StartAsync(mutual: false);
        var plain = new UriBuilder(coordinator.Address) { Scheme = Uri.UriSchemeHttp }.Uri;

        var e = await Assert.ThrowsAsync<RpcException>(() => Worker(plain, 0).RunAsync(ct));

        Assert.True(e.StatusCode is StatusCode.Unavailable or StatusCode.Internal, e.ToString());
    }

    [Fact]
    public async Task RunAsync_MutualTlsWithoutCertificate_Refused()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var coordinator = await StartAsync(mutual: true);

        var e = await Assert.ThrowsAsync<RpcException>(() => Worker(coordinator.Address, 0, o => o.CaCertificatePath = _ca.CertificatePath).RunAsync(ct));

        Assert.True(e.StatusCode is StatusCode.Unavailable or StatusCode.Internal or StatusCode.Unauthenticated, e.ToString());
    }

    [Fact]
    public async Task RunAsync_CertificateOfAnotherClient_PermissionDeniedWithoutRetrying()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var coordinator = await StartAsync(mutual: true);
        var (certificate, key) = _ca.IssueClient("client-9");
        var worker = Worker(coordinator.Address, 0, o =>
        {
            o.CaCertificatePath = _ca.CertificatePath;
            o.ClientCertificatePath = certificate;
            o.ClientKeyPath = key;
            // A retry would take 30 s: the test's time bound shows PERMISSION_DENIED is not retried.
            o.Retry = new RetrySettings { BaseDelay = TimeSpan.FromSeconds(30), MaxDelay = TimeSpan.FromSeconds(30) };
        });

        var e = await Assert.ThrowsAsync<RpcException>(() => worker.RunAsync(ct).WaitAsync(TimeSpan.FromSeconds(20), ct));

        Assert.Equal(StatusCode.PermissionDenied, e.StatusCode);
    }

    private Task<LoopbackCoordinator> StartAsync(bool mutual, Dictionary<string, string?>? extra = null)
    {
        var (certificate, key) = _ca.IssueServer();
        var settings = new Dictionary<string, string?>
        {
            ["Coordinator:Tls:CertificatePath"] = certificate,
            ["Coordinator:Tls:KeyPath"] = key,
        };
        if (mutual)
        {
            settings["Coordinator:Tls:ClientCertificateAuthorityPath"] = _ca.CertificatePath;
        }

        foreach (var (name, value) in extra ?? [])
        {
            settings[name] = value;
        }

        return LoopbackCoordinator.StartAsync(settings);
    }

    /// <summary>Client <paramref name="index"/> of 3, with fast retries (none for the failure tests' single attempt).</summary>
    private static ClientWorker Worker(Uri address, int index, Action<ClientOptions>? configure = null)
    {
        var options = new ClientOptions
        {
            CoordinatorAddress = address,
            ClientId = $"client-{index}",
            Dataset = s_dataset,
            Partition = "iid",
            Clients = 3,
            ClientIndex = index,
            PartitionSeed = 11,
            Device = "cpu",
            CallTimeout = TimeSpan.FromSeconds(20),
            PollTimeout = TimeSpan.FromSeconds(10),
            Retry = new RetrySettings { MaxRetryAttempts = 2, BaseDelay = TimeSpan.FromMilliseconds(50), MaxDelay = TimeSpan.FromMilliseconds(200) },
        };
        configure?.Invoke(options);
        return new ClientWorker(options);
    }

    private static async Task<long[]> RunAllAsync(IEnumerable<ClientWorker> workers, CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(90));
        return await Task.WhenAll(workers.ToArray().Select(w => Task.Run(() => w.RunAsync(timeout.Token), timeout.Token)));
    }

    private async Task AssertDoneAsync(LoopbackCoordinator coordinator, string? token = null)
    {
        // The status call itself goes through the client's channel code, with a client certificate for mutual TLS.
        var (certificate, key) = _ca.IssueClient("observer");
        using var channel = ClientChannel.Create(new ClientOptions
        {
            CoordinatorAddress = coordinator.Address,
            ClientId = "observer",
            CaCertificatePath = _ca.CertificatePath,
            ClientCertificatePath = certificate,
            ClientKeyPath = key,
        });
        var status = await new Contracts.V1.Federation.FederationClient(channel).GetStatusAsync(
            new StatusRequest(), token is null ? null : [new("authorization", "Bearer " + token)], deadline: DateTime.UtcNow.AddSeconds(10), cancellationToken: TestContext.Current.CancellationToken);
        Assert.Equal(RunState.Done, status.State);
        Assert.Equal(2, status.Round);
    }
}
