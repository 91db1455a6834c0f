using System.Globalization;

namespace FedRebasin.Merging.Interpolation;

/// <summary>Interpolation coefficients α ∈ [0, 1] (0 = model A, 1 = model B).</summary>
public static class Alphas
{
    /// <summary><paramref name="steps"/> evenly spaced values from exactly 0 to exactly 1 (Git Re-Basin uses 25).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="steps"/> is below 2.</exception>
    public static double[] Linspace(int steps)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(steps, 2);
        var alphas = new double[steps];
        for (int i = 0; i < steps; i++)
        {
            alphas[i] = i == steps - 1 ? 1.0 : i / (double)(steps - 1);
        }

        return alphas;
    }

    /// <summary>
    /// Checks that <paramref name="alphas"/> is a curve the barrier can be computed from: at least two values, strictly
    /// increasing, all in [0, 1], the first exactly 0 and the last exactly 1.
    /// </summary>
    /// <exception cref="ArgumentException">The message says which rule is broken and where.</exception>
    public static void Validate(IReadOnlyList<double> alphas)
    {
        ArgumentNullException.ThrowIfNull(alphas);
        if (alphas.Count < 2)
        {
            throw new ArgumentException($"An interpolation curve needs at least the alphas 0 and 1; got {alphas.Count} value(s).", nameof(alphas));
        }

        for (int i = 0; i < alphas.Count; i++)
        {
            if (!(alphas[i] >= 0 && alphas[i] <= 1))
            {
                throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"Alpha {alphas[i]} (index {i}) is not in [0, 1]."), nameof(alphas));
            }

            if (i > 0 && !(alphas[i] > alphas[i - 1]))
            {
                throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"Alphas must be strictly increasing; {alphas[i]} (index {i}) follows {alphas[i - 1]}."), nameof(alphas));
            }
        }

        if (alphas[0] != 0 || alphas[^1] != 1)
        {
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"Alphas must start at 0 and end at 1 (the endpoints define the barrier); got {alphas[0]} .. {alphas[^1]}."), nameof(alphas));
        }
    }
}
