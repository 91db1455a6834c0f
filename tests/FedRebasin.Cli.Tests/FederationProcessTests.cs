using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using FedRebasin.Models;

namespace FedRebasin.Cli.Tests;

/// <summary>
/// The coordinator and clients as separate operating-system processes (the CLI next to this test assembly, run with
/// <c>dotnet fedrebasin.dll</c>): the coordinator is killed mid-run and started again with the same settings.
/// </summary>
[Trait("Category", "Integration")]
public sealed class FederationProcessTests : IDisposable
{
    private const int Rounds = 4;
    private readonly string _directory = Directory.CreateTempSubdirectory("fedrebasin-proc-").FullName;
    private readonly List<CliProcess> _processes = [];

    public void Dispose()
    {
        foreach (var process in _processes)
        {
            process.Dispose();
        }

        Directory.Delete(_directory, recursive: true);
    }

    [Fact]
    public async Task CoordinatorKilledMidRun_RestartResumesAndTheRunFinishesWithoutDoubleCounting()
    {
        var ct = TestContext.Current.CancellationToken;
        int port = FreePort();
        string outDirectory = Path.Combine(_directory, "run");
        string manifest = Path.Combine(outDirectory, "checkpoint.json");
        string[] coordinatorArgs =
        [
            "coordinator", "--port", port.ToString(CultureInfo.InvariantCulture), "--rounds", Rounds.ToString(CultureInfo.InvariantCulture),
            "--dataset", "synthetic", "--model", "mlp", "--hidden", "32", "--min-clients", "3", "--local-epochs", "1", "--out", outDirectory,
        ];
        var environment = new Dictionary<string, string>
        {
            ["FEDREBASIN_Coordinator__PollWindow"] = "00:00:02",
            ["FEDREBASIN_Coordinator__TickInterval"] = "00:00:00.100",
        };

        var first = Start(coordinatorArgs, environment);
        var clients = Enumerable.Range(0, 3).Select(i => Start(
            ["client", "--coordinator", $"http://127.0.0.1:{port}", "--client-id", $"c{i}", "--dataset", "synthetic", "--clients", "3", "--client", i.ToString(CultureInfo.InvariantCulture)],
            environment)).ToArray();

        // Kill the coordinator (SIGKILL, no shutdown) as soon as round 1 is checkpointed: round 2 is then open.
        string runId = await WaitForAsync(() => LastCompletedRound(manifest) >= 1 ? RunId(manifest) : null, first, ct);
        first.Kill();
        int roundAtKill = LastCompletedRound(manifest);
        var second = Start(coordinatorArgs, environment);

        int? secondExit = await second.WaitForExitAsync(TimeSpan.FromMinutes(4), ct);
        var clientExits = await Task.WhenAll(clients.Select(c => c.WaitForExitAsync(TimeSpan.FromMinutes(1), ct)));

        // On failure, show every process: a stuck round is usually explained by one client's log.
        string everything = $"exit codes: second coordinator {Show(secondExit)}, clients {string.Join(", ", clientExits.Select(Show))}\n" +
            $"--- first coordinator\n{first.Output}\n--- second coordinator\n{second.Output}\n" +
            string.Join('\n', clients.Select((c, i) => $"--- client c{i}\n{c.Output}"));
        Assert.True(secondExit == 0, everything);
        Assert.Contains($"Resumed run {runId} after round {roundAtKill}", second.Output, StringComparison.Ordinal);
        Assert.Contains($"Run done after round {Rounds}", second.Output, StringComparison.Ordinal);
        for (int i = 0; i < clients.Length; i++)
        {
            Assert.True(clientExits[i] == 0, everything);
            Assert.Contains($"the run is over (final round {Rounds})", clients[i].Output, StringComparison.Ordinal);
        }

        Assert.Equal(runId, RunId(manifest));
        Assert.Equal(Rounds, LastCompletedRound(manifest));
        for (int round = 1; round <= Rounds; round++)
        {
            // Every round merged each client exactly once, the resumed one included.
            using var audit = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(outDirectory, "audit", $"round-{round:D4}.json")));
            var ids = audit.RootElement.GetProperty("clients").EnumerateArray().Select(c => c.GetProperty("client_id").GetString()).ToList();
            Assert.Equal(["c0", "c1", "c2"], ids.Order(StringComparer.Ordinal));
            Assert.Equal((round - 1).ToString(CultureInfo.InvariantCulture), audit.RootElement.GetProperty("reference_version").GetString());
        }

        using var model = ModelFile.Load(Path.Combine(outDirectory, "final.safetensors"));
        Assert.Equal("mlp 784-32-10", model.Spec.Describe());
    }

    private static string Show(int? exitCode) => exitCode?.ToString(CultureInfo.InvariantCulture) ?? "still running";

    private static int LastCompletedRound(string manifest)
    {
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllBytes(manifest));
            return document.RootElement.GetProperty("rounds").GetProperty("last_completed_round").GetInt32();
        }
        catch (Exception e) when (e is IOException or JsonException)
        {
            return -1;
        }
    }

    private static string? RunId(string manifest)
    {
        using var document = JsonDocument.Parse(File.ReadAllBytes(manifest));
        return document.RootElement.GetProperty("run_id").GetString();
    }

    private static async Task<T> WaitForAsync<T>(Func<T?> probe, CliProcess watched, CancellationToken cancellationToken)
        where T : class
    {
        var stopwatch = Stopwatch.StartNew();
        while (stopwatch.Elapsed < TimeSpan.FromMinutes(2))
        {
            if (probe() is { } value)
            {
                return value;
            }

            Assert.False(watched.HasExited, watched.Output);
            await Task.Delay(50, cancellationToken);
        }

        throw new TimeoutException("The coordinator did not checkpoint round 1 in time:\n" + watched.Output);
    }

    private static int FreePort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }

    private CliProcess Start(string[] args, IReadOnlyDictionary<string, string> environment)
    {
        var process = CliProcess.Start(args, environment);
        _processes.Add(process);
        return process;
    }

    /// <summary>One <c>dotnet fedrebasin.dll ...</c> process with its output captured.</summary>
    private sealed class CliProcess : IDisposable
    {
        private readonly Process _process;
        private readonly StringBuilder _output = new();

        private CliProcess(Process process)
        {
            _process = process;
        }

        public bool HasExited => _process.HasExited;

        public string Output
        {
            get
            {
                lock (_output)
                {
                    return _output.ToString();
                }
            }
        }

        public static CliProcess Start(string[] args, IReadOnlyDictionary<string, string> environment)
        {
            var info = CliRunner.ProcessStart(args);
            foreach (var (key, value) in environment)
            {
                info.Environment[key] = value;
            }

            var process = new Process { StartInfo = info };
            var cli = new CliProcess(process);
            process.OutputDataReceived += (_, e) => cli.Append(e.Data);
            process.ErrorDataReceived += (_, e) => cli.Append(e.Data);
            process.Start();
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            return cli;
        }

        public void Kill() => _process.Kill(entireProcessTree: true);

        /// <summary>The exit code, or null when the process is still running after <paramref name="timeout"/>.</summary>
        public async Task<int?> WaitForExitAsync(TimeSpan timeout, CancellationToken cancellationToken)
        {
            using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            limit.CancelAfter(timeout);
            try
            {
                await _process.WaitForExitAsync(limit.Token);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                return null;
            }

            _process.WaitForExit();
            return _process.ExitCode;
        }

        public void Dispose()
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
            }

            _process.Dispose();
        }

        private void Append(string? line)
        {
            if (line is not null)
            {
                lock (_output)
                {
                    _output.AppendLine(line);
                }
            }
        }
    }
}
