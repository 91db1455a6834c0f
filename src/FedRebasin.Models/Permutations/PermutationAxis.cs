namespace FedRebasin.Models.Permutations;

/// <summary>
/// One axis of one state-dict tensor that a permutation group acts on, in PyTorch layout
/// (Linear weight <c>(out, in)</c>, Conv2d weight <c>(out, in, kh, kw)</c>).
/// </summary>
/// <param name="Tensor">The state-dict key, e.g. <c>features.0.weight</c>.</param>
/// <param name="Axis">The axis (0-based) whose entries the group reorders.</param>
/// <param name="CostExcluded">
/// True for tensors that must be permuted (so the model keeps computing the same function) but must not enter the
/// weight-matching cost: BatchNorm <c>running_mean</c> and <c>running_var</c> (ALGORITHMS.md §1.3; running_var is all
/// positive and would add a rank-1 "match large to large" term).
/// </param>
public sealed record PermutationAxis(string Tensor, int Axis, bool CostExcluded = false);
