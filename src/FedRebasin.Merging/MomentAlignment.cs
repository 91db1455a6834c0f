using FedRebasin.Models.Permutations;

namespace FedRebasin.Merging;

/// <summary>
/// Moves per-channel moments into another permutation frame. Channel statistics are permutation-equivariant, so a
/// client's moments, permuted with the permutation found for the client's weights, are the moments its aligned model
/// would have: the coordinator repairs toward them without any client data.
/// </summary>
public static class MomentAlignment
{
    /// <summary>
    /// Permutes each repair point's moments with the permutation of the point's group (<c>new[i] = old[perm[i]]</c>).
    /// </summary>
    /// <exception cref="ArgumentException">Counts or channels do not match the repair points, or a group has no permutation.</exception>
    public static IReadOnlyList<ChannelMoments> Permute(
        IReadOnlyList<RepairPoint> points,
        IReadOnlyList<ChannelMoments> moments,
        IReadOnlyDictionary<string, long[]> permutations)
    {
        ArgumentNullException.ThrowIfNull(points);
        ArgumentNullException.ThrowIfNull(moments);
        ArgumentNullException.ThrowIfNull(permutations);
        if (points.Count != moments.Count)
        {
            throw new ArgumentException($"{moments.Count} moment vectors given for {points.Count} repair points.");
        }

        var result = new ChannelMoments[points.Count];
        for (int p = 0; p < points.Count; p++)
        {
            if (moments[p].Channels != points[p].Channels)
            {
                throw new ArgumentException($"Repair point '{points[p].Name}' has {points[p].Channels} channels but its moments have {moments[p].Channels}.");
            }

            if (!permutations.TryGetValue(points[p].Group, out var perm))
            {
                throw new ArgumentException($"No permutation for group '{points[p].Group}' of repair point '{points[p].Name}'.");
            }

            result[p] = moments[p].Permute(perm);
        }

        return result;
    }
}
