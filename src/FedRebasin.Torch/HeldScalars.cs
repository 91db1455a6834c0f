using TorchSharp;

namespace FedRebasin.Torch;

/// <summary>
/// LibTorch scalars that live as long as the process, for the calls made on every batch.
/// </summary>
/// <remarks>
/// TorchSharp's <c>add(Tensor)</c> and <c>add_(Tensor)</c> pass an implicit <see cref="Scalar"/> 1 as alpha: an object
/// with a finalizer that becomes unreachable once its native handle is read, so a collection during the native call
/// can free it before LibTorch reads it (docs/TORCHSHARP-LOADING.md). A scalar held by a static field is never
/// finalized; LibTorch only reads it, so threads may share it.
/// </remarks>
public static class HeldScalars
{
    /// <summary>The integer 1, valid as alpha for tensors of any dtype.</summary>
    public static readonly Scalar One = 1;
}
