using System.Diagnostics;
using System.Globalization;
using System.Numerics;
using System.Text;
using System.Text.Json;
using FedRebasin.Merging.Assignment;

namespace FedRebasin.Benchmarks;

/// <summary>
/// <c>lap</c> verb: times <see cref="LinearAssignment.SolveMaximize(ReadOnlySpan{double}, int)"/> against
/// <c>scipy.optimize.linear_sum_assignment(C, maximize=True)</c> on identical seeded matrices.
/// </summary>
/// <remarks>
/// For each kind and size a matrix is generated in C#, written to a temporary <c>.npy</c> file, solved here
/// (one warm-up, best of <c>--repeats</c>) and by <c>bench/python/scipy_lap.py</c> (same protocol), and the two
/// optimal objectives are required to agree to a relative 1e-9.
/// Kinds: <c>uniform</c> (i.i.d. U[0,1)) and <c>lowrank</c> (A·Bᵀ with A, B n×64 standard normal, the shape of
/// weight-matching similarity matrices).
/// </remarks>
internal static class LapBenchmark
{
    private const int LowRank = 64;

    public static int Run(string[] args)
    {
        var options = new Options(args, "no-scipy");
        int[] sizes = options.GetInts("sizes", [256, 512, 1024, 2048]);
        int repeats = Math.Max(1, options.GetInt("repeats", 3));
        string[] kinds = options.GetList("kinds", ["uniform", "lowrank"]);
        int seed = options.GetInt("seed", 42);
        bool useScipy = !options.Has("no-scipy");
        string python = options.Get("python", "/usr/bin/python3");
        string? script = useScipy ? FindScript() : null;
        if (useScipy && script is null)
        {
            Console.Error.WriteLine("bench/python/scipy_lap.py not found (run from the repository); use --no-scipy to skip SciPy.");
            return 2;
        }

        Console.WriteLine(string.Create(
            CultureInfo.InvariantCulture,
            $"lap benchmark: maximize, best of {repeats} after 1 warm-up, seed {seed}, {Environment.ProcessorCount} cores, Vector<double>.Count = {Vector<double>.Count}"));
        Console.WriteLine();
        Console.WriteLine("| kind    |     n | ours (ms) | scipy (ms) | ours/scipy | objective check |");
        Console.WriteLine("|---------|------:|----------:|-----------:|-----------:|-----------------|");
        bool allAgree = true;
        foreach (string kind in kinds)
        {
            foreach (int n in sizes)
            {
                double[] cost = Generate(kind, n, seed + n);
                double ours = TimeOurs(cost, n, repeats, out double ourObjective);
                string scipyCell = "-";
                string ratioCell = "-";
                string check = "not compared";
                if (script is not null)
                {
                    string file = Path.Combine(Path.GetTempPath(), string.Create(CultureInfo.InvariantCulture, $"fedrebasin-lap-{kind}-{n}-{seed}-{Environment.ProcessId}.npy"));
                    try
                    {
                        Npy.WriteSquare(file, cost, n);
                        var (best, objective) = RunScipy(python, script, file, repeats);
                        scipyCell = best.ToString("F2", CultureInfo.InvariantCulture);
                        ratioCell = (ours / best).ToString("F2", CultureInfo.InvariantCulture);
                        double scale = Math.Max(1e-300, Math.Max(Math.Abs(objective), Math.Abs(ourObjective)));
                        double rel = Math.Abs(objective - ourObjective) / scale;
                        bool agree = rel <= 1e-9;
                        allAgree &= agree;
                        check = string.Create(CultureInfo.InvariantCulture, $"{(agree ? "ok" : "MISMATCH")} (rel {rel:0.0e+0})");
                    }
                    finally
                    {
                        File.Delete(file);
                    }
                }

                Console.WriteLine(string.Create(
                    CultureInfo.InvariantCulture,
                    $"| {kind,-7} | {n,5} | {ours,9:F2} | {scipyCell,10} | {ratioCell,10} | {check,-15} |"));
            }
        }

        return allAgree ? 0 : 1;
    }

