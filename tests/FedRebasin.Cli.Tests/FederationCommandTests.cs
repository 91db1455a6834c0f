using System.Net;
using System.Net.Sockets;
using FedRebasin.Models;

namespace FedRebasin.Cli.Tests;

public sealed class FederationCommandTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("fedrebasin-fed-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    [Trait("Category", "Integration")]
    public async Task CoordinatorAndTwoClients_RunTwoRounds_WriteFinalModelAndExitZero()
    {
        // Arrange: a free loopback port for the coordinator.
        int port;
        using (var probe = new TcpListener(IPAddress.Loopback, 0))
        {
            probe.Start();
            port = ((IPEndPoint)probe.LocalEndpoint).Port;
        }

        string outDirectory = Path.Combine(_directory, "run");

        // Act: the coordinator and two clients, each a CLI invocation on its own thread.
        var coordinator = Task.Run(() => CliRunner.Run("coordinator", "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--rounds", "2", "--dataset", "synthetic", "--model", "mlp", "--hidden", "32", "--min-clients", "2", "--local-epochs", "1", "--out", outDirectory));
        await Task.Delay(TimeSpan.FromSeconds(3), TestContext.Current.CancellationToken);
        var clients = Enumerable.Range(0, 2).Select(i => Task.Run(() => CliRunner.Run("client", "--coordinator", $"http://127.0.0.1:{port}",
            "--client-id", $"c{i}", "--dataset", "synthetic", "--clients", "2", "--client", i.ToString(System.Globalization.CultureInfo.InvariantCulture)))).ToArray();
        var all = Task.WhenAll(clients.Append(coordinator));
        await all.WaitAsync(TimeSpan.FromMinutes(3), TestContext.Current.CancellationToken);

        // Assert
        var coordinatorResult = await coordinator;
        Assert.True(coordinatorResult.ExitCode == 0, coordinatorResult.Error + coordinatorResult.Output);
        Assert.Contains("Run done after round 2", coordinatorResult.Output, StringComparison.Ordinal);
        foreach (var client in clients)
        {
            var result = await client;
            Assert.True(result.ExitCode == 0, result.Error + result.Output);
            Assert.Contains("the run is over (final round 2)", result.Output, StringComparison.Ordinal);
        }

        using var model = ModelFile.Load(Path.Combine(outDirectory, "final.safetensors"));
        Assert.Equal("mlp 784-32-10", model.Spec.Describe());
    }

    [Fact]
    [Trait("Category", "Integration")]
    public async Task Client_WithMetricsPort_ServesPrometheusMetricsWhileItRuns()
    {
        int port = FreePort();
        int metricsPort = FreePort();
        string outDirectory = Path.Combine(_directory, "metrics-run");
        var coordinator = Task.Run(() => CliRunner.Run("coordinator", "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--rounds", "1", "--dataset", "synthetic", "--model", "mlp", "--hidden", "16", "--min-clients", "2", "--out", outDirectory));
        await Task.Delay(TimeSpan.FromSeconds(2), TestContext.Current.CancellationToken);
        var watched = Task.Run(() => CliRunner.Run("client", "--coordinator", $"http://127.0.0.1:{port}", "--client-id", "c0", "--dataset", "synthetic",
            "--clients", "2", "--client", "0", "--metrics-port", metricsPort.ToString(System.Globalization.CultureInfo.InvariantCulture)));

        // The round waits for a second client, so the first one is up and serving its metrics meanwhile.
        using var http = new HttpClient();
        string? text = null;
        for (int i = 0; i < 100 && text is null; i++)
        {
            try
            {
                text = await http.GetStringAsync(new Uri($"http://127.0.0.1:{metricsPort}/metrics"), TestContext.Current.CancellationToken);
            }
            catch (HttpRequestException)
            {
                await Task.Delay(100, TestContext.Current.CancellationToken);
            }
        }

        var other = Task.Run(() => CliRunner.Run("client", "--coordinator", $"http://127.0.0.1:{port}", "--client-id", "c1", "--dataset", "synthetic", "--clients", "2", "--client", "1"));
        await Task.WhenAll(coordinator, watched, other).WaitAsync(TimeSpan.FromMinutes(3), TestContext.Current.CancellationToken);

        Assert.NotNull(text);
        Assert.Contains("fedrebasin_client_rounds_trained_total", text, StringComparison.Ordinal);
        Assert.Equal(0, (await watched).ExitCode);
    }

    [Fact]
    [Trait("Category", "Integration")]
    public async Task Simulate_WithMetricsPort_ServesCoordinatorAndClientMetricsWhileItRuns()
    {
        int metricsPort = FreePort();
        var run = Task.Run(() => CliRunner.Run("simulate", "--dataset", "synthetic", "--hidden", "16", "--clients", "3", "--rounds", "3",
            "--strategies", "fedavg,wm", "--eval-examples", "200", "--out", Path.Combine(_directory, "sim"),
            "--metrics-port", metricsPort.ToString(System.Globalization.CultureInfo.InvariantCulture)));

        using var http = new HttpClient();
        string text = string.Empty;
        for (int i = 0; i < 300 && !run.IsCompleted && !(text.Contains("fedrebasin_rounds_completed_total", StringComparison.Ordinal) && text.Contains("fedrebasin_client_rounds_trained_total", StringComparison.Ordinal)); i++)
        {
            try
            {
                text = await http.GetStringAsync(new Uri($"http://127.0.0.1:{metricsPort}/metrics"), TestContext.Current.CancellationToken);
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }

            await Task.Delay(50, TestContext.Current.CancellationToken);
        }

        var result = await run.WaitAsync(TimeSpan.FromMinutes(3), TestContext.Current.CancellationToken);

        Assert.True(result.ExitCode == 0, result.Error + result.Output);
        Assert.Contains("fedrebasin_rounds_completed_total", text, StringComparison.Ordinal);
        Assert.Contains("fedrebasin_client_rounds_trained_total", text, StringComparison.Ordinal);
    }

    [Fact]
    [Trait("Category", "Integration")]
    public void Simulate_OneShot_PrintsTheRankingAgainstBestSingleAndEnsemble()
    {
        string folder = Path.Combine(_directory, "one-shot");

        var result = CliRunner.Run("simulate", "--dataset", "synthetic", "--hidden", "16", "--clients", "3", "--local-epochs", "1",
            "--strategies", "fedavg,wm", "--eval-examples", "200", "--one-shot", "--seed-trials", "2", "--validation", "100", "--out", folder);

        Assert.True(result.ExitCode == 0, result.Error + result.Output);
        Assert.Contains("the best of 2 matching seeds on 100 training examples", result.Output.ReplaceLineEndings(" ").Replace("  ", " ", StringComparison.Ordinal), StringComparison.Ordinal);
        foreach (string row in new[] { "fedavg", "wm", "mergemany", "best-single", "best single client", "ensemble", "client-mean" })
        {
            Assert.Contains(row, result.Output, StringComparison.Ordinal);
        }

        Assert.True(File.Exists(Path.Combine(folder, "one-shot.csv")));
        Assert.True(File.Exists(Path.Combine(folder, "interpolation.png")));
    }

    private static int FreePort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }

    [Theory]
    [InlineData("--coordinator must be an http", "client", "--coordinator", "127.0.0.1:1", "--client-id", "a")]
    [InlineData("give --rounds too", "coordinator", "--out", "x")]
    [InlineData("--dataset must be one of", "coordinator", "--dataset", "imagenet")]
    [InlineData("--seed-trials needs --one-shot", "simulate", "--dataset", "synthetic", "--seed-trials", "2", "--out", "x")]
    public void BadArguments_OneLine(string expected, params string[] args)
    {
        var (code, _, error) = CliRunner.Run(args);

        Assert.Equal(ExitCodes.Usage, code);
        Assert.Contains(expected, error, StringComparison.Ordinal);
    }
}
