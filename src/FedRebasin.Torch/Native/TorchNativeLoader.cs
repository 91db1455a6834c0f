using System.Runtime.InteropServices;
using System.Security.Cryptography;
using TorchSharp;

namespace FedRebasin.Torch.Native;

/// <summary>What <see cref="TorchNativeLoader.EnsureLoaded"/> did.</summary>
public enum TorchLoadOutcome
{
    /// <summary>Nothing to do: not Linux x64, or the system libstdc++ has every version TorchSharp needs.</summary>
    NotNeeded,

    /// <summary>A patched copy of <c>libLibTorchSharp.so</c> was loaded and registered for TorchSharp.</summary>
    PatchedCopyLoaded,

    /// <summary>The native TorchSharp library was not found beside the application; TorchSharp loads as it would.</summary>
    LibraryNotFound,
}

/// <summary>The result of preparing TorchSharp's native library, for logs and tests.</summary>
/// <param name="Outcome">What was done.</param>
/// <param name="MissingVersions">Versions the library needs that the system libstdc++ lacks (empty when none).</param>
/// <param name="LibraryPath">The library TorchSharp uses: the patched copy, or the original.</param>
public sealed record TorchLoadReport(TorchLoadOutcome Outcome, IReadOnlyList<string> MissingVersions, string? LibraryPath)
{
    /// <summary>The oneDNN instruction-set cap in effect (see <see cref="OneDnnIsaCap"/>); null where none applies.</summary>
    public string? OneDnnMaxCpuIsa { get; init; }
}

/// <summary>
/// Makes TorchSharp's native library load on Linux systems whose libstdc++ is older than the one it was built
/// with (Debian 12, Ubuntu 22.04: TorchSharp 0.107 names <c>GLIBCXX_3.4.32</c> but calls nothing from it).
/// Where the system libstdc++ lacks a needed version, a copy of <c>libLibTorchSharp.so</c> with that version
/// marked weak is written to a cache folder (never the NuGet cache or the build output), loaded, and handed to
/// TorchSharp through a DllImport resolver. The load uses <c>RTLD_NOW</c>, so a symbol that is really missing
/// still fails loudly. It also caps oneDNN's instruction set (<see cref="OneDnnIsaCap"/>), which must happen before
/// the first convolution. Call <see cref="EnsureLoaded"/> before the first use of <c>torch</c>.
/// </summary>
public static class TorchNativeLoader
{
    /// <summary>Environment variable naming the folder for the patched library copy.</summary>
    public const string CacheDirectoryVariable = "FEDREBASIN_NATIVE_CACHE";

    private const string TorchSharpLibraryFile = "libLibTorchSharp.so";
    private const string StdCxxSoname = "libstdc++.so.6";
    // LibTorch's own libraries, in dependency order; the OpenMP runtime it bundles (libgomp-<hash>.so.1) goes first.
    private static readonly string[] s_dependencyLoadOrder =
        ["libc10.so", "libc10_cuda.so", "libtorch_cpu.so", "libtorch_cuda.so", "libtorch.so"];

    private static readonly Lock s_gate = new();
    private static TorchLoadReport? s_report;

    /// <summary>Prepares the native library once per process; later calls return the first result.</summary>
    /// <exception cref="DllNotFoundException">A patched copy was needed but could not be loaded.</exception>
    public static TorchLoadReport EnsureLoaded()
    {
        lock (s_gate)
        {
            if (s_report is null)
            {
                string? isaCap = OneDnnIsaCap.Apply();
                s_report = Prepare() with { OneDnnMaxCpuIsa = isaCap };
            }

            return s_report;
        }
    }

    private static TorchLoadReport Prepare()
    {
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64)
        {
            return new TorchLoadReport(TorchLoadOutcome.NotNeeded, [], null);
        }

        string? original = FindTorchSharpLibrary();
        if (original is null)
        {
            return new TorchLoadReport(TorchLoadOutcome.LibraryNotFound, [], null);
        }

        byte[] image = File.ReadAllBytes(original);
        var missing = FindMissingStdCxxVersions(image);
        if (missing.Count == 0)
        {
            return new TorchLoadReport(TorchLoadOutcome.NotNeeded, [], original);
        }

        string patched = WritePatchedCopy(image, missing);
        string nativeDirectory = Path.GetDirectoryName(original)!;
        var bundled = Directory.EnumerateFiles(nativeDirectory, "libgomp*.so*").Order(StringComparer.Ordinal).Select(Path.GetFileName);
        foreach (string? dependency in bundled.Concat(s_dependencyLoadOrder))
        {
            string path = Path.Combine(nativeDirectory, dependency!);
            if (File.Exists(path))
            {
                NativeLibrary.Load(path);
            }
        }

