using System.Runtime.CompilerServices;
using FedRebasin.Torch.Native;

namespace FedRebasin.Tests.Shared;

/// <summary>Prepares TorchSharp's native library before any test in the assembly touches <c>torch</c>.</summary>
internal static class TorchModuleInitializer
{
    [ModuleInitializer]
    internal static void Initialize() => TorchNativeLoader.EnsureLoaded();
}
