namespace FedRebasin.Merging.Repair;

/// <summary>How a merged model's per-channel statistics are renormalised after merging (ALGORITHMS.md §4, §5.1).</summary>
public enum RepairMode
{
    /// <summary>No correction: the merged model is only measured.</summary>
    None,

    /// <summary>REPAIR (Jordan et al.): <c>y' = (y − μ̂)·σ*/σ̂ + μ*</c>; every channel gets the target mean and std.</summary>
    Repair,

    /// <summary>RESCALE (Qu and Horváth): <c>y' = y·σ*/σ̂</c>; the std matches, the mean is scaled by the same ratio.</summary>
    Rescale,

    /// <summary>RESHIFT (Qu and Horváth): <c>y' = y − μ̂ + μ*</c>; the mean matches, the std is unchanged.</summary>
    Reshift,

    /// <summary>Re-estimates every BatchNorm's running statistics exactly on calibration data (BatchNorm models only).</summary>
    BnReset,
}

/// <summary>Names of <see cref="RepairMode"/> values as used on the command line and in configuration.</summary>
public static class RepairModes
{
    /// <summary>Every accepted name, in <see cref="RepairMode"/> order: <c>none</c>, <c>repair</c>, <c>rescale</c>, <c>reshift</c>, <c>bn-reset</c>.</summary>
    public static IReadOnlyList<string> Names { get; } = ["none", "repair", "rescale", "reshift", "bn-reset"];

    /// <summary>Parses a mode name (case-insensitive, surrounding white space ignored).</summary>
    /// <exception cref="FormatException">The name is not one of <see cref="Names"/>; the message lists them.</exception>
    public static RepairMode Parse(string text)
    {
        int index = text is null ? -1 : IndexOf(text.Trim().ToLowerInvariant());
        if (index < 0)
        {
            throw new FormatException($"Repair mode must be one of {string.Join(", ", Names)}, not '{text}'.");
        }

        return (RepairMode)index;
    }

    /// <summary>The canonical name of <paramref name="mode"/> (the inverse of <see cref="Parse"/>).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is not a defined <see cref="RepairMode"/>.</exception>
    public static string ToName(RepairMode mode)
    {
        if (!Enum.IsDefined(mode))
        {
            throw new ArgumentOutOfRangeException(nameof(mode), mode, "Unknown repair mode.");
        }

        return Names[(int)mode];
    }

    /// <summary>Whether <paramref name="mode"/> folds a per-channel correction toward targets (repair, rescale, reshift).</summary>
    public static bool IsCorrection(RepairMode mode) => mode is RepairMode.Repair or RepairMode.Rescale or RepairMode.Reshift;

    private static int IndexOf(string name)
    {
        for (int i = 0; i < Names.Count; i++)
        {
            if (Names[i] == name)
            {
                return i;
            }
        }

        return -1;
    }
}
