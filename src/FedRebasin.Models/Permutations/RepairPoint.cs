namespace FedRebasin.Models.Permutations;

/// <summary>
/// The per-channel weight and bias that realise an affine correction <c>y' = scale·y + shift</c> of a repair point's
/// pre-activation <c>y</c>, folded back into the model as <c>W'[c] = W[c]·scale[c]</c> (along axis 0, whatever the
/// rank) and <c>b'[c] = b[c]·scale[c] + shift[c]</c>. The fold is exact: for a Linear or conv with bias <c>y = Wx + b</c>;
/// for BatchNorm and GroupNorm(1, C) <c>y = γ·x̂ + β</c> with <c>x̂</c> independent of <c>γ, β</c>.
/// </summary>
/// <param name="Weight">State-dict name of the tensor scaled along axis 0 (Linear/conv weight or norm weight γ).</param>
/// <param name="Bias">State-dict name of the per-channel bias (layer bias or norm bias β).</param>
public sealed record RepairTarget(string Weight, string Bias);

/// <summary>
/// A place in the forward pass where REPAIR (ALGORITHMS.md §4) measures per-channel statistics: a pre-activation,
/// i.e. the tensor that feeds a ReLU (or a residual sum), of shape <c>(N, C)</c> or <c>(N, C, H, W)</c>.
/// </summary>
/// <param name="Name">Unique, human-readable name: the state-dict prefix of the layer whose output is tapped
/// (e.g. <c>0</c>, <c>features.1</c>, <c>layer2.0.norm1</c>), or <c>layer{s}.{b}.sum</c> for a residual sum.</param>
/// <param name="Group">The <see cref="PermutationGroup"/> that permutes this point's channels, so moments measured on
/// different clients can be brought into one alignment with <see cref="ChannelMoments.Permute"/>.</param>
/// <param name="Channels">Number of channels (= the group's size).</param>
/// <param name="Target">The tensors a per-channel correction is folded into, or null when the point can only be
/// measured (a residual sum: a correction there cannot be folded into a single layer exactly).</param>
public sealed record RepairPoint(string Name, string Group, int Channels, RepairTarget? Target)
{
    /// <summary>Whether a correction at this point can be folded into the model (<see cref="Target"/> is not null).</summary>
    public bool Foldable => Target is not null;
}
