using System.Globalization;
using System.Net;
using System.Net.Sockets;
using FedRebasin.Tests.Shared;

namespace FedRebasin.Cli.Tests;

/// <summary>The TLS flags of <c>fedrebasin coordinator</c> (--tls-cert, --tls-key, --client-ca) and <c>client</c> (--ca, --cert, --key).</summary>
public sealed class TlsCommandTests : IDisposable
{
    private readonly TestPki _pki = new();

    public void Dispose() => _pki.Dispose();

    [Fact]
    public void CoordinatorTlsFlags_Parsed()
    {
        var parse = CliApplication.BuildRootCommand(TextWriter.Null, TextWriter.Null)
            .Parse(["coordinator", "--tls-cert", "server.pem", "--tls-key", "server.key", "--client-ca", "clients-ca.pem"]);

        Assert.Empty(parse.Errors);
        Assert.Equal("server.pem", parse.GetValue<string?>("--tls-cert"));
        Assert.Equal("server.key", parse.GetValue<string?>("--tls-key"));
        Assert.Equal("clients-ca.pem", parse.GetValue<string?>("--client-ca"));
    }

    [Fact]
    public void ClientTlsFlags_Parsed()
    {
        var parse = CliApplication.BuildRootCommand(TextWriter.Null, TextWriter.Null)
            .Parse(["client", "--coordinator", "https://127.0.0.1:50051", "--client-id", "a", "--ca", "ca.pem", "--cert", "a.pem", "--key", "a.key"]);

        Assert.Empty(parse.Errors);
        Assert.Equal("ca.pem", parse.GetValue<string?>("--ca"));
        Assert.Equal("a.pem", parse.GetValue<string?>("--cert"));
        Assert.Equal("a.key", parse.GetValue<string?>("--key"));
    }

    [Fact]
    public void Coordinator_MissingCertificate_FailsNamingTheSetting()
    {
        var (code, _, error) = CliRunner.Run("coordinator", "--port", FreePort(), "--tls-cert", _pki.PathOf("missing.pem"), "--tls-key", _pki.PathOf("missing.key"));

        Assert.Equal(ExitCodes.Failure, code);
        Assert.Contains("Coordinator:Tls:CertificatePath must name an existing file", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Coordinator_ClientCaWithoutCertificate_FailsNamingTheSetting()
    {
        var ca = _pki.CreateAuthority("main");

        var (code, _, error) = CliRunner.Run("coordinator", "--port", FreePort(), "--client-ca", ca.CertificatePath);

        Assert.Equal(ExitCodes.Failure, code);
        Assert.Contains("Coordinator:Tls:ClientCertificateAuthorityPath needs Coordinator:Tls:CertificatePath", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Client_MissingCa_FailsNamingTheSetting()
    {
        var (code, _, error) = CliRunner.Run("client", "--coordinator", "https://127.0.0.1:1", "--client-id", "a", "--ca", _pki.PathOf("missing-ca.pem"));

        Assert.Equal(ExitCodes.Usage, code);
        Assert.Contains("CaCertificatePath must name an existing file", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Client_CertificateWithoutKey_FailsNamingTheSetting()
    {
        var (certificate, _) = _pki.CreateAuthority("main").IssueClient("a");

        var (code, _, error) = CliRunner.Run("client", "--coordinator", "https://127.0.0.1:1", "--client-id", "a", "--cert", certificate);

        Assert.Equal(ExitCodes.Usage, code);
        Assert.Contains("ClientKeyPath is required with ClientCertificatePath", error, StringComparison.Ordinal);
    }

    [Fact]
    [Trait("Category", "Integration")]
    public async Task CoordinatorAndTwoClients_OverMutualTls_RunTwoRounds()
    {
        // Arrange: a CA, the coordinator's certificate and one certificate per client.
        var ca = _pki.CreateAuthority("main");
        var (serverCertificate, serverKey) = ca.IssueServer();
        string port = FreePort();
        string outDirectory = _pki.PathOf("run");

        // Act: the coordinator and two clients, each a CLI invocation on its own thread.
        var coordinator = Task.Run(() => CliRunner.Run("coordinator", "--port", port, "--rounds", "2", "--dataset", "synthetic", "--model", "mlp",
            "--hidden", "32", "--min-clients", "2", "--local-epochs", "1", "--out", outDirectory,
            "--tls-cert", serverCertificate, "--tls-key", serverKey, "--client-ca", ca.CertificatePath));
        await Task.Delay(TimeSpan.FromSeconds(3), TestContext.Current.CancellationToken);
        var certificates = Enumerable.Range(0, 2).Select(i => ca.IssueClient($"c{i}")).ToArray();
        // c1 with c0's certificate is refused before the run starts (it needs both clients).
        var impostor = await Task.Run(() => CliRunner.Run("client", "--coordinator", $"https://127.0.0.1:{port}", "--client-id", "c1",
            "--dataset", "synthetic", "--clients", "2", "--client", "1",
            "--ca", ca.CertificatePath, "--cert", certificates[0].Certificate, "--key", certificates[0].Key), TestContext.Current.CancellationToken);
        var clients = Enumerable.Range(0, 2).Select(i =>
        {
            var (certificate, key) = certificates[i];
            return Task.Run(() => CliRunner.Run("client", "--coordinator", $"https://127.0.0.1:{port}", "--client-id", $"c{i}",
                "--dataset", "synthetic", "--clients", "2", "--client", i.ToString(CultureInfo.InvariantCulture),
                "--ca", ca.CertificatePath, "--cert", certificate, "--key", key));
        }).ToArray();
        await Task.WhenAll(clients.Append(coordinator)).WaitAsync(TimeSpan.FromMinutes(3), TestContext.Current.CancellationToken);

        // Assert
        Assert.Equal(ExitCodes.Failure, impostor.ExitCode);
        Assert.Contains("PermissionDenied", impostor.Error, StringComparison.Ordinal);
        Assert.Single(impostor.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        var coordinatorResult = await coordinator;
        Assert.True(coordinatorResult.ExitCode == 0, coordinatorResult.Error + coordinatorResult.Output);
        Assert.Contains("gRPC over mutual TLS", coordinatorResult.Output, StringComparison.Ordinal);
        Assert.Contains("Run done after round 2", coordinatorResult.Output, StringComparison.Ordinal);
        foreach (var client in clients)
        {
            var result = await client;
            Assert.True(result.ExitCode == 0, result.Error + result.Output);
            Assert.Contains("the run is over (final round 2)", result.Output, StringComparison.Ordinal);
        }

        Assert.True(File.Exists(Path.Combine(outDirectory, "final.safetensors")));
    }

    private static string FreePort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port.ToString(CultureInfo.InvariantCulture);
    }
}
