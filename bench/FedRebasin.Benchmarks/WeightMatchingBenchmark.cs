using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using FedRebasin.Merging.Assignment;
using FedRebasin.Merging.Matching;
using FedRebasin.Models;
using FedRebasin.Models.Permutations;
using FedRebasin.Torch.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace FedRebasin.Benchmarks;

/// <summary>
/// <c>wm</c> verb: times <see cref="WeightMatching.Match"/> against a plain NumPy + SciPy implementation of Git Re-Basin's
/// <c>weight_matching</c> (<c>bench/python/wm_reference.py</c>) on the same two models and the same exported
/// permutation spec, measures the native memory a match needs (in a child process), and breaks our time down into
/// permuting, layout copies, matmuls, host copies, LAP and bookkeeping with an instrumented copy of the search loop.
/// </summary>
/// <remarks>
/// <para>For each model kind two models are built with different init seeds (or loaded with <c>--a</c>/<c>--b</c>),
/// written to temporary safetensors files together with <c>spec.json</c> (groups: name, size,
/// axes [tensor, axis, cost_excluded]; axes_to_groups; max_sweeps; tolerance; the sweep orders our search used).</para>
/// <para>Ours: one warm-up, then the best of <c>--repeats</c> runs of <see cref="WeightMatching.Match"/> with the same seed.
/// Reference: the same protocol in Python (<c>time.perf_counter</c> after loading), once with NumPy's sweep orders
/// (<c>np.random.default_rng(seed).permutation</c>, so permutations and sweep counts may differ from ours) and once
/// replaying our orders (same path: same sweeps, and the permutations should be identical).</para>
/// <para>Memory: a child process (<c>wm --child-a A --child-b B</c>) loads both files, resets its peak RSS
/// (<c>/proc/self/clear_refs</c> ← 5), runs one match and reports VmHWM minus the RSS right before, plus the maximum
/// of VmRSS sampled every 5 ms as a cross-check.</para>
/// </remarks>
internal static partial class WeightMatchingBenchmark
{
    private const double Target = 0.5;

    public static int Run(string[] args)
    {
        var options = new Options(args, "no-python", "no-memory", "no-replay", "keep", "child-profile");
        if (options.Has("child-a"))
        {
            return RunChild(options);
        }

        int repeats = Math.Max(1, options.GetInt("repeats", 3));
        int seed = options.GetInt("seed", 0);
        int maxSweeps = options.GetInt("max-sweeps", 100);
        string python = options.Get("python", "/usr/bin/python3");
        bool usePython = !options.Has("no-python");
        int threads = options.GetInt("threads", 0);
        string? script = usePython ? FindScript() : null;
        if (usePython && script is null)
        {
            Console.Error.WriteLine("bench/python/wm_reference.py not found (run from the repository); use --no-python to skip the reference.");
            return 2;
        }

        if (options.Has("a") != options.Has("b"))
        {
            Console.Error.WriteLine("--a and --b go together.");
            return 2;
        }

        TorchNativeLoader.EnsureLoaded();
        if (threads > 0)
        {
            torch.set_num_threads(threads);
        }

        var cases = new List<Case>();
        if (options.Has("a"))
        {
            cases.Add(Case.FromFiles(options.Get("a", ""), options.Get("b", "")));
        }
        else
        {
            var norm = ModelSpec.ParseNorm(options.Get("norm", "layer"));
            foreach (string kind in options.GetList("models", ["mlp", "resnet20x4"]))
            {
                cases.Add(Case.Generate(kind, norm, seed));
            }
        }

        string coreType = Environment.GetEnvironmentVariable("OPENBLAS_CORETYPE") ?? "(unset)";
        Console.WriteLine(string.Create(
            CultureInfo.InvariantCulture,
            $"wm benchmark: WeightMatching.Match vs NumPy+SciPy weight_matching, float64, seed {seed}, max sweeps {maxSweeps}, best of {repeats} (ours after 1 warm-up)"));
        Console.WriteLine(string.Create(
            CultureInfo.InvariantCulture,
            $"machine: {CpuModel()}, {Environment.ProcessorCount} cores, {torch.get_num_threads()} torch threads, load average {LoadAverage()}; OPENBLAS_CORETYPE={coreType} (passed to the reference unchanged)"));

        var rows = new List<Row>();
        bool ok = true;
        foreach (var c in cases)
        {
            try
            {
                var row = RunCase(c, seed, maxSweeps, repeats, options, python, script, threads);
                rows.Add(row);
                ok &= row.Consistent;
            }
            finally
            {
                c.Release(options.Has("keep"));
            }
        }

        PrintTables(rows);
        Console.WriteLine();
        Console.WriteLine("load average at the end: " + LoadAverage());
        return ok ? 0 : 1;
    }

