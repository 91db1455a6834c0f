using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using FedRebasin.Contracts.V1;
using Grpc.Core;

namespace FedRebasin.Benchmarks;

/// <summary>
/// <c>coordinator-memory</c> verb: the coordinator's peak resident memory while <c>--clients</c> (16) clients upload a
/// model of about <c>--megabytes</c> (50 MiB) at once, as a multiple of the model size. Target: peak ≤ 4 model sizes
/// (streaming aggregation, not one copy per client).
/// </summary>
/// <remarks>
/// <para>The coordinator is the real CLI (<c>dotnet fedrebasin.dll coordinator --port P</c>, built by this project's
/// ProjectReference; path baked in at build time, or <c>--cli</c>) in its own process, so only its memory counts;
/// settings go in as <c>FEDREBASIN_Coordinator__*</c> environment variables. Model: MLP 4096-h-h-10 (1×64×64 inputs,
/// two hidden layers of width h chosen for the size), one round.</para>
/// <para>Every client registers, polls its task and downloads the model (all at once); then the coordinator's VmRSS is
/// the baseline, and its VmHWM is reset (<c>/proc/PID/clear_refs</c> ← 5). All clients then upload the downloaded
/// bytes unchanged, at once. When the run reports the round's model version published (GetTask answers Done),
/// VmHWM is the peak. A 10 ms VmRSS sampler cross-checks it.</para>
/// </remarks>
internal static class CoordinatorMemoryBenchmark
{
    private const double Target = 4;
    private const int InputFeatures = 64 * 64;
    private const int Classes = 10;

    private sealed record Row(
        string Strategy,
        string? MaxConcurrentUploads,
        long ModelBytes,
        long Baseline,
        long StartupPeak,
        long Peak,
        bool PeakReset,
        long SampledUploads,
        long SampledClose,
        long After,
        double UploadSeconds,
        int Accepted,
        int Refused);

    public static int Run(string[] args) => RunAsync(args).GetAwaiter().GetResult();

