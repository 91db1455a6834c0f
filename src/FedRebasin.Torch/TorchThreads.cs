using System.Globalization;
using FedRebasin.Torch.Native;
using TorchSharp;

namespace FedRebasin.Torch;

/// <summary>
/// LibTorch's intra-op thread count (its OpenMP team size) for work that runs beside other tensor work in one process.
/// </summary>
/// <remarks>
/// LibTorch's CPU build parallelises each op with GNU OpenMP, and every thread that has run a parallel op keeps a team
/// of worker threads for as long as it lives. When the process holds more OpenMP threads than cores, idle workers stop
/// spinning and every small op pays a wake-up: training runs 16–20% slower beside other threads' teams
/// (docs/BENCHMARKS.md, "OpenMP teams"). Work that runs K at a time should therefore use about cores / K threads each.
/// The count is per thread in OpenMP, so it is set on the thread that computes, before it computes; LibTorch also
/// keeps it as the count that threads it has not seen yet start with.
/// </remarks>
public static class TorchThreads
{
    /// <summary>
    /// The threads one process may keep busy: <c>OMP_NUM_THREADS</c> when it is set to a positive number (LibTorch's
    /// own default honours it too), else the processors this process may use.
    /// </summary>
    public static int Budget
    {
        get
        {
            string? fromEnvironment = Environment.GetEnvironmentVariable("OMP_NUM_THREADS");
            return int.TryParse(fromEnvironment, NumberStyles.None, CultureInfo.InvariantCulture, out int threads) && threads > 0
                ? threads
                : Environment.ProcessorCount;
        }
    }

    /// <summary>Threads for each of <paramref name="concurrent"/> pieces of work that run at once: the budget shared out, at least 1.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="concurrent"/> is below 1.</exception>
    public static int PerConcurrentWork(int concurrent)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(concurrent, 1);
        return Math.Max(1, Budget / concurrent);
    }

    /// <summary>
    /// Makes the calling thread's tensor ops use <paramref name="threads"/> intra-op threads; 0 leaves the thread as it
    /// is. Changes nothing when the thread already uses that many (setting it clears oneDNN's primitive cache, so it is
    /// not done on every call).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="threads"/> is negative.</exception>
    public static void UseOnThisThread(int threads)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(threads);
        if (threads == 0)
        {
            return;
        }

        TorchNativeLoader.EnsureLoaded();
        if (torch.get_num_threads() != threads)
        {
            torch.set_num_threads(threads);
        }
    }
}
