using System.Globalization;
using TorchSharp;
using static TorchSharp.torch;

namespace FedRebasin.Models.Permutations;

/// <summary>
/// The permutation symmetries of a network, in Git Re-Basin's form (ALGORITHMS.md §1.2): a list of
/// <see cref="PermutationGroup"/>s (the <c>perm_to_axes</c> map) and, derived from it, <see cref="AxesToGroups"/>
/// (the <c>axes_to_perm</c> map). Every tensor of the state dict is either acted on by at least one group or listed in
/// <see cref="Unpermuted"/>.
/// </summary>
/// <remarks>
/// Permutations are <c>long[]</c> per group name and are applied as a gather (<c>index_select</c>): on every axis of
/// group <c>p</c>, <c>new[i] = old[perm[p][i]]</c>. Instances are immutable.
/// </remarks>
public sealed class PermutationSpec
{
    private readonly Dictionary<string, PermutationGroup> _groupsByName;
    private readonly Dictionary<string, string?[]> _axesToGroups;

    /// <summary>Creates a spec from its groups and the tensors no group acts on.</summary>
    /// <param name="groups">The permutation groups; names must be unique.</param>
    /// <param name="unpermuted">State-dict tensors no group acts on (the last layer's bias, <c>num_batches_tracked</c>, ...).</param>
    /// <exception cref="PermutationSpecException">
    /// Two groups share a name, two groups act on the same axis of a tensor, or a tensor is both acted on and listed
    /// as unpermuted. The message names the tensor, axis and groups.
    /// </exception>
    public PermutationSpec(IEnumerable<PermutationGroup> groups, IEnumerable<string> unpermuted)
    {
        ArgumentNullException.ThrowIfNull(groups);
        ArgumentNullException.ThrowIfNull(unpermuted);
        var groupList = groups.ToList();
        _groupsByName = new Dictionary<string, PermutationGroup>(StringComparer.Ordinal);
        _axesToGroups = new Dictionary<string, string?[]>(StringComparer.Ordinal);
        foreach (var group in groupList)
        {
            ArgumentNullException.ThrowIfNull(group, nameof(groups));
            if (!_groupsByName.TryAdd(group.Name, group))
            {
                throw new PermutationSpecException($"Permutation group '{group.Name}' is defined twice.");
            }

            foreach (var axis in group.Axes)
            {
                if (!_axesToGroups.TryGetValue(axis.Tensor, out var slots))
                {
                    slots = new string?[axis.Axis + 1];
                }
                else if (slots.Length <= axis.Axis)
                {
                    Array.Resize(ref slots, axis.Axis + 1);
                }
                else if (slots[axis.Axis] is { } other)
                {
                    throw new PermutationSpecException(
                        $"Axis {axis.Axis} of tensor '{axis.Tensor}' is claimed by two permutation groups, '{other}' and '{group.Name}'.");
                }

                slots[axis.Axis] = group.Name;
                _axesToGroups[axis.Tensor] = slots;
            }
        }

        var unpermutedSet = new HashSet<string>(StringComparer.Ordinal);
        foreach (string tensor in unpermuted)
        {
            ArgumentNullException.ThrowIfNull(tensor, nameof(unpermuted));
            if (_axesToGroups.TryGetValue(tensor, out var slots))
            {
                throw new PermutationSpecException(
                    $"Tensor '{tensor}' is listed as unpermuted but group '{slots.First(s => s is not null)}' acts on it.");
            }

            unpermutedSet.Add(tensor);
        }

        foreach (string tensor in unpermutedSet)
        {
            _axesToGroups[tensor] = [];
        }

        Groups = groupList.AsReadOnly();
        Unpermuted = unpermutedSet;
    }

    /// <summary>The permutation groups, in the order given.</summary>
    public IReadOnlyList<PermutationGroup> Groups { get; }

    /// <summary>The groups by name.</summary>
    public IReadOnlyDictionary<string, PermutationGroup> GroupsByName => _groupsByName;

