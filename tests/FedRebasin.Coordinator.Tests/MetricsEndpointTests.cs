using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using FedRebasin.Contracts.V1;
using FedRebasin.Tests.Shared;
using Grpc.Core;

namespace FedRebasin.Coordinator.Tests;

/// <summary>
/// The Prometheus endpoint on its own plain HTTP port: the text is valid for promtool, it carries the round and refusal
/// counters, and a real Prometheus scrapes it.
/// </summary>
[Trait("Category", "Integration")]
[Collection(MetricsIsolation.Name)]
public sealed class MetricsEndpointTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("fedrebasin-metrics-").FullName;

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private static int FreePort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }

    /// <summary>Runs round 1 of three test clients with one duplicate upload, and returns the host.</summary>
    private static async Task<CoordinatorTestHost> RunOneRoundAsync(int metricsPort)
    {
        // The catalog's synthetic data (1x28x28, 10 classes) lets the coordinator evaluate, so the accuracy gauges exist.
        var host = await CoordinatorTestHost.StartAsync(new Dictionary<string, string?>
        {
            ["Coordinator:MetricsPort"] = metricsPort.ToString(CultureInfo.InvariantCulture),
            ["Coordinator:Model:InputShape"] = "1,28,28",
            ["Coordinator:Model:Classes"] = "10",
            ["Coordinator:Evaluation:Dataset"] = "synthetic",
            ["Coordinator:Evaluation:Examples"] = "200",
            // Repair on coordinator-held calibration data from the clients' moments, so the repair figures exist.
            ["Coordinator:Strategy"] = "wm+repair",
            ["Coordinator:Calibration:Dataset"] = "synthetic",
            ["Coordinator:Calibration:Examples"] = "200",
        });
        var clients = new[] { "a", "b", "c" }.Select(id => new TestClient(host.Client, id)).ToArray();
        foreach (var client in clients)
        {
            await client.RegisterAsync();
        }

        var train = (await clients[0].WaitForTaskAsync(0)).Train;
        foreach (var (client, seed) in clients.Select((c, i) => (c, i)))
        {
            byte[] payload = await client.TrainAsync(train, seed);
            await client.UploadAsync(train.Round, train.ModelVersion, payload, moments: TestClient.Moments(payload, seed));
            if (seed == 0)
            {
                await Assert.ThrowsAsync<RpcException>(() => client.UploadAsync(train.Round, train.ModelVersion, payload));
            }
        }

        for (int i = 0; i < 50 && (await host.Client.GetStatusAsync(new StatusRequest(), cancellationToken: Token)).Round < 2; i++)
        {
            await Task.Delay(100, Token);
        }

        return host;
    }

    [Fact]
    public async Task Metrics_AfterARound_PromtoolValidAndCountersPresent_NotOnTheGrpcPort()
    {
        Requirements.Require(File.Exists("/usr/bin/promtool"), "promtool (apt-get install prometheus)");
        int port = FreePort();
        await using var host = await RunOneRoundAsync(port);
        using var http = new HttpClient();

        string text = await http.GetStringAsync(new Uri($"http://127.0.0.1:{port}/metrics"), Token);
        var onGrpcPort = await Record.ExceptionAsync(() => http.GetStringAsync(new Uri(host.Address, "/metrics"), Token));

        Assert.Contains("fedrebasin_rounds_completed_total", text, StringComparison.Ordinal);
        Assert.Contains("reason=\"duplicate\"", text, StringComparison.Ordinal);
        Assert.Contains("fedrebasin_clients_registered", text, StringComparison.Ordinal);
        Assert.Contains("fedrebasin_round_duration_seconds_bucket", text, StringComparison.Ordinal);
        Assert.True(HasSeries(text, "fedrebasin_merge_stage_duration_seconds_bucket", "stage=\"align\""), text);
        Assert.True(HasSeries(text, "fedrebasin_merge_stage_duration_seconds_bucket", "stage=\"average\""), text);
        Assert.True(HasSeries(text, "fedrebasin_transfer_bytes_total", "direction=\"in\""), text);
        Assert.True(HasSeries(text, "fedrebasin_transfer_bytes_total", "direction=\"out\""), text);
        Assert.True(HasSeries(text, "fedrebasin_run_state", "state=\"training\""), text);
        Assert.True(HasSeries(text, "fedrebasin_model_accuracy", "model=\"shadow_fedavg\""), text);
        Assert.True(HasSeries(text, "fedrebasin_model_loss", "strategy=\"wm+repair\""), text);
        Assert.True(HasSeries(text, "fedrebasin_merge_stage_duration_seconds_bucket", "stage=\"repair\""), text);
        Assert.True(HasSeries(text, "fedrebasin_repair_variance_ratio", "when=\"before\""), text);
        Assert.True(HasSeries(text, "fedrebasin_repair_variance_ratio", "when=\"after\""), text);
        Assert.Contains("fedrebasin_merge_loss_barrier ", text, StringComparison.Ordinal);
        Assert.NotNull(onGrpcPort);
        // Every metric the Grafana dashboard queries is exported (histogram families by their _sum/_count/_bucket series).
        Assert.All(DeployFilesTests.DashboardMetricNames(), name => Assert.Contains(name, text, StringComparison.Ordinal));
        var (code, output) = await RunAsync("/usr/bin/promtool", ["check", "metrics"], text);
        Assert.True(code == 0, output);
    }

    [Fact]
    public async Task Prometheus_ScrapesTheCoordinator_AndEveryDashboardAndRecordingExpressionHasData()
    {
        Requirements.Require(File.Exists("/usr/bin/prometheus"), "prometheus (apt-get install prometheus)");
        int port = FreePort();
        int prometheusPort = FreePort();
        await using var host = await RunOneRoundAsync(port);
        string config = Path.Combine(_folder, "prometheus.yml");
        await File.WriteAllTextAsync(config, $"""
            global:
              scrape_interval: 1s
            scrape_configs:
              - job_name: fedrebasin
                static_configs:
                  - targets: ["127.0.0.1:{port}"]
            """, Token);
        var info = new ProcessStartInfo("/usr/bin/prometheus") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string arg in new[] { $"--config.file={config}", $"--storage.tsdb.path={Path.Combine(_folder, "data")}", $"--web.listen-address=127.0.0.1:{prometheusPort}" })
        {
            info.ArgumentList.Add(arg);
        }

        using var prometheus = Process.Start(info)!;
        prometheus.OutputDataReceived += (_, _) => { };
        prometheus.ErrorDataReceived += (_, _) => { };
        prometheus.BeginOutputReadLine();
        prometheus.BeginErrorReadLine();
        try
        {
            using var http = new HttpClient();
            var query = new Uri($"http://127.0.0.1:{prometheusPort}/api/v1/query?query=fedrebasin_rounds_completed_total");
            double? value = null;
            for (int i = 0; i < 60 && value is null; i++)
            {
                await Task.Delay(500, Token);
                try
                {
                    using var json = JsonDocument.Parse(await http.GetStringAsync(query, Token));
                    var results = json.RootElement.GetProperty("data").GetProperty("result");
                    if (results.GetArrayLength() > 0)
                    {
                        value = double.Parse(results[0].GetProperty("value")[1].GetString()!, CultureInfo.InvariantCulture);
                    }
                }
                catch (HttpRequestException)
                {
                    // Prometheus is still starting.
                }
            }

            Assert.Equal(1.0, value);

            // Every expression of the dashboard and of the recording rules returns data once rates have two samples.
            await Task.Delay(TimeSpan.FromSeconds(3), Token);
            foreach (string expression in DeployFilesTests.DashboardAndRecordingExpressions())
            {
                var uri = new Uri($"http://127.0.0.1:{prometheusPort}/api/v1/query?query={Uri.EscapeDataString(expression)}");
                using var json = JsonDocument.Parse(await http.GetStringAsync(uri, Token));
                Assert.True(json.RootElement.GetProperty("data").GetProperty("result").GetArrayLength() > 0, $"no data for: {expression}");
            }
        }
        finally
        {
            prometheus.Kill(entireProcessTree: true);
            await prometheus.WaitForExitAsync(CancellationToken.None);
        }
    }

    /// <summary>Whether a sample line of <paramref name="name"/> carries <paramref name="label"/> (labels come in any order).</summary>
    private static bool HasSeries(string text, string name, string label) =>
        text.Split('\n').Any(line => line.StartsWith(name + "{", StringComparison.Ordinal) && line.Contains(label, StringComparison.Ordinal));

    private static async Task<(int Code, string Output)> RunAsync(string file, string[] args, string input)
    {
        var info = new ProcessStartInfo(file) { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        using var process = Process.Start(info)!;
        await process.StandardInput.WriteAsync(input);
        process.StandardInput.Close();
        string output = await process.StandardOutput.ReadToEndAsync(Token) + await process.StandardError.ReadToEndAsync(Token);
        await process.WaitForExitAsync(Token);
        return (process.ExitCode, output);
    }
}

/// <summary>
/// Runs the metrics tests alone: an OpenTelemetry exporter listens to a meter name process-wide, so coordinators of
/// tests running in parallel would add their series to the one under test (in use there is one coordinator per process).
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class MetricsIsolation
{
    public const string Name = "metrics isolation";
}
