using FedRebasin.Models.Permutations;
using TorchSharp;
using static TorchSharp.torch;

namespace FedRebasin.Models;

/// <summary>
/// An image classifier built from a <see cref="ModelSpec"/>. Input is <c>(N, C, H, W)</c> float32 (MLPs flatten it);
/// output is <c>(N, classes)</c> logits. Parameter and buffer names are those of the equivalent PyTorch module.
/// </summary>
public abstract class ClassifierModel : nn.Module<Tensor, Tensor>
{
    /// <summary>Creates the module; subclasses register their children under PyTorch's names.</summary>
    protected ClassifierModel(string name, ModelSpec spec)
        : base(name)
    {
        Spec = spec;
    }

    /// <summary>The spec this model was built from (and is saved with).</summary>
    public ModelSpec Spec { get; }

    /// <summary>Number of trainable scalars.</summary>
    public long ParameterCount => parameters().Sum(p => p.numel());

    /// <summary>
    /// The places where REPAIR measures per-channel pre-activation statistics, in forward order: index <c>i</c> is the
    /// index <see cref="ForwardWithTaps"/> passes to its tap. Each point names the <see cref="PermutationGroup"/> of
    /// its channels (a group of <see cref="PermutationSpecs.For(ClassifierModel)"/>) and, when a per-channel affine
    /// correction can be folded into the model exactly, the weight and bias to fold it into. Which points each
    /// architecture has is documented on the architecture's class.
    /// </summary>
    public abstract IReadOnlyList<RepairPoint> RepairPoints { get; }

    /// <summary>
    /// The same computation as <c>forward</c>, calling <paramref name="tap"/> with the repair-point index and the
    /// pre-activation tensor (<c>(N, C)</c> or <c>(N, C, H, W)</c>) once per point, in index order. The tensor is the
    /// live intermediate: the tap must neither modify nor dispose it, and must copy what it keeps. With a null tap this
    /// is <c>forward</c>.
    /// </summary>
    public Tensor ForwardWithTaps(Tensor input, Action<int, Tensor>? tap)
    {
        ArgumentNullException.ThrowIfNull(input);
        return ForwardCore(input, tap);
    }

    /// <summary>The forward pass shared by <c>forward</c> (null tap) and <see cref="ForwardWithTaps"/>.</summary>
    protected abstract Tensor ForwardCore(Tensor input, Action<int, Tensor>? tap);

    /// <summary>Creates a norm layer for <paramref name="channels"/>, or null when the spec has none.</summary>
    protected static nn.Module<Tensor, Tensor>? CreateNorm(NormKind norm, long channels)
    {
        switch (norm)
        {
            case NormKind.Batch:
                return nn.BatchNorm2d(channels);
            case NormKind.Layer:
                var groupNorm = nn.GroupNorm(1, channels);
                // TorchSharp 0.107 leaves GroupNorm's affine parameters uninitialised (torch.empty);
                // PyTorch initialises them to weight 1, bias 0.
                using (no_grad())
                {
                    groupNorm.weight!.fill_(1);
                    groupNorm.bias!.zero_();
                }

                return groupNorm;
            default:
                return null;
        }
    }

    /// <summary>Scales a base channel count by the width multiplier (at least 1).</summary>
    protected static int Scale(int baseChannels, double widthMultiplier) =>
        Math.Max(1, (int)Math.Round(baseChannels * widthMultiplier, MidpointRounding.AwayFromZero));
}
