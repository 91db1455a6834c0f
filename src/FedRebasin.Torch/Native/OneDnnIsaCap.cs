using System.Runtime.InteropServices;

namespace FedRebasin.Torch.Native;

/// <summary>
/// Caps the instruction set oneDNN (LibTorch's CPU convolution backend) may use, before its first kernel runs.
/// LibTorch 2.10 CPU's AVX-512 convolution backward yields NaN gradients for strided 3x3 convolutions on some
/// CPUs (measured on AMD EPYC Zen 4: a ResNet-20 backward pass on random input had NaN gradients in 2 to 26 of
/// its parameters in every one of six runs; capped at AVX2, none in six). The forward pass stays finite, so the
/// failure surfaces later as a NaN loss or a NaN merge. oneDNN reads the cap from the process environment the
/// first time it dispatches, so it is set natively here (the .NET environment is a copy on Unix).
/// A value the user already set for <see cref="Variable"/> or <see cref="NewVariable"/> is left alone:
/// <c>DNNL_MAX_CPU_ISA=ALL</c> lifts the cap.
/// </summary>
public static partial class OneDnnIsaCap
{
    /// <summary>The environment variable oneDNN reads for the highest instruction set it may dispatch to.</summary>
    public const string Variable = "DNNL_MAX_CPU_ISA";

    /// <summary>The newer spelling of <see cref="Variable"/>, which oneDNN also reads.</summary>
    public const string NewVariable = "ONEDNN_MAX_CPU_ISA";

    /// <summary>The cap applied when the user set none.</summary>
    public const string DefaultCap = "AVX2";

    /// <summary>
    /// Sets <see cref="Variable"/> to <see cref="DefaultCap"/> in the native environment unless the user set a cap;
    /// returns the cap in effect (the user's or the default), or null where it does not apply (not Linux x64).
    /// </summary>
    public static string? Apply()
    {
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64)
        {
            return null;
        }

        string? dnnl = ReadNative(Variable);
        string? onednn = ReadNative(NewVariable);
        string chosen = ChooseCap(dnnl, onednn);
        if (string.IsNullOrEmpty(dnnl) && string.IsNullOrEmpty(onednn))
        {
            if (NativeMethods.SetEnv(Variable, chosen, overwrite: 1) != 0)
            {
                throw new InvalidOperationException($"setenv({Variable}) failed with errno {Marshal.GetLastPInvokeError()}.");
            }

            // Keep the managed view in step, so child processes and diagnostics see the same value.
            Environment.SetEnvironmentVariable(Variable, chosen);
        }

        return chosen;
    }

    /// <summary>The cap in effect given the user's settings: theirs when they set one, else <see cref="DefaultCap"/>.</summary>
    public static string ChooseCap(string? dnnlValue, string? onednnValue) =>
        !string.IsNullOrEmpty(dnnlValue) ? dnnlValue
        : !string.IsNullOrEmpty(onednnValue) ? onednnValue
        : DefaultCap;

    /// <summary>The value of a variable in the native process environment (what native libraries see).</summary>
    public static string? ReadNative(string name)
    {
        IntPtr value = NativeMethods.GetEnv(name);
        return value == IntPtr.Zero ? null : Marshal.PtrToStringUTF8(value);
    }

    private static partial class NativeMethods
    {
        [LibraryImport("libc", EntryPoint = "setenv", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
        internal static partial int SetEnv(string name, string value, int overwrite);

        [LibraryImport("libc", EntryPoint = "getenv", StringMarshalling = StringMarshalling.Utf8)]
        internal static partial IntPtr GetEnv(string name);
    }
}
