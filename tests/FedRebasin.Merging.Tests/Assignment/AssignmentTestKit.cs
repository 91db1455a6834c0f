using FedRebasin.Merging.Assignment;

namespace FedRebasin.Merging.Tests.Assignment;

/// <summary>Brute-force reference, matrix generators and shared assertions for the assignment tests.</summary>
internal static class AssignmentTestKit
{
    /// <summary>Optimal minimum and maximum of Σ c[i, p[i]] over all n! permutations (Heap's algorithm).</summary>
    public static (double Min, double Max) BruteForce(ReadOnlySpan<double> c, int n)
    {
        if (n == 0)
        {
            return (0.0, 0.0);
        }

        var p = new int[n];
        for (int i = 0; i < n; i++)
        {
            p[i] = i;
        }

        double min = double.PositiveInfinity;
        double max = double.NegativeInfinity;
        var counters = new int[n];
        Evaluate(c, n, p, ref min, ref max);
        int k = 1;
        while (k < n)
        {
            if (counters[k] < k)
            {
                int swapWith = (k % 2 == 0) ? 0 : counters[k];
                (p[swapWith], p[k]) = (p[k], p[swapWith]);
                Evaluate(c, n, p, ref min, ref max);
                counters[k]++;
                k = 1;
            }
            else
            {
                counters[k] = 0;
                k++;
            }
        }

        return (min, max);
    }

    private static void Evaluate(ReadOnlySpan<double> c, int n, int[] p, ref double min, ref double max)
    {
        double sum = Objective(c, n, p);
        min = Math.Min(min, sum);
        max = Math.Max(max, sum);
    }

    /// <summary>Σ c[i, p[i]] in row order (the same order the solver uses for its objective).</summary>
    public static double Objective(ReadOnlySpan<double> c, int n, ReadOnlySpan<int> p)
    {
        double sum = 0.0;
        for (int i = 0; i < n; i++)
        {
            sum += c[(i * n) + p[i]];
        }

        return sum;
    }

    public static double[] UniformDoubles(Random rng, int n, double low = 0.0, double high = 1.0)
    {
        var c = new double[n * n];
        for (int k = 0; k < c.Length; k++)
        {
            c[k] = low + ((high - low) * rng.NextDouble());
        }

        return c;
    }

    /// <summary>Integers in [low, high] inclusive: small ranges create many ties and many optimal assignments.</summary>
    public static double[] Integers(Random rng, int n, int low, int high)
    {
        var c = new double[n * n];
        for (int k = 0; k < c.Length; k++)
        {
            c[k] = rng.Next(low, high + 1);
        }

        return c;
    }

    public static double[] Gaussian(Random rng, int count)
    {
        var g = new double[count];
        for (int k = 0; k < count; k++)
        {
            double r = Math.Sqrt(-2.0 * Math.Log(1.0 - rng.NextDouble()));
            g[k] = r * Math.Cos(2.0 * Math.PI * rng.NextDouble());
        }

        return g;
    }

    /// <summary>A·Bᵀ with A, B n×rank standard normal: the structure of weight-matching similarity matrices.</summary>
    public static double[] LowRank(Random rng, int n, int rank)
    {
        double[] a = Gaussian(rng, n * rank);
        double[] b = Gaussian(rng, n * rank);
        var c = new double[n * n];
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < n; j++)
            {
                double dot = 0.0;
                for (int k = 0; k < rank; k++)
                {
                    dot += a[(i * rank) + k] * b[(j * rank) + k];
                }

                c[(i * n) + j] = dot;
            }
        }

        return c;
    }

    public static double[] Scaled(double[] c, double factor) => c.Select(x => x * factor).ToArray();

    public static double MaxAbs(ReadOnlySpan<double> c)
    {
        double m = 0.0;
        foreach (double x in c)
        {
            m = Math.Max(m, Math.Abs(x));
        }

        return m;
    }

    /// <summary>
    /// Solves in the given sense and checks everything that does not need a reference: the assignment is a
    /// permutation, the reported objective is its cost, and the dual certificate holds.
    /// </summary>
    public static AssignmentResult SolveAndCertify(double[] c, int n, bool maximize, double relativeTolerance = 1e-9)
    {
        AssignmentResult result = LinearAssignment.Solve(c, n, maximize);
        Assert.Equal(n, result.Size);
        Assert.True(LinearAssignment.IsPermutation(result.Assignment), "assignment is not a permutation");
        Assert.Equal(Objective(c, n, result.Assignment), result.Objective);
        double scale = Math.Max(MaxAbs(c), double.Epsilon);
        Assert.True(
            Certificate.IsOptimal(c, n, result, relativeTolerance),
            $"certificate failed: dual infeasibility {Certificate.MaxDualInfeasibility(c, n, result):R}, slackness {Certificate.MaxSlacknessViolation(c, n, result):R}, scale {scale:R}");
        double gap = Certificate.DualityGap(c, n, result);
        Assert.InRange(gap, 0.0, relativeTolerance * scale * Math.Max(1, n));
        return result;
    }

    /// <summary>Asserts the solver's optimum equals the brute-force optimum (within tol·max(1, |optimum|)).</summary>
    public static void AssertMatchesBruteForce(double[] c, int n, bool maximize, double tolerance)
    {
        var (min, max) = BruteForce(c, n);
        double expected = maximize ? max : min;
        int[] col = maximize ? LinearAssignment.SolveMaximize(c, n) : LinearAssignment.SolveMinimize(c, n);
        Assert.True(LinearAssignment.IsPermutation(col), "assignment is not a permutation");
        double actual = Objective(c, n, col);
        double allowed = tolerance * Math.Max(1.0, Math.Abs(expected));
        Assert.True(
            Math.Abs(actual - expected) <= allowed,
            $"n={n} maximize={maximize}: solver objective {actual:R}, brute force {expected:R}; matrix [{string.Join(", ", c.Select(x => x.ToString("R", System.Globalization.CultureInfo.InvariantCulture)))}]");
    }
}
