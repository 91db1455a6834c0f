using System.Runtime.InteropServices;

namespace FedRebasin.Coordinator;

/// <summary>
/// glibc tuning for a process that allocates and frees whole models (every upload's tensors, every fold's float64
/// copies): by default glibc raises its mmap threshold after the first large block is freed (up to 32 MiB), after which
/// freed model-sized blocks stay in the heap and the working set only grows. Fixing the threshold at
/// <see cref="MmapThresholdBytes"/> keeps large blocks mmapped, so freeing them returns the memory to the system.
/// </summary>
internal static partial class NativeMemory
{
    /// <summary>Blocks at least this large are mmapped (and unmapped when freed).</summary>
    public const int MmapThresholdBytes = 1 << 20;

    private const int MallocMmapThreshold = -3; // M_MMAP_THRESHOLD in malloc.h

    private static int s_applied;

    /// <summary>Applies the setting once per process on Linux with glibc; elsewhere does nothing. Returns whether it applied.</summary>
    public static bool ReturnLargeBlocksToTheSystem()
    {
        if (!OperatingSystem.IsLinux() || Interlocked.Exchange(ref s_applied, 1) == 1)
        {
            return false;
        }

        try
        {
            return MallOpt(MallocMmapThreshold, MmapThresholdBytes) == 1;
        }
        catch (EntryPointNotFoundException)
        {
            // Not glibc (e.g. musl): nothing to tune.
            return false;
        }
        catch (DllNotFoundException)
        {
            return false;
        }
    }

    [LibraryImport("libc", EntryPoint = "mallopt")]
    private static partial int MallOpt(int parameter, int value);
}
