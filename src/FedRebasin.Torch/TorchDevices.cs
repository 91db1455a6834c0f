using FedRebasin.Torch.Native;
using TorchSharp;

namespace FedRebasin.Torch;

/// <summary>Chooses the torch device from a user's <c>--device auto|cpu|cuda</c> setting.</summary>
public static class TorchDevices
{
    /// <summary>The accepted values of the device setting.</summary>
    public static IReadOnlyList<string> Choices { get; } = ["auto", "cpu", "cuda"];

    /// <summary>
    /// Resolves a device name: <c>cpu</c>; <c>cuda</c> or <c>cuda:N</c> (error when CUDA is unavailable);
    /// <c>auto</c> = CUDA when available, else CPU. Prepares the native library first.
    /// </summary>
    /// <exception cref="ArgumentException">Unknown name, or CUDA asked for but not available.</exception>
    public static torch.Device Resolve(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        TorchNativeLoader.EnsureLoaded();
        string normalized = name.Trim().ToLowerInvariant();
        if (normalized == "cpu")
        {
            return torch.CPU;
        }

        if (normalized == "auto")
        {
            return IsCudaAvailable() ? torch.CUDA : torch.CPU;
        }

        if (normalized == "cuda" || normalized.StartsWith("cuda:", StringComparison.Ordinal))
        {
            if (!IsCudaAvailable())
            {
                throw new ArgumentException(
                    $"--device {name}: CUDA is not available here. This build uses the '{BuildInfo.TorchBackend}' TorchSharp backend; " +
                    "build with -p:TorchBackend=cuda on a machine with an NVIDIA driver, or use --device cpu.");
            }

            return torch.device(normalized);
        }

        throw new ArgumentException($"--device must be one of auto, cpu, cuda (or cuda:N), not '{name}'.");
    }

    /// <summary>Whether a CUDA device can be used by this process.</summary>
    public static bool IsCudaAvailable()
    {
        TorchNativeLoader.EnsureLoaded();
        try
        {
            return torch.cuda.is_available();
        }
        catch (Exception e) when (e is NotSupportedException or InvalidOperationException or DllNotFoundException)
        {
            return false;
        }
    }
}

/// <summary>Facts fixed when the solution was built.</summary>
public static class BuildInfo
{
    /// <summary>The TorchSharp backend chosen with the <c>TorchBackend</c> build property: <c>cpu</c> or <c>cuda</c>.</summary>
#if TORCH_CUDA
    public const string TorchBackend = "cuda";
#else
    public const string TorchBackend = "cpu";
#endif
}