    private static Row RunCase(Case c, int seed, int maxSweeps, int repeats, Options options, string python, string? script, int threads)
    {
        Console.WriteLine();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"== {c.Label}: {c.Description}, {c.Parameters:N0} parameters, files in {c.Directory}"));
        var spec = PermutationSpecs.For(c.A);
        var reference = c.A.state_dict();
        var model = c.B.state_dict();
        var matchOptions = new WeightMatchingOptions { Seed = seed, MaxSweeps = maxSweeps };

        // Ours: one warm-up, best of repeats.
        var result = WeightMatching.Match(spec, reference, model, matchOptions);
        double best = double.PositiveInfinity;
        for (int r = 0; r < repeats; r++)
        {
            long t0 = Stopwatch.GetTimestamp();
            result = WeightMatching.Match(spec, reference, model, matchOptions);
            double seconds = Stopwatch.GetElapsedTime(t0).TotalSeconds;
            best = Math.Min(best, seconds);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  ours run {r + 1}: {seconds:F3} s, {result.Sweeps} sweeps, objective {result.ObjectiveBefore:G10} -> {result.ObjectiveAfter:G10}"));
        }

        var ours = new Timing(best, result.Sweeps, result.ObjectiveBefore, result.ObjectiveAfter, Digest(spec, result.Permutations));

        // Instrumented copy of the search loop (same seed, so the same orders and the same path as Match).
        var profiler = new ProfiledMatching(spec, reference, model);
        Profile profile = profiler.Run(seed, maxSweeps);
        for (int r = 1; r < repeats; r++)
        {
            var again = profiler.Run(seed, maxSweeps);
            profile = again.Total < profile.Total ? again : profile;
        }

        bool profileSame = profile.Sweeps == ours.Sweeps && Digest(spec, profile.Permutations) == ours.Digest;
        Console.WriteLine(string.Create(
            CultureInfo.InvariantCulture,
            $"  profiled copy: {profile.Total:F3} s, {profile.Sweeps} sweeps, {(profileSame ? "same permutations as Match" : "DIFFERENT permutations from Match")}"));

        WriteSpecJson(Path.Combine(c.Directory, "spec.json"), spec, maxSweeps, matchOptions.Tolerance, profile.Orders);
        Timing? numpy = null;
        Timing? replay = null;
        if (script is not null)
        {
            numpy = RunReference(python, script, c, seed, repeats, "numpy");
            if (!options.Has("no-replay"))
            {
                replay = RunReference(python, script, c, seed, repeats, "csharp");
            }
        }

        Memory? memory = options.Has("no-memory") ? null : MeasureMemory(c, seed, maxSweeps, threads);
        long largestGroup = spec.Groups.Max(g => (long)g.Size);
        bool consistent = profileSame;
        foreach (var other in new[] { numpy, replay })
        {
            if (other is not null)
            {
                double rel = Math.Abs(other.ObjectiveBefore - ours.ObjectiveBefore) / Math.Max(1e-300, Math.Abs(ours.ObjectiveBefore));
                if (rel > 1e-9)
                {
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  MISMATCH: objective before differs (ours {ours.ObjectiveBefore:R}, reference {other.ObjectiveBefore:R})"));
                    consistent = false;
                }
            }
        }

        return new Row(c.Label, c.Parameters, c.ModelBytes, largestGroup * largestGroup * 8, spec.Groups.Count, ours, numpy, replay, memory, profile, consistent);
    }

    // ------------------------------------------------------------------ reference (Python)

    private static Timing RunReference(string python, string script, Case c, int seed, int repeats, string orders)
    {
        var psi = new ProcessStartInfo(python)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string arg in new[] { script, c.FileA, c.FileB, Path.Combine(c.Directory, "spec.json"), "--seed", seed.ToString(CultureInfo.InvariantCulture), "--repeats", repeats.ToString(CultureInfo.InvariantCulture), "--orders", orders })
        {
            psi.ArgumentList.Add(arg);
        }

        string stdout = RunProcess(psi, "wm_reference.py");
        using var doc = JsonDocument.Parse(stdout);
        var root = doc.RootElement;
        var timing = new Timing(
            root.GetProperty("seconds").GetDouble(),
            root.GetProperty("sweeps").GetInt32(),
            root.GetProperty("objective_before").GetDouble(),
            root.GetProperty("objective_after").GetDouble(),
            root.GetProperty("permutations_digest").GetString() ?? "",
            [root.GetProperty("parts").GetProperty("take").GetDouble(), root.GetProperty("parts").GetProperty("matmul").GetDouble(), root.GetProperty("parts").GetProperty("lap").GetDouble()]);
        string times = string.Join(", ", root.GetProperty("times").EnumerateArray().Select(t => t.GetDouble().ToString("F3", CultureInfo.InvariantCulture)));
        Console.WriteLine(string.Create(
            CultureInfo.InvariantCulture,
            $"  numpy+scipy ({orders} orders): runs [{times}] s, {timing.Sweeps} sweeps, objective {timing.ObjectiveBefore:G10} -> {timing.ObjectiveAfter:G10}; fastest run: take/moveaxis {timing.Parts![0]:F3} s, matmul {timing.Parts[1]:F3} s, LAP {timing.Parts[2]:F3} s; numpy {root.GetProperty("numpy").GetString()}, scipy {root.GetProperty("scipy").GetString()}, BLAS '{root.GetProperty("blas").GetString()}', env {root.GetProperty("env").GetRawText()}"));
        return timing;
    }

    private static string RunProcess(ProcessStartInfo psi, string what)
    {
        using var process = Process.Start(psi) ?? throw new InvalidOperationException("Could not start " + psi.FileName);
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        string stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException(string.Create(CultureInfo.InvariantCulture, $"{what} failed ({process.ExitCode}): {stderr.Result}"));
        }

        return stdout;
    }

    private static void WriteSpecJson(string path, PermutationSpec spec, int maxSweeps, double tolerance, List<string[]> orders)
    {
        using var stream = new FileStream(path, FileMode.Create, FileAccess.Write);
        using var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
        json.WriteStartObject();
        json.WriteStartArray("groups");
        foreach (var group in spec.Groups)
        {
            json.WriteStartObject();
            json.WriteString("name", group.Name);
            json.WriteNumber("size", group.Size);
            json.WriteStartArray("axes");
            foreach (var axis in group.Axes)
            {
                json.WriteStartArray();
                json.WriteStringValue(axis.Tensor);
                json.WriteNumberValue(axis.Axis);
                json.WriteBooleanValue(axis.CostExcluded);
                json.WriteEndArray();
            }

            json.WriteEndArray();
            json.WriteEndObject();
        }

        json.WriteEndArray();
        json.WriteStartObject("axes_to_groups");
        foreach (var (tensor, slots) in spec.AxesToGroups.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            json.WriteStartArray(tensor);
            foreach (string? slot in slots)
            {
                if (slot is null)
                {
                    json.WriteNullValue();
                }
                else
                {
                    json.WriteStringValue(slot);
                }
            }

            json.WriteEndArray();
        }

        json.WriteEndObject();
        json.WriteNumber("max_sweeps", maxSweeps);
        json.WriteNumber("tolerance", tolerance);
        json.WriteStartArray("csharp_orders");
        foreach (string[] order in orders)
        {
            json.WriteStartArray();
            foreach (string name in order)
            {
                json.WriteStringValue(name);
            }

            json.WriteEndArray();
        }

        json.WriteEndArray();
        json.WriteEndObject();
    }

    // ------------------------------------------------------------------ memory (child process)

    private static Memory MeasureMemory(Case c, int seed, int maxSweeps, int threads)
    {
        var match = RunChildProcess(c, seed, maxSweeps, threads, profile: false);
        var phases = RunChildProcess(c, seed, maxSweeps, threads, profile: true);
        var root = match.RootElement;
        long profileBefore = phases.RootElement.GetProperty("rss_before").GetInt64();
        var memory = new Memory(
            root.GetProperty("rss_before").GetInt64(),
            root.GetProperty("hwm_after").GetInt64(),
            root.GetProperty("hwm_reset").GetBoolean(),
            root.GetProperty("sampled_max").GetInt64(),
            root.GetProperty("samples").GetInt32(),
            root.GetProperty("float64_bytes").GetInt64(),
            root.GetProperty("managed_extra").GetInt64(),
            phases.RootElement.GetProperty("search_peak").GetInt64() - profileBefore,
            phases.RootElement.GetProperty("hwm_after").GetInt64() - profileBefore);
        match.Dispose();
        phases.Dispose();
        Console.WriteLine(string.Create(
            CultureInfo.InvariantCulture,
            $"  memory (child): RSS before {Mb(memory.RssBefore)}, peak {Mb(memory.HwmAfter)} (VmHWM, reset {(memory.HwmReset ? "ok" : "FAILED")}), sampled max {Mb(memory.SampledMax)} over {memory.Samples} samples, managed heap (GC.GetTotalMemory) peak extra {Mb(memory.ManagedExtra)}; profiled copy: peak extra {Mb(memory.SearchExtra)} through the search, {Mb(memory.WholeExtra)} including the final objectives and report"));
        return memory;
    }

    private static JsonDocument RunChildProcess(Case c, int seed, int maxSweeps, int threads, bool profile)
    {
        string self = Environment.ProcessPath ?? throw new InvalidOperationException("Unknown process path.");
        var psi = new ProcessStartInfo(self)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (string.Equals(Path.GetFileNameWithoutExtension(self), "dotnet", StringComparison.Ordinal))
        {
            psi.ArgumentList.Add(typeof(WeightMatchingBenchmark).Assembly.Location);
        }

        foreach (string arg in new[] { "wm", "--child-a", c.FileA, "--child-b", c.FileB, "--seed", seed.ToString(CultureInfo.InvariantCulture), "--max-sweeps", maxSweeps.ToString(CultureInfo.InvariantCulture), "--threads", threads.ToString(CultureInfo.InvariantCulture) })
        {
            psi.ArgumentList.Add(arg);
        }

        if (profile)
        {
            psi.ArgumentList.Add("--child-profile");
        }

        string stdout = RunProcess(psi, "wm child");
        return JsonDocument.Parse(stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)[^1]);
    }

    /// <summary>Hidden mode of the verb: one match in a fresh process, peak RSS measured around it; prints one JSON line.</summary>
    private static int RunChild(Options options)
    {
        TorchNativeLoader.EnsureLoaded();
        int threads = options.GetInt("threads", 0);
        if (threads > 0)
        {
            torch.set_num_threads(threads);
        }

        using var a = ModelFile.Load(options.Get("child-a", ""));
        using var b = ModelFile.Load(options.Get("child-b", ""));
        var spec = PermutationSpecs.For(a);
        var reference = a.state_dict();
        var model = b.state_dict();
        var matchOptions = new WeightMatchingOptions { Seed = options.GetInt("seed", 0), MaxSweeps = options.GetInt("max-sweeps", 100) };

        // Touch every kernel the match uses on tiny tensors, so thread pools and one-time native state are not counted.
        using (var scope = NewDisposeScope())
        {
            int w = options.GetInt("warm-size", 8);
            var x = randn([w, w], ScalarType.Float32).to_type(ScalarType.Float64);
            var y = x.index_select(1, arange((long)w).flip(0)).movedim([1], [0]).reshape(w, -1);
            _ = zeros([w, w], ScalarType.Float64).add_(x.matmul(y.t())).cpu().data<double>().ToArray();
            _ = LinearAssignment.SolveMaximize(new double[64], 8);
            _ = x.mul(y).sum().item<double>();
        }

        long float64Bytes = spec.Groups.SelectMany(g => g.CostAxes).Select(ax => ax.Tensor).Distinct(StringComparer.Ordinal)
            .Sum(name => 2 * reference[name].numel() * 8);
        GC.Collect();
        GC.WaitForPendingFinalizers();
        long before = ReadStatusBytes("VmRSS");
        bool reset = TryResetPeak();
        long sampledMax = before;
        long managedBefore = GC.GetTotalMemory(false);
        long managedMax = managedBefore;
        int samples = 0;
        using var stop = new ManualResetEventSlim(false);
        var sampler = new Thread(() =>
        {
            while (!stop.Wait(5))
            {
                sampledMax = Math.Max(sampledMax, ReadStatusBytes("VmRSS"));
                managedMax = Math.Max(managedMax, GC.GetTotalMemory(false));
                samples++;
            }
        })
        {
            IsBackground = true,
        };
        sampler.Start();
        long searchPeak = 0;
        double seconds;
        int sweeps;
        if (options.Has("child-profile"))
        {
            var profile = new ProfiledMatching(spec, reference, model).Run((int)matchOptions.Seed, matchOptions.MaxSweeps, () => searchPeak = ReadStatusBytes("VmHWM"), gemm: false);
            (seconds, sweeps) = (profile.Total, profile.Sweeps);
        }
        else
        {
            var result = WeightMatching.Match(spec, reference, model, matchOptions);
            (seconds, sweeps) = (result.Seconds, result.Sweeps);
        }

        long hwm = ReadStatusBytes("VmHWM");
        stop.Set();
        sampler.Join();
        Console.WriteLine(string.Create(
            CultureInfo.InvariantCulture,
            $"{{\"rss_before\": {before}, \"hwm_after\": {hwm}, \"hwm_reset\": {(reset ? "true" : "false")}, \"sampled_max\": {sampledMax}, \"samples\": {samples}, \"float64_bytes\": {float64Bytes}, \"managed_extra\": {managedMax - managedBefore}, \"search_peak\": {searchPeak}, \"seconds\": {seconds:R}, \"sweeps\": {sweeps}}}"));
        return 0;
    }

    /// <summary>Resets VmHWM to the current RSS (Linux ≥ 4.0: write 5 to clear_refs).</summary>
    private static bool TryResetPeak()
    {
        try
        {
            File.WriteAllText("/proc/self/clear_refs", "5");
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    private static long ReadStatusBytes(string field)
    {
        foreach (string line in File.ReadLines("/proc/self/status"))
        {
            if (line.StartsWith(field + ":", StringComparison.Ordinal))
            {
                string[] parts = line[(field.Length + 1)..].Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
                return long.Parse(parts[0], CultureInfo.InvariantCulture) * 1024;
            }
        }

        throw new InvalidOperationException($"No {field} in /proc/self/status.");
    }

    // ------------------------------------------------------------------ output

    private static void PrintTables(List<Row> rows)
    {
        Console.WriteLine();
        Console.WriteLine(string.Create(
            CultureInfo.InvariantCulture,
            $"Time (ours: WeightMatching.Match; numpy+scipy: wm_reference.py with NumPy's sweep orders; ratio = ours / reference, target <= {Target})"));
        Console.WriteLine();
        Console.WriteLine("| model | parameters | ours s | sweeps | s/sweep | objective after | numpy+scipy s | sweeps | s/sweep | objective after | ratio total | ratio per sweep |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var r in rows)
        {
            var o = r.Ours;
            string refCells = r.Numpy is { } n
                ? string.Create(CultureInfo.InvariantCulture, $"{n.Seconds:F3} | {n.Sweeps} | {n.PerSweep:F4} | {n.ObjectiveAfter:G8} | {o.Seconds / n.Seconds:F2} | {o.PerSweep / n.PerSweep:F2}")
                : "- | - | - | - | - | -";
            Console.WriteLine(string.Create(
                CultureInfo.InvariantCulture,
                $"| {r.Label} | {r.Parameters:N0} | {o.Seconds:F3} | {o.Sweeps} | {o.PerSweep:F4} | {o.ObjectiveAfter:G8} | {refCells} |"));
        }

        if (rows.Any(r => r.Replay is not null))
        {
            Console.WriteLine();
            Console.WriteLine("Same path: the reference replaying our sweep orders (objective before is the same in all runs)");
            Console.WriteLine();
            Console.WriteLine("| model | objective before | ours objective after | numpy orders: after (rel. to ours) | our orders: after | our orders: permutations | our orders: s (sweeps) | ratio total |");
            Console.WriteLine("|---|---:|---:|---:|---:|---|---:|---:|");
            foreach (var r in rows.Where(r => r.Replay is not null))
            {
                var o = r.Ours;
                var p = r.Replay!;
                string numpyCell = r.Numpy is { } n
                    ? string.Create(CultureInfo.InvariantCulture, $"{n.ObjectiveAfter:G10} ({(n.ObjectiveAfter - o.ObjectiveAfter) / Math.Abs(o.ObjectiveAfter):+0.0e+0;-0.0e+0;0})")
                    : "-";
                Console.WriteLine(string.Create(
                    CultureInfo.InvariantCulture,
                    $"| {r.Label} | {o.ObjectiveBefore:G10} | {o.ObjectiveAfter:G10} | {numpyCell} | {p.ObjectiveAfter:G10} | {(p.Digest == o.Digest ? "identical" : "differ")} | {p.Seconds:F3} ({p.Sweeps}) | {o.Seconds / p.Seconds:F2} |"));
            }
        }

        if (rows.Any(r => r.Memory is not null))
        {
            Console.WriteLine();
            Console.WriteLine("Memory of one match (child process; model = float32 state dict of one model; extra = peak RSS during Match - RSS just before, both models already loaded)");
            Console.WriteLine();
            Console.WriteLine("| model | model bytes | float64 copies of A and B (cost tensors) | largest cost matrix (n^2*8) | peak extra (VmHWM) | sampled peak extra | of which managed heap | peak extra / model | profiled copy: peak extra through the search / incl. final objectives + report |");
            Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
            foreach (var r in rows.Where(r => r.Memory is not null))
            {
                var m = r.Memory!;
                long extra = m.HwmReset ? m.HwmAfter - m.RssBefore : m.SampledMax - m.RssBefore;
                Console.WriteLine(string.Create(
                    CultureInfo.InvariantCulture,
                    $"| {r.Label} | {Mb(r.ModelBytes)} | {Mb(m.Float64Bytes)} | {Mb(r.LargestCostBytes)} | {(m.HwmReset ? Mb(extra) : "n/a")} | {Mb(m.SampledMax - m.RssBefore)} | {Mb(m.ManagedExtra)} | {(double)extra / r.ModelBytes:F2} | {Mb(m.SearchExtra)} / {Mb(m.WholeExtra)} |"));
            }
        }

        Console.WriteLine();
        Console.WriteLine("Where our time goes (instrumented copy of the search loop, same seed and path; fastest of --repeats runs after the timed ones)");
        Console.WriteLine();
        Console.WriteLine("| model | groups x sweeps | setup (float64) | permute (index_select) | layout (movedim+reshape) | matmul + add | host copy | LAP | bookkeeping | final objectives + per-group report | total | matmul GFLOP/s in the search | heaviest matmul alone: float64 / float32 GFLOP/s | search matmul FLOPs a contribution cache would skip |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var r in rows)
        {
            var p = r.Profile;
            Console.WriteLine(string.Create(
                CultureInfo.InvariantCulture,
                $"| {r.Label} | {r.Groups} x {p.Sweeps} | {Cell(p.Setup, p.Total)} | {Cell(p.Permute, p.Total)} | {Cell(p.Layout, p.Total)} | {Cell(p.Matmul, p.Total)} | {Cell(p.HostCopy, p.Total)} | {Cell(p.Lap, p.Total)} | {Cell(p.Bookkeeping, p.Total)} | {Cell(p.Final, p.Total)} | {p.Total:F3} s | {p.MatmulFlopsPerSecond / 1e9:F1} | {p.Gemm.Shape}: {p.Gemm.Float64:F1} / {p.Gemm.Float32:F1} | {100 * p.CacheableFraction:F0}% |"));
        }

        if (rows.Any(r => r.Numpy is not null))
        {
            Console.WriteLine();
            Console.WriteLine("Where the reference's time goes (fastest numpy-orders run)");
            Console.WriteLine();
            Console.WriteLine("| model | groups x sweeps | np.take + moveaxis/reshape | matmul (BLAS) | linear_sum_assignment | rest | total |");
            Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|");
            foreach (var r in rows.Where(r => r.Numpy is not null))
            {
                var n = r.Numpy!;
                double[] parts = n.Parts!;
                Console.WriteLine(string.Create(
                    CultureInfo.InvariantCulture,
                    $"| {r.Label} | {r.Groups} x {n.Sweeps} | {Cell(parts[0], n.Seconds)} | {Cell(parts[1], n.Seconds)} | {Cell(parts[2], n.Seconds)} | {Cell(n.Seconds - parts.Sum(), n.Seconds)} | {n.Seconds:F3} s |"));
            }
        }

        static string Cell(double seconds, double total) =>
            string.Create(CultureInfo.InvariantCulture, $"{seconds:F3} s ({100 * seconds / total:F0}%)");
    }

    private static string Mb(long bytes) => string.Create(CultureInfo.InvariantCulture, $"{bytes / 1048576.0:F1} MiB");

    private static string LoadAverage()
    {
        try
        {
            return string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
        }
        catch (IOException)
        {
            return "unknown";
        }
    }

    private static string CpuModel()
    {
        try
        {
            string? line = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal));
            return line is null ? "unknown CPU" : line[(line.IndexOf(':', StringComparison.Ordinal) + 1)..].Trim();
        }
        catch (IOException)
        {
            return "unknown CPU";
        }
    }

    /// <summary>First 16 hex digits of SHA-256 over every group's permutation (spec order, little-endian int64), as wm_reference.py computes it.</summary>
    private static string Digest(PermutationSpec spec, IReadOnlyDictionary<string, long[]> permutations)
    {
        var bytes = new List<byte>();
        foreach (var group in spec.Groups)
        {
            foreach (long v in permutations[group.Name])
            {
                bytes.AddRange(BitConverter.GetBytes(v));
            }
        }

        return Convert.ToHexStringLower(SHA256.HashData(bytes.ToArray()))[..16];
    }

    private static string? FindScript()
    {
        foreach (string start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                string candidate = Path.Combine(dir.FullName, "bench", "python", "wm_reference.py");
                if (File.Exists(candidate))
                {
                    return candidate;
                }
            }
        }

        return null;
    }

    [GeneratedRegex(@"^(mlp|vgg11|vgg16|resnet20)(?:x([0-9]+(?:\.[0-9]+)?))?$", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex KindPattern();

    private sealed record Timing(double Seconds, int Sweeps, double ObjectiveBefore, double ObjectiveAfter, string Digest, double[]? Parts = null)
    {
        public double PerSweep => Seconds / Sweeps;
    }

    private sealed record Memory(long RssBefore, long HwmAfter, bool HwmReset, long SampledMax, int Samples, long Float64Bytes, long ManagedExtra, long SearchExtra, long WholeExtra);

    private sealed record Row(
        string Label,
        long Parameters,
        long ModelBytes,
        long LargestCostBytes,
        int Groups,
        Timing Ours,
        Timing? Numpy,
        Timing? Replay,
        Memory? Memory,
        Profile Profile,
        bool Consistent);

    /// <summary>Two models of one kind, saved to a temporary folder (or the user's files).</summary>
    private sealed class Case
    {
        private readonly bool _ownsDirectory;

        private Case(string label, ClassifierModel a, ClassifierModel b, string directory, string fileA, string fileB, bool ownsDirectory)
        {
            Label = label;
            A = a;
            B = b;
            Directory = directory;
            FileA = fileA;
            FileB = fileB;
            _ownsDirectory = ownsDirectory;
            Parameters = a.parameters().Sum(p => p.numel());
            ModelBytes = a.state_dict().Values.Sum(t => t.numel() * t.ElementSize);
            Description = a.Spec.Describe();
        }

        public string Label { get; }

        public string Description { get; }

        public ClassifierModel A { get; }

        public ClassifierModel B { get; }

        public string Directory { get; }

        public string FileA { get; }

        public string FileB { get; }

        public long Parameters { get; }

        public long ModelBytes { get; }

        public static Case Generate(string kind, NormKind norm, int seed)
        {
            var match = KindPattern().Match(kind.Trim());
            if (!match.Success)
            {
                throw new ArgumentException($"Unknown model kind '{kind}' (mlp, resnet20x4, vgg11x1, ...).");
            }

            string architecture = match.Groups[1].Value.ToUpperInvariant() switch
            {
                "MLP" => ModelRegistry.Mlp,
                "VGG11" => ModelRegistry.Vgg11,
                "VGG16" => ModelRegistry.Vgg16,
                _ => ModelRegistry.ResNet20,
            };
            double width = match.Groups[2].Success ? double.Parse(match.Groups[2].Value, CultureInfo.InvariantCulture) : 1.0;
            var spec = architecture == ModelRegistry.Mlp
                ? ModelRegistry.DefaultSpec(architecture, 1, 28, 28, 10)
                : ModelRegistry.DefaultSpec(architecture, 1, 28, 28, 10, widthMultiplier: width, norm: norm);
            var a = ModelRegistry.Create(spec, seed: (2L * seed) + 1);
            var b = ModelRegistry.Create(spec, seed: (2L * seed) + 2);
            string directory = Path.Combine(Path.GetTempPath(), string.Create(CultureInfo.InvariantCulture, $"fedrebasin-wm-{kind}-{seed}-{Environment.ProcessId}"));
            System.IO.Directory.CreateDirectory(directory);
            string fileA = Path.Combine(directory, "a.safetensors");
            string fileB = Path.Combine(directory, "b.safetensors");
            ModelFile.Save(a, fileA);
            ModelFile.Save(b, fileB);
            return new Case(kind, a, b, directory, fileA, fileB, ownsDirectory: true);
        }

        public static Case FromFiles(string fileA, string fileB)
        {
            var a = ModelFile.Load(fileA);
            var b = ModelFile.Load(fileB);
            if (!a.Spec.Equals(b.Spec))
            {
                throw new ArgumentException($"--a is {a.Spec.Describe()} but --b is {b.Spec.Describe()}.");
            }

            string directory = Path.Combine(Path.GetTempPath(), string.Create(CultureInfo.InvariantCulture, $"fedrebasin-wm-files-{Environment.ProcessId}"));
            System.IO.Directory.CreateDirectory(directory);
            return new Case(Path.GetFileNameWithoutExtension(fileA) + " vs " + Path.GetFileNameWithoutExtension(fileB), a, b, directory, Path.GetFullPath(fileA), Path.GetFullPath(fileB), ownsDirectory: true);
        }

        public void Release(bool keepFiles)
        {
            A.Dispose();
            B.Dispose();
            if (_ownsDirectory && !keepFiles && System.IO.Directory.Exists(Directory))
            {
                System.IO.Directory.Delete(Directory, recursive: true);
            }
        }
    }

    /// <summary>Seconds spent in each part of one instrumented search.</summary>
    private sealed record Profile(
        double Setup,
        double Permute,
        double Layout,
        double Matmul,
        double HostCopy,
        double Lap,
        double Bookkeeping,
        double Final,
        double Total,
        int Sweeps,
        Dictionary<string, long[]> Permutations,
        List<string[]> Orders,
        double MatmulFlopsPerSecond,
        double CacheableFraction,
        GemmRates Gemm);

    /// <summary>Throughput of the heaviest cost matmul shape, (n×m)·(m×n)ᵀ, alone: float64 (what Match uses) and float32.</summary>
    private sealed record GemmRates(string Shape, double Float64, double Float32);

    /// <summary>
    /// A copy of WeightMatching's search loop (one restart, identity start, same seeded orders) with a stopwatch
    /// around each part. Kept in step with <c>src/FedRebasin.Merging/Matching/WeightMatching.cs</c> by hand; the
    /// benchmark checks that it reaches the same permutations as <see cref="WeightMatching.Match"/>.
    /// </summary>
    private sealed class ProfiledMatching(PermutationSpec spec, IReadOnlyDictionary<string, Tensor> reference, IReadOnlyDictionary<string, Tensor> model)
    {
        private readonly Dictionary<string, Tensor> _reference = new(StringComparer.Ordinal);
        private readonly Dictionary<string, Tensor> _model = new(StringComparer.Ordinal);
        private long _permute;
        private long _layout;
        private long _matmul;
        private long _hostCopy;
        private double _flops;
        private double _cacheableFlops;
        private bool _inSearch;
        private readonly Dictionary<string, int> _versions = new(StringComparer.Ordinal);
        private readonly Dictionary<(string Group, string Tensor), string> _lastInputs = [];

        /// <summary>One instrumented search plus what Match does after it.</summary>
        /// <param name="seed">Seed of the sweep orders, as <see cref="WeightMatchingOptions.Seed"/>.</param>
        /// <param name="maxSweeps">Sweep cap.</param>
        /// <param name="searchDone">Called between the search and the final objectives (memory probes).</param>
        /// <param name="gemm">Also time the heaviest matmul shape alone (allocates two extra operands).</param>
        public Profile Run(int seed, int maxSweeps, Action? searchDone = null, bool gemm = true)
        {
            const double Tolerance = 1e-12;
            long start = Stopwatch.GetTimestamp();
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            _permute = _layout = _matmul = _hostCopy = 0;
            _flops = _cacheableFlops = 0;
            _versions.Clear();
            _lastInputs.Clear();
            _inSearch = true;

            long t = Stopwatch.GetTimestamp();
            foreach (string name in spec.Groups.SelectMany(g => g.CostAxes).Select(a => a.Tensor).ToHashSet(StringComparer.Ordinal))
            {
                _reference[name] = reference[name].to_type(ScalarType.Float64);
                _model[name] = model[name].to_type(ScalarType.Float64);
            }

            double setup = Stopwatch.GetElapsedTime(t).TotalSeconds;
            long lap = 0;
            long bookkeeping = 0;
            var permutations = spec.Identity();
            var orders = new List<string[]>();
            var random = new Random(unchecked((int)(seed * 1_000_003L)));
            var groups = spec.Groups.ToArray();
            int sweep = 0;
            while (sweep < maxSweeps)
            {
                sweep++;
                bool progress = false;
                random.Shuffle(groups);
                orders.Add(groups.Select(g => g.Name).ToArray());
                foreach (var group in groups)
                {
                    double[] cost = CostMatrix(group, permutations);
                    int n = group.Size;
                    t = Stopwatch.GetTimestamp();
                    int[] assignment = LinearAssignment.SolveMaximize(cost, n);
                    long t2 = Stopwatch.GetTimestamp();
                    lap += t2 - t;
                    long[] current = permutations[group.Name];
                    double oldValue = 0;
                    double newValue = 0;
                    for (int i = 0; i < n; i++)
                    {
                        oldValue += cost[(i * n) + current[i]];
                        newValue += cost[(i * n) + assignment[i]];
                    }

                    if (newValue > oldValue + Tolerance)
                    {
                        progress = true;
                        permutations[group.Name] = Array.ConvertAll(assignment, c => (long)c);
                        _versions[group.Name] = _versions.GetValueOrDefault(group.Name) + 1;
                    }

                    bookkeeping += Stopwatch.GetTimestamp() - t2;
                }

                if (!progress)
                {
                    break;
                }
            }

            double searchFlops = _flops;
            double cacheable = _cacheableFlops / _flops;
            _inSearch = false;
            searchDone?.Invoke();

            // What Match does after the search: the objective (once per restart), the objective before, and one cost matrix per group for the report.
            t = Stopwatch.GetTimestamp();
            _ = Objective(permutations);
            _ = Objective(spec.Identity());
            foreach (var group in spec.Groups)
            {
                _ = CostMatrix(group, permutations);
            }

            double final = Stopwatch.GetElapsedTime(t).TotalSeconds;
            double total = Stopwatch.GetElapsedTime(start).TotalSeconds;
            _reference.Clear(); // the float64 copies die with the dispose scope
            _model.Clear();
            double f = Stopwatch.Frequency;
            return new Profile(setup, _permute / f, _layout / f, _matmul / f, _hostCopy / f, lap / f, bookkeeping / f, final, total, sweep, permutations, orders, searchFlops / (_matmul / f), cacheable, gemm ? Gemm(spec, reference) : new GemmRates("-", double.NaN, double.NaN));
        }

        /// <summary>GFLOP/s of the heaviest cost matmul of the spec, contiguous operands, best of 5 after a warm-up.</summary>
        private static GemmRates Gemm(PermutationSpec spec, IReadOnlyDictionary<string, Tensor> state)
        {
            var heaviest = spec.Groups.SelectMany(g => g.CostAxes.Select(a => (N: (long)g.Size, M: state[a.Tensor].numel() / g.Size)))
                .MaxBy(x => x.N * x.N * x.M);
            return new GemmRates(
                string.Create(CultureInfo.InvariantCulture, $"{heaviest.N}x{heaviest.M}"),
                Rate(ScalarType.Float64),
                Rate(ScalarType.Float32));

            double Rate(ScalarType type)
            {
                using var scope = NewDisposeScope();
                var a = randn([heaviest.N, heaviest.M], type);
                var b = randn([heaviest.N, heaviest.M], type);
                _ = a.matmul(b.t());
                double best = double.PositiveInfinity;
                for (int r = 0; r < 5; r++)
                {
                    long t0 = Stopwatch.GetTimestamp();
                    _ = a.matmul(b.t());
                    best = Math.Min(best, Stopwatch.GetElapsedTime(t0).TotalSeconds);
                }

                return 2.0 * heaviest.N * heaviest.N * heaviest.M / best / 1e9;
            }
        }

        private double[] CostMatrix(PermutationGroup group, Dictionary<string, long[]> permutations)
        {
            using var scope = NewDisposeScope();
            int n = group.Size;
            var total = zeros([n, n], ScalarType.Float64);
            foreach (var axis in group.CostAxes)
            {
                var a = _reference[axis.Tensor];
                long t0 = Stopwatch.GetTimestamp();
                var b = PermuteOtherAxes(axis.Tensor, axis.Axis, permutations);
                long t1 = Stopwatch.GetTimestamp();
                var a2 = a.movedim([axis.Axis], [0]).reshape(n, -1);
                var b2 = b.movedim([axis.Axis], [0]).reshape(n, -1);
                long t2 = Stopwatch.GetTimestamp();
                total.add_(a2.matmul(b2.t()));
                long t3 = Stopwatch.GetTimestamp();
                _permute += t1 - t0;
                _layout += t2 - t1;
                _matmul += t3 - t2;
                double flops = 2.0 * n * n * (a2.numel() / n);
                _flops += flops;
                if (_inSearch)
                {
                    // Would a cache of this contribution, keyed by the other groups' permutations on the tensor, have hit?
                    string inputs = string.Join(',', spec.AxesToGroups[axis.Tensor].Select((g, k) => k == axis.Axis || g is null ? "-" : _versions.GetValueOrDefault(g).ToString(CultureInfo.InvariantCulture)));
                    if (_lastInputs.TryGetValue((group.Name, axis.Tensor), out string? last) && last == inputs)
                    {
                        _cacheableFlops += flops;
                    }

                    _lastInputs[(group.Name, axis.Tensor)] = inputs;
                }
            }

            long t4 = Stopwatch.GetTimestamp();
            using var host = total.cpu();
            double[] result = host.data<double>().ToArray();
            _hostCopy += Stopwatch.GetTimestamp() - t4;
            return result;
        }

        private double Objective(Dictionary<string, long[]> permutations)
        {
            using var scope = NewDisposeScope();
            double sum = 0;
            foreach (var (name, a) in _reference)
            {
                var b = PermuteOtherAxes(name, -1, permutations);
                sum += a.mul(b).sum().item<double>();
            }

            return sum;
        }

        private Tensor PermuteOtherAxes(string name, int exceptAxis, Dictionary<string, long[]> permutations)
        {
            var result = _model[name];
            var slots = spec.AxesToGroups[name];
            for (int axis = 0; axis < slots.Length; axis++)
            {
                if (axis == exceptAxis || slots[axis] is not { } groupName)
                {
                    continue;
                }

                var index = tensor(permutations[groupName]);
                result = result.index_select(axis, index);
            }

            return result;
        }
    }
}