    /// <summary>
    /// For every tensor the spec knows (permuted or not), the group acting on each axis or null. An array may be
    /// shorter than the tensor's rank: axes past its end are not permuted (an unpermuted tensor has an empty array).
    /// The arrays are shared: do not modify them.
    /// </summary>
    public IReadOnlyDictionary<string, string?[]> AxesToGroups => _axesToGroups;

    /// <summary>Tensors no group acts on.</summary>
    public IReadOnlySet<string> Unpermuted { get; }

    /// <summary>Every tensor name the spec covers (the keys of <see cref="AxesToGroups"/>).</summary>
    public IEnumerable<string> Tensors => _axesToGroups.Keys;

    /// <summary>The group acting on <paramref name="axis"/> of <paramref name="tensor"/>, or null when none does or the tensor is unknown.</summary>
    public string? GroupAt(string tensor, int axis) =>
        _axesToGroups.TryGetValue(tensor, out var slots) && axis >= 0 && axis < slots.Length ? slots[axis] : null;

    /// <summary>
    /// Checks that the spec fits a state dict given as tensor shapes: every tensor is covered (permuted on some axis
    /// or listed as unpermuted), the spec names no tensor the state dict lacks, every permuted axis exists and every axis of a
    /// group has the group's size.
    /// </summary>
    /// <param name="shapes">State-dict key to shape.</param>
    /// <exception cref="PermutationSpecException">The message lists every problem, naming tensor, group, axis and sizes.</exception>
    public void Validate(IReadOnlyDictionary<string, long[]> shapes)
    {
        ArgumentNullException.ThrowIfNull(shapes);
        var problems = new List<string>();
        foreach (var (tensor, shape) in shapes)
        {
            if (!_axesToGroups.ContainsKey(tensor))
            {
                problems.Add($"tensor '{tensor}' {FormatShape(shape)} is not covered: no group acts on it and it is not listed as unpermuted");
            }
        }

        foreach (string tensor in _axesToGroups.Keys)
        {
            if (!shapes.ContainsKey(tensor))
            {
                problems.Add($"the spec names tensor '{tensor}', which the state dict does not have");
            }
        }

        foreach (var group in Groups)
        {
            foreach (var axis in group.Axes)
            {
                if (!shapes.TryGetValue(axis.Tensor, out var shape))
                {
                    continue;
                }

                if (axis.Axis >= shape.Length)
                {
                    problems.Add($"group '{group.Name}' acts on axis {axis.Axis} of '{axis.Tensor}', which has shape {FormatShape(shape)} (rank {shape.Length})");
                }
                else if (shape[axis.Axis] != group.Size)
                {
                    problems.Add(string.Create(
                        CultureInfo.InvariantCulture,
                        $"group '{group.Name}' has size {group.Size} but axis {axis.Axis} of '{axis.Tensor}' has size {shape[axis.Axis]} (shape {FormatShape(shape)})"));
                }
            }
        }

        if (problems.Count > 0)
        {
            throw new PermutationSpecException($"The permutation spec does not fit the state dict: {string.Join("; ", problems)}.");
        }
    }

    /// <summary>Checks the spec against a live state dict (see <see cref="Validate(IReadOnlyDictionary{string, long[]})"/>).</summary>
    /// <exception cref="PermutationSpecException">The spec does not fit.</exception>
    public void Validate(IReadOnlyDictionary<string, Tensor> state)
    {
        ArgumentNullException.ThrowIfNull(state);
        Validate(state.ToDictionary(p => p.Key, p => p.Value.shape, StringComparer.Ordinal));
    }

    /// <summary>The identity permutation of every group.</summary>
    public Dictionary<string, long[]> Identity() =>
        Groups.ToDictionary(g => g.Name, g => IdentityPermutation(g.Size), StringComparer.Ordinal);

    /// <summary>A uniformly random permutation of every group, drawn from <paramref name="random"/> (for tests and random restarts).</summary>
    public Dictionary<string, long[]> RandomPermutations(Random random)
    {
        ArgumentNullException.ThrowIfNull(random);
        var result = new Dictionary<string, long[]>(StringComparer.Ordinal);
        foreach (var group in Groups)
        {
            var perm = IdentityPermutation(group.Size);
            random.Shuffle(perm);
            result[group.Name] = perm;
        }

        return result;
    }