    private static async Task<int> RunAsync(string[] args)
    {
        var options = new Options(args);
        int megabytes = options.GetInt("megabytes", 50);
        int clientCount = options.GetInt("clients", 16);
        string[] strategies = options.GetList("strategies", ["fedavg", "wm"]);
        string? cli = options.Has("cli") ? options.Get("cli", "") : typeof(CoordinatorMemoryBenchmark).Assembly
            .GetCustomAttributes<AssemblyMetadataAttribute>().FirstOrDefault(a => a.Key == "FedRebasinCliDll")?.Value;
        if (string.IsNullOrEmpty(cli) || !File.Exists(cli))
        {
            Console.Error.WriteLine($"The CLI (fedrebasin.dll) was not found at '{cli}'; build this project (it builds src/FedRebasin.Cli) or pass --cli PATH.");
            return 2;
        }

        // Experiments: extra environment variables for the coordinator process, e.g. "MALLOC_ARENA_MAX=2;DOTNET_GCgen0size=..."
        var extraEnvironment = options.Get("coordinator-env", "")
            .Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(p => p.Split('=', 2))
            .ToDictionary(p => p[0], p => p.Length > 1 ? p[1] : string.Empty, StringComparer.Ordinal);
        // Experiment: the clients' upload chunk size (the client worker's is 64 KiB).
        int chunkBytes = options.GetInt("upload-chunk-kib", FederationCalls.ChunkBytes / 1024) * 1024;
        // Diagnosis: a copy of the coordinator's /proc/PID/smaps after publication, per strategy, into this folder.
        string? smapsFolder = options.Has("smaps") ? options.Get("smaps", ".") : null;
        var (hasLimit, limitDefault) = FederationCalls.CoordinatorSetting("MaxConcurrentUploads");
        string? limit = options.Has("max-concurrent-uploads") ? options.Get("max-concurrent-uploads", "") : null;
        if (limit is not null && !hasLimit)
        {
            Console.Error.WriteLine("--max-concurrent-uploads: this coordinator build has no Coordinator:MaxConcurrentUploads setting.");
            return 2;
        }

        // Parameters of an MLP 4096-h-h-10: h² + (4096 + 1 + 1 + 10)·h + 10.
        double parameters = megabytes * 1048576.0 / 4;
        int hidden = (int)Math.Round((-(InputFeatures + 12.0) + Math.Sqrt(Math.Pow(InputFeatures + 12.0, 2) + (4 * parameters))) / 2);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"Coordinator: {cli} (separate process); MLP 4096-{hidden}-{hidden}-10; {clientCount} clients upload at once in chunks of {chunkBytes / 1024} KiB; strategies {string.Join(", ", strategies)}."));
        Console.WriteLine(hasLimit
            ? $"Coordinator:MaxConcurrentUploads: {limit ?? limitDefault}{(limit is null ? " (the coordinator's default)" : " (--max-concurrent-uploads)")}."
            : "Coordinator:MaxConcurrentUploads: not in this coordinator build (every upload is received at once).");

        var rows = new List<Row>();
        foreach (string strategy in strategies)
        {
            var row = await RunOneAsync(cli, strategy, hidden, clientCount, hasLimit ? limit ?? limitDefault : null, limit, extraEnvironment, chunkBytes, smapsFolder);
            if (row is null)
            {
                return 1;
            }

            rows.Add(row);
        }

        Console.WriteLine();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"Coordinator memory, {clientCount} simultaneous uploads (model = the float32 safetensors payload; target: peak / model <= {Target}):"));
        Console.WriteLine("| strategy | max concurrent uploads | model | RSS after downloads (baseline) | peak during uploads + aggregation | peak / model | (peak - baseline) / model | sampled max until the last reply / while closing | RSS after publication | uploads (accepted/refused) | upload phase |");
        Console.WriteLine("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        foreach (var r in rows)
        {
            double model = r.ModelBytes;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {r.Strategy} | {r.MaxConcurrentUploads ?? "n/a"} | {FederationCalls.Mib(model)} | {FederationCalls.Mib(r.Baseline)} | {FederationCalls.Mib(r.Peak)}{(r.PeakReset ? "" : " (sampled: VmHWM could not be reset)")} | **{r.Peak / model:F1}** | {(r.Peak - r.Baseline) / model:F1} | {FederationCalls.Mib(r.SampledUploads)} / {FederationCalls.Mib(r.SampledClose)} | {FederationCalls.Mib(r.After)} | {r.Accepted}/{r.Refused} | {r.UploadSeconds:F1} s |"));
        }

        foreach (var r in rows)
        {
            double ratio = r.Peak / (double)r.ModelBytes;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{r.Strategy}: peak / model = {ratio:F1}, (peak - baseline) / model = {(r.Peak - r.Baseline) / (double)r.ModelBytes:F1}; target <= {Target}: {(ratio <= Target ? "met" : "MISSED")}"));
        }

        return 0;
    }

    private static async Task<Row?> RunOneAsync(
        string cli, string strategy, int hidden, int clientCount, string? limitUsed, string? limitOption, IReadOnlyDictionary<string, string> extraEnvironment, int chunkBytes, string? smapsFolder)
    {
        Console.WriteLine();
        Console.WriteLine($"== {strategy}");
        int port = FederationCalls.FreePort();
        var psi = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add(cli);
        psi.ArgumentList.Add("coordinator");
        psi.ArgumentList.Add("--port");
        psi.ArgumentList.Add(port.ToString(CultureInfo.InvariantCulture));
        var env = new Dictionary<string, string>
        {
            ["Strategy"] = strategy,
            ["Rounds"] = "1",
            ["MinClients"] = clientCount.ToString(CultureInfo.InvariantCulture),
            ["PollWindow"] = "00:00:05",
            ["TrainingDeadline"] = "00:30:00",
            ["Seed"] = "7",
            ["Model__Architecture"] = "mlp",
            ["Model__InputShape"] = "1,64,64",
            ["Model__Classes"] = Classes.ToString(CultureInfo.InvariantCulture),
            ["Model__Hidden__0"] = hidden.ToString(CultureInfo.InvariantCulture),
            ["Model__Hidden__1"] = hidden.ToString(CultureInfo.InvariantCulture),
        };
        if (limitOption is not null)
        {
            env["MaxConcurrentUploads"] = limitOption;
        }

        if (FederationCalls.CoordinatorSetting("UploadSlotTimeout").Exists)
        {
            // Queued uploads wait (this measures memory, not admission time-outs; wm folds take seconds each).
            env["UploadSlotTimeout"] = "00:30:00";
        }

        foreach (var (key, value) in env)
        {
            psi.Environment["FEDREBASIN_Coordinator__" + key] = value;
        }

        foreach (var (key, value) in extraEnvironment)
        {
            psi.Environment[key] = value;
            Console.WriteLine($"  coordinator environment (experiment): {key}={value}");
        }

        var log = new ConcurrentQueue<string>();
        void Keep(string? line)
        {
            if (line is null)
            {
                return;
            }

            log.Enqueue(line);
            while (log.Count > 40 && log.TryDequeue(out _))
            {
            }
        }

        using var process = Process.Start(psi) ?? throw new InvalidOperationException("Could not start the coordinator.");
        process.OutputDataReceived += (_, e) => Keep(e.Data);
        process.ErrorDataReceived += (_, e) => Keep(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var address = new Uri(string.Create(CultureInfo.InvariantCulture, $"http://127.0.0.1:{port}"));
        var clients = Enumerable.Range(0, clientCount)
            .Select(i => new FederationCalls.Client(address, string.Create(CultureInfo.InvariantCulture, $"client-{i:D2}")))
            .ToArray();
        // A run that hangs (e.g. a coordinator out of memory) is cut off instead of waiting for the calls' deadlines.
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(20));
        var ct = timeout.Token;
        using var stopHeartbeats = new CancellationTokenSource();
        Task[] heartbeats = [];
        try
        {
            var clock = Stopwatch.StartNew();
            if (!await WaitUntilServingAsync(clients[0], process))
            {
                Console.Error.WriteLine("The coordinator did not start; its last output:");
                Console.Error.WriteLine(string.Join(Environment.NewLine, log));
                return null;
            }

            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  coordinator (pid {process.Id}) serving after {clock.Elapsed.TotalSeconds:F1} s, RSS {FederationCalls.Mib(Status(process.Id, "VmRSS"))}"));
            await Task.WhenAll(clients.Select(c => FederationCalls.RegisterAsync(c, 1000, ct)));
            heartbeats = clients.Select(c => FederationCalls.HeartbeatLoopAsync(c, stopHeartbeats.Token)).ToArray();
            var tasks = await Task.WhenAll(clients.Select(async c => await FederationCalls.NextTrainTaskAsync(c, 0, ct)
                ?? throw new InvalidOperationException("The run ended before round 1.")));
            long modelBytes = tasks[0].ModelBytes;
            var downloads = await Task.WhenAll(clients.Select(async (c, i) =>
            {
                byte[] buffer = new byte[tasks[i].ModelBytes];
                await FederationCalls.DownloadAsync(c, tasks[i], buffer, ct);
                FederationCalls.CheckDigest(tasks[i], buffer);
                return buffer;
            }));
            byte[] payload = downloads[0];
            Array.Clear(downloads);
            GC.Collect();

            // Let the coordinator's allocator settle after the downloads, then take the baseline and reset the peak.
            await Task.Delay(1000, ct);
            long baseline = Status(process.Id, "VmRSS");
            long startupPeak = Status(process.Id, "VmHWM");
            bool reset = TryResetPeak(process.Id);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  model {modelBytes:N0} bytes ({FederationCalls.Mib(modelBytes)}); after {clientCount} registrations and downloads: RSS {FederationCalls.Mib(baseline)}, peak so far {FederationCalls.Mib(startupPeak)}; peak reset {(reset ? "ok" : "FAILED")}"));

            using var sampler = new RssSampler(process.Id);
            clock.Restart();
            var uploads = await Task.WhenAll(clients.Select((c, i) => Task.Run(async () =>
            {
                try
                {
                    var result = await FederationCalls.UploadAsync(c, tasks[i], payload, 1000, ct, chunkBytes);
                    return (Ok: result.Reply.Accepted, Seconds: result.ReplySeconds, Error: result.Reply.Accepted ? null : result.Reply.Message);
                }
                catch (RpcException e)
                {
                    return (Ok: false, Seconds: clock.Elapsed.TotalSeconds, Error: $"{e.StatusCode}: {e.Status.Detail}");
                }
            })));
            double uploadSeconds = clock.Elapsed.TotalSeconds;
            long sampledUploads = sampler.TakeMax();
            foreach (string error in uploads.Where(u => !u.Ok).Select(u => u.Error!).Distinct())
            {
                Console.WriteLine("  upload refused: " + error);
            }

            // Publication: with one round configured, GetTask answers Done once the round's model version is out.
            var next = await FederationCalls.NextTrainTaskAsync(clients[0], 1, ct);
            var status = await clients[0].Calls.GetStatusAsync(new StatusRequest(), deadline: DateTime.UtcNow.AddSeconds(30));
            double published = clock.Elapsed.TotalSeconds;
            long peak = Status(process.Id, "VmHWM");
            long after = Status(process.Id, "VmRSS");
            long sampledClose = sampler.Stop();
            if (smapsFolder is not null)
            {
                string copy = Path.Combine(smapsFolder, $"coordinator-{strategy}.smaps");
                File.Copy(string.Create(CultureInfo.InvariantCulture, $"/proc/{process.Id}/smaps"), copy, overwrite: true);
                Console.WriteLine("  smaps after publication: " + copy);
            }

            long sampled = Math.Max(sampledUploads, sampledClose);
            var replies = uploads.Where(u => u.Ok).Select(u => u.Seconds).Order().ToArray();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  uploads: {replies.Length} accepted, {uploads.Length - replies.Length} refused; replies after {(replies.Length > 0 ? replies[0] : double.NaN):F1} .. {(replies.Length > 0 ? replies[^1] : double.NaN):F1} s; round {status.Round} {status.State} after {published:F1} s ({(next is null ? "done" : "next task " + next.ModelVersion)})"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  peak {FederationCalls.Mib(peak)} = {peak / (double)modelBytes:F1} model sizes ((peak - baseline) / model = {(peak - baseline) / (double)modelBytes:F1}); sampled RSS max {FederationCalls.Mib(sampledUploads)} until the last reply, {FederationCalls.Mib(sampledClose)} from then to publication (closing: aggregate, build, publish); RSS after publication {FederationCalls.Mib(after)}"));
            return new Row(strategy, limitUsed, modelBytes, baseline, startupPeak, reset ? peak : sampled, reset, sampledUploads, sampledClose, after,
                uploadSeconds, replies.Length, uploads.Length - replies.Length);
        }
        finally
        {
            await stopHeartbeats.CancelAsync();
            await Task.WhenAll(heartbeats);
            foreach (var client in clients)
            {
                client.Dispose();
            }

            if (!process.HasExited)
            {
                process.Kill();
            }

            await process.WaitForExitAsync(CancellationToken.None);
        }
    }

    private static async Task<bool> WaitUntilServingAsync(FederationCalls.Client client, Process process)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromMinutes(3))
        {
            if (process.HasExited)
            {
                return false;
            }

            try
            {
                await client.Calls.GetStatusAsync(new StatusRequest(), deadline: DateTime.UtcNow.AddSeconds(5));
                return true;
            }
            catch (RpcException e) when (e.StatusCode is StatusCode.Unavailable or StatusCode.DeadlineExceeded or StatusCode.Internal)
            {
                await Task.Delay(250);
            }
        }

        return false;
    }

    /// <summary>A field of /proc/PID/status in bytes (VmRSS: resident now; VmHWM: peak resident since start or the last reset).</summary>
    private static long Status(int pid, string field)
    {
        foreach (string line in File.ReadLines(string.Create(CultureInfo.InvariantCulture, $"/proc/{pid}/status")))
        {
            if (line.StartsWith(field + ":", StringComparison.Ordinal))
            {
                string[] parts = line[(field.Length + 1)..].Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
                return long.Parse(parts[0], CultureInfo.InvariantCulture) * 1024;
            }
        }

        throw new InvalidOperationException($"No {field} in /proc/{pid}/status.");
    }

    /// <summary>Resets the process's VmHWM to its current RSS (Linux ≥ 4.0: write 5 to clear_refs; allowed for our own child).</summary>
    private static bool TryResetPeak(int pid)
    {
        try
        {
            File.WriteAllText(string.Create(CultureInfo.InvariantCulture, $"/proc/{pid}/clear_refs"), "5");
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>Samples a process's VmRSS every 10 ms on its own thread; <see cref="Stop"/> returns the largest value seen.</summary>
    private sealed class RssSampler : IDisposable
    {
        private readonly int _pid;
        private readonly Thread _thread;
        private volatile bool _stop;
        private long _max;

        public RssSampler(int pid)
        {
            _pid = pid;
            _thread = new Thread(Loop) { IsBackground = true, Name = "rss-sampler" };
            _thread.Start();
        }

        public long Stop()
        {
            _stop = true;
            _thread.Join();
            return Interlocked.Read(ref _max);
        }

        /// <summary>The largest value since the start or the last call; sampling goes on from zero.</summary>
        public long TakeMax() => Interlocked.Exchange(ref _max, 0);

        public void Dispose()
        {
            if (!_stop)
            {
                Stop();
            }
        }

        private void Loop()
        {
            while (!_stop)
            {
                try
                {
                    long rss = Status(_pid, "VmRSS");
                    if (rss > Interlocked.Read(ref _max))
                    {
                        Interlocked.Exchange(ref _max, rss);
                    }
                }
                catch (Exception e) when (e is IOException or InvalidOperationException)
                {
                    return;
                }

                Thread.Sleep(10);
            }
        }
    }
}