    private static double TimeOurs(double[] cost, int n, int repeats, out double objective)
    {
        int[] col = LinearAssignment.SolveMaximize(cost, n); // warm-up (also JIT tier-up of the hot loop)
        if (!LinearAssignment.IsPermutation(col))
        {
            throw new InvalidOperationException("Solver returned a non-permutation.");
        }

        double best = double.PositiveInfinity;
        for (int r = 0; r < repeats; r++)
        {
            long t0 = Stopwatch.GetTimestamp();
            col = LinearAssignment.SolveMaximize(cost, n);
            best = Math.Min(best, Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
        }

        objective = 0.0;
        for (int i = 0; i < n; i++)
        {
            objective += cost[(i * n) + col[i]];
        }

        return best;
    }

    private static (double BestMs, double Objective) RunScipy(string python, string script, string file, int repeats)
    {
        var psi = new ProcessStartInfo(python)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add(script);
        psi.ArgumentList.Add(file);
        psi.ArgumentList.Add("--repeats");
        psi.ArgumentList.Add(repeats.ToString(CultureInfo.InvariantCulture));
        using var process = Process.Start(psi) ?? throw new InvalidOperationException("Could not start " + python);
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        string stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException(string.Create(
                CultureInfo.InvariantCulture, $"scipy_lap.py failed ({process.ExitCode}): {stderr.Result}"));
        }

        using var doc = JsonDocument.Parse(stdout);
        return (doc.RootElement.GetProperty("best_ms").GetDouble(), doc.RootElement.GetProperty("objective").GetDouble());
    }

    /// <summary>Seeded matrix of the given kind (deterministic for a given seed and .NET's seeded <see cref="Random"/>).</summary>
    internal static double[] Generate(string kind, int n, int seed)
    {
        var rng = new Random(seed);
        var cost = new double[n * n];
        switch (kind)
        {
            case "uniform":
                for (int k = 0; k < cost.Length; k++)
                {
                    cost[k] = rng.NextDouble();
                }

                break;
            case "lowrank":
                double[] a = Gaussian(rng, n * LowRank);
                double[] b = Gaussian(rng, n * LowRank);
                for (int i = 0; i < n; i++)
                {
                    ReadOnlySpan<double> ai = a.AsSpan(i * LowRank, LowRank);
                    for (int j = 0; j < n; j++)
                    {
                        ReadOnlySpan<double> bj = b.AsSpan(j * LowRank, LowRank);
                        double dot = 0.0;
                        for (int k = 0; k < LowRank; k++)
                        {
                            dot += ai[k] * bj[k];
                        }

                        cost[(i * n) + j] = dot;
                    }
                }

                break;
            default:
                throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"Unknown matrix kind '{kind}' (uniform, lowrank)."));
        }

        return cost;
    }

    private static double[] Gaussian(Random rng, int count)
    {
        var values = new double[count];
        for (int k = 0; k < count; k++)
        {
            // Box–Muller; 1 - NextDouble() is in (0, 1].
            double r = Math.Sqrt(-2.0 * Math.Log(1.0 - rng.NextDouble()));
            values[k] = r * Math.Cos(2.0 * Math.PI * rng.NextDouble());
        }

        return values;
    }

    private static string? FindScript()
    {
        foreach (string start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                string candidate = Path.Combine(dir.FullName, "bench", "python", "scipy_lap.py");
                if (File.Exists(candidate))
                {
                    return candidate;
                }
            }
        }

        return null;
    }
}

/// <summary>Writes NumPy <c>.npy</c> (format 1.0) files.</summary>
internal static class Npy
{
    public static void WriteSquare(string path, double[] data, int n)
    {
        string dict = string.Create(CultureInfo.InvariantCulture, $"{{'descr': '<f8', 'fortran_order': False, 'shape': ({n}, {n}), }}");
        int unpadded = 10 + dict.Length + 1; // magic(6) + version(2) + length(2) + dict + '\n'
        int padding = (64 - (unpadded % 64)) % 64;
        string header = dict + new string(' ', padding) + "\n";
        using var stream = new FileStream(path, FileMode.Create, FileAccess.Write);
        using var writer = new BinaryWriter(stream);
        writer.Write([(byte)0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', (byte)1, (byte)0]);
        writer.Write((ushort)header.Length);
        writer.Write(Encoding.ASCII.GetBytes(header));
        if (!BitConverter.IsLittleEndian)
        {
            throw new PlatformNotSupportedException("Big-endian hosts are not supported.");
        }

        writer.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(data.AsSpan()));
    }
}
