namespace FedRebasin.Models.Permutations;

/// <summary>
/// One permutation symmetry of a network (a hidden layer's units, a conv's output channels, a residual stream): the
/// list of every tensor axis that must be reordered together so the network computes the same function.
/// </summary>
public sealed class PermutationGroup
{
    /// <summary>Creates a group.</summary>
    /// <param name="name">Unique name within its spec, e.g. <c>P0</c>, <c>features.3</c>, <c>stream2</c>.</param>
    /// <param name="size">Number of units permuted; every axis in <paramref name="axes"/> must have this size.</param>
    /// <param name="axes">The tensor axes acted on; at least one, and at most one per tensor.</param>
    /// <exception cref="PermutationSpecException">
    /// No axes, a negative axis, or the group acts on two axes of the same tensor (a permutation group never does:
    /// ALGORITHMS.md §1.2).
    /// </exception>
    public PermutationGroup(string name, int size, IEnumerable<PermutationAxis> axes)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(axes);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(size);
        Name = name;
        Size = size;
        var list = axes.ToList();
        if (list.Count == 0)
        {
            throw new PermutationSpecException($"Permutation group '{name}' acts on no tensor axis.");
        }

        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var axis in list)
        {
            ArgumentNullException.ThrowIfNull(axis, nameof(axes));
            if (axis.Axis < 0)
            {
                throw new PermutationSpecException($"Permutation group '{name}' names axis {axis.Axis} of '{axis.Tensor}'; axes are 0-based.");
            }

            if (seen.TryGetValue(axis.Tensor, out int other))
            {
                throw new PermutationSpecException(
                    $"Permutation group '{name}' acts on tensor '{axis.Tensor}' twice (axes {other} and {axis.Axis}); a group may act on only one axis of a tensor.");
            }

            seen.Add(axis.Tensor, axis.Axis);
        }

        Axes = list.AsReadOnly();
        CostAxes = list.Where(a => !a.CostExcluded).ToList().AsReadOnly();
    }

    /// <summary>The group's name, unique within its spec.</summary>
    public string Name { get; }

    /// <summary>The number of units permuted (length of the permutation).</summary>
    public int Size { get; }

    /// <summary>Every tensor axis the group reorders: applying a permutation touches all of them.</summary>
    public IReadOnlyList<PermutationAxis> Axes { get; }

    /// <summary>The axes that enter the weight-matching cost: <see cref="Axes"/> less those marked <see cref="PermutationAxis.CostExcluded"/>.</summary>
    public IReadOnlyList<PermutationAxis> CostAxes { get; }

    /// <summary>Whether the (tensor, axis) pair belongs to this group and enters the weight-matching cost.</summary>
    public bool EntersCost(PermutationAxis axis)
    {
        ArgumentNullException.ThrowIfNull(axis);
        return CostAxes.Any(a => a.Tensor == axis.Tensor && a.Axis == axis.Axis);
    }

    /// <inheritdoc />
    public override string ToString() => $"{Name} (size {Size}, {Axes.Count} axes)";
}