    /// <summary>
    /// Applies permutations to a state dict: every tensor axis of group <c>p</c> is gathered with <c>perm[p]</c>
    /// (<c>new[i] = old[perm[p][i]]</c>, <c>index_select</c>). The inputs are not modified.
    /// </summary>
    /// <param name="state">Tensors by state-dict name; every name must be known to the spec (tensors the spec names but
    /// <paramref name="state"/> lacks are simply absent from the result, so a parameters-only dictionary works).</param>
    /// <param name="permutations">One permutation per group of the spec (see <see cref="CheckPermutations"/>).</param>
    /// <returns>A new dictionary of new tensors (unpermuted tensors are copied), on the devices of the inputs, not
    /// requiring grad. The caller owns and must dispose them.</returns>
    /// <exception cref="ArgumentException">A permutation is missing, of the wrong length, or not a permutation.</exception>
    /// <exception cref="PermutationSpecException">A tensor is unknown to the spec, or a permuted axis has the wrong size.</exception>
    public Dictionary<string, Tensor> Permute(IReadOnlyDictionary<string, Tensor> state, IReadOnlyDictionary<string, long[]> permutations)
    {
        ArgumentNullException.ThrowIfNull(state);
        CheckPermutations(permutations);
        foreach (var (name, tensor) in state)
        {
            if (!_axesToGroups.TryGetValue(name, out var slots))
            {
                throw new PermutationSpecException($"Tensor '{name}' is not in the permutation spec.");
            }

            for (int axis = 0; axis < slots.Length; axis++)
            {
                if (slots[axis] is not { } groupName)
                {
                    continue;
                }

                int size = _groupsByName[groupName].Size;
                if (axis >= tensor.dim() || tensor.shape[axis] != size)
                {
                    throw new PermutationSpecException(string.Create(
                        CultureInfo.InvariantCulture,
                        $"Group '{groupName}' has size {size} but tensor '{name}' has shape {FormatShape(tensor.shape)} on axis {axis}."));
                }
            }
        }

        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var indices = new Dictionary<(string Group, string Device), Tensor>();
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (name, tensor) in state)
        {
            var slots = _axesToGroups[name];
            Tensor? permuted = null;
            for (int axis = 0; axis < slots.Length; axis++)
            {
                if (slots[axis] is not { } groupName)
                {
                    continue;
                }

                var key = (groupName, tensor.device.ToString());
                if (!indices.TryGetValue(key, out var index))
                {
                    index = torch.tensor(permutations[groupName], device: tensor.device);
                    indices.Add(key, index);
                }

                permuted = (permuted ?? tensor).index_select(axis, index);
            }

            result[name] = (permuted ?? tensor.clone()).MoveToOuterDisposeScope();
        }