        IntPtr handle = NativeLibrary.Load(patched);
        NativeLibrary.SetDllImportResolver(typeof(torch).Assembly, (name, _, _) =>
            name is "LibTorchSharp" or "libLibTorchSharp" or "libLibTorchSharp.so" ? handle : IntPtr.Zero);
        return new TorchLoadReport(TorchLoadOutcome.PatchedCopyLoaded, missing, patched);
    }

    /// <summary>The libstdc++ versions the library needs (not weakly) that the process's libstdc++ does not define.</summary>
    public static IReadOnlyList<string> FindMissingStdCxxVersions(ReadOnlySpan<byte> library)
    {
        var needed = ElfVersions.ReadNeeds(library)
            .Where(n => n.LibraryName == StdCxxSoname && !n.IsWeak)
            .Select(n => n.VersionName)
            .ToList();
        if (needed.Count == 0)
        {
            return [];
        }

        string? stdcxx = FindLoadedLibrary(StdCxxSoname);
        if (stdcxx is null)
        {
            NativeLibrary.Load(StdCxxSoname);
            stdcxx = FindLoadedLibrary(StdCxxSoname);
        }

        if (stdcxx is null)
        {
            return [];
        }

        var defined = ElfVersions.ReadDefinitions(File.ReadAllBytes(stdcxx));
        return needed.Where(v => !defined.Contains(v)).Distinct().Order(StringComparer.Ordinal).ToList();
    }

    private static string? FindTorchSharpLibrary()
    {
        string[] roots = [AppContext.BaseDirectory, Path.GetDirectoryName(typeof(torch).Assembly.Location) ?? ""];
        foreach (string root in roots.Where(r => r.Length > 0))
        {
            foreach (string candidate in new[]
            {
                Path.Combine(root, "runtimes", "linux-x64", "native", TorchSharpLibraryFile),
                Path.Combine(root, TorchSharpLibraryFile),
            })
            {
                if (File.Exists(candidate))
                {
                    return candidate;
                }
            }
        }

        return null;
    }

    private static string? FindLoadedLibrary(string soname)
    {
        // /proc/self/maps lists every mapped file by its real name (libstdc++.so.6.0.30 for the soname
        // libstdc++.so.6); the .NET host itself maps libstdc++.
        foreach (string line in File.ReadLines("/proc/self/maps"))
        {
            int slash = line.IndexOf('/', StringComparison.Ordinal);
            if (slash >= 0 && Path.GetFileName(line.AsSpan(slash)).StartsWith(soname, StringComparison.Ordinal))
            {
                return line[slash..];
            }
        }

        return null;
    }

    private static string WritePatchedCopy(byte[] image, IReadOnlyList<string> missing)
    {
        string tag = Convert.ToHexStringLower(SHA256.HashData(image))[..16] + "-" + string.Join('_', missing);
        string fileName = $"libLibTorchSharp-{tag}.so";
        Exception? last = null;
        foreach (string directory in CacheDirectories())
        {
            try
            {
                string target = Path.Combine(directory, fileName);
                if (File.Exists(target))
                {
                    return target;
                }

                Directory.CreateDirectory(directory);
                byte[] patched = (byte[])image.Clone();
                ElfVersions.MarkWeak(patched, missing);
                // Write beside the target and rename, so concurrent processes never see a half-written file.
                string temporary = Path.Combine(directory, $"{fileName}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
                File.WriteAllBytes(temporary, patched);
                File.Move(temporary, target, overwrite: true);
                return target;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                last = e;
            }
        }

        throw new DllNotFoundException(
            $"TorchSharp needs a patched copy of {TorchSharpLibraryFile} but no cache folder was writable; set {CacheDirectoryVariable}.", last);
    }

    private static IEnumerable<string> CacheDirectories()
    {
        string? configured = Environment.GetEnvironmentVariable(CacheDirectoryVariable);
        if (!string.IsNullOrWhiteSpace(configured))
        {
            yield return configured;
        }

        string? xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        if (!string.IsNullOrWhiteSpace(xdg))
        {
            yield return Path.Combine(xdg, "fedrebasin", "native");
        }

        string home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        if (!string.IsNullOrWhiteSpace(home))
        {
            yield return Path.Combine(home, ".cache", "fedrebasin", "native");
        }

        yield return Path.Combine(Path.GetTempPath(), $"fedrebasin-native-{Environment.UserName}");
    }
}