        return result;
    }

    /// <summary>
    /// <see cref="Permute"/> of one tensor: a new tensor (a copy when no axis of it is permuted), in the caller's dispose
    /// scope. For folding a model into a sum tensor by tensor without a permuted copy of the whole model.
    /// </summary>
    /// <param name="name">The tensor's state-dict name.</param>
    /// <param name="tensor">The tensor.</param>
    /// <param name="permutations">One permutation per group of the spec.</param>
    public Tensor PermuteTensor(string name, Tensor tensor, IReadOnlyDictionary<string, long[]> permutations)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(tensor);
        return Permute(new Dictionary<string, Tensor>(StringComparer.Ordinal) { [name] = tensor }, permutations)[name];
    }

    /// <summary>
    /// Checks a set of permutations against the spec: exactly one entry per group, each of the group's size and a
    /// permutation of <c>0..Size-1</c>.
    /// </summary>
    /// <exception cref="ArgumentException">The message names the group and what is wrong.</exception>
    public void CheckPermutations(IReadOnlyDictionary<string, long[]> permutations)
    {
        ArgumentNullException.ThrowIfNull(permutations);
        foreach (string name in permutations.Keys)
        {
            if (!_groupsByName.ContainsKey(name))
            {
                throw new ArgumentException($"Permutation for unknown group '{name}'.", nameof(permutations));
            }
        }

        foreach (var group in Groups)
        {
            if (!permutations.TryGetValue(group.Name, out var perm) || perm is null)
            {
                throw new ArgumentException($"No permutation given for group '{group.Name}'.", nameof(permutations));
            }

            if (perm.Length != group.Size)
            {
                throw new ArgumentException(
                    string.Create(CultureInfo.InvariantCulture, $"The permutation for group '{group.Name}' has length {perm.Length}, not the group's size {group.Size}."),
                    nameof(permutations));
            }

            if (!IsPermutation(perm))
            {
                throw new ArgumentException($"The array given for group '{group.Name}' is not a permutation of 0..{group.Size - 1}.", nameof(permutations));
            }
        }
    }

    /// <summary>Whether <paramref name="perm"/> holds each of <c>0..Length-1</c> exactly once.</summary>
    public static bool IsPermutation(ReadOnlySpan<long> perm)
    {
        var seen = new bool[perm.Length];
        foreach (long p in perm)
        {
            if (p < 0 || p >= perm.Length || seen[p])
            {
                return false;
            }

            seen[p] = true;
        }

        return true;
    }

    /// <summary><c>0, 1, ..., size-1</c>.</summary>
    public static long[] IdentityPermutation(int size)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(size);
        var perm = new long[size];
        for (int i = 0; i < size; i++)
        {
            perm[i] = i;
        }

        return perm;
    }

    /// <summary>The inverse permutation: <c>inverse[perm[i]] = i</c>, so gathering with <paramref name="perm"/> and then with the inverse restores the original.</summary>
    /// <exception cref="ArgumentException"><paramref name="perm"/> is not a permutation.</exception>
    public static long[] Invert(long[] perm)
    {
        ArgumentNullException.ThrowIfNull(perm);
        if (!IsPermutation(perm))
        {
            throw new ArgumentException("Not a permutation.", nameof(perm));
        }

        var inverse = new long[perm.Length];
        for (int i = 0; i < perm.Length; i++)
        {
            inverse[perm[i]] = i;
        }

        return inverse;
    }

    /// <summary>The inverse of every permutation (see <see cref="Invert(long[])"/>).</summary>
    public static Dictionary<string, long[]> Invert(IReadOnlyDictionary<string, long[]> permutations)
    {
        ArgumentNullException.ThrowIfNull(permutations);
        return permutations.ToDictionary(p => p.Key, p => Invert(p.Value), StringComparer.Ordinal);
    }

    /// <summary>
    /// The single permutation equal to gathering with <paramref name="first"/> and then with <paramref name="second"/>:
    /// <c>result[i] = first[second[i]]</c>.
    /// </summary>
    /// <exception cref="ArgumentException">The arrays differ in length or are not permutations.</exception>
    public static long[] Compose(long[] first, long[] second)
    {
        ArgumentNullException.ThrowIfNull(first);
        ArgumentNullException.ThrowIfNull(second);
        if (first.Length != second.Length || !IsPermutation(first) || !IsPermutation(second))
        {
            throw new ArgumentException("Compose needs two permutations of the same length.", nameof(second));
        }

        var result = new long[first.Length];
        for (int i = 0; i < result.Length; i++)
        {
            result[i] = first[second[i]];
        }

        return result;
    }

    /// <summary>Composes per group (see <see cref="Compose(long[], long[])"/>); both dictionaries must have the same groups.</summary>
    public static Dictionary<string, long[]> Compose(IReadOnlyDictionary<string, long[]> first, IReadOnlyDictionary<string, long[]> second)
    {
        ArgumentNullException.ThrowIfNull(first);
        ArgumentNullException.ThrowIfNull(second);
        if (first.Count != second.Count || first.Keys.Any(k => !second.ContainsKey(k)))
        {
            throw new ArgumentException("Compose needs permutations for the same groups.", nameof(second));
        }

        return first.ToDictionary(p => p.Key, p => Compose(p.Value, second[p.Key]), StringComparer.Ordinal);
    }

    private static string FormatShape(long[] shape) =>
        "[" + string.Join(",", shape.Select(s => s.ToString(CultureInfo.InvariantCulture))) + "]";
}
