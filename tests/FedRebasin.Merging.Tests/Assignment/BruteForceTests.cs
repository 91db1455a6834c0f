using FedRebasin.Merging.Assignment;
using static FedRebasin.Merging.Tests.Assignment.AssignmentTestKit;

namespace FedRebasin.Merging.Tests.Assignment;

/// <summary>The solver's optimum equals the brute-force optimum over all n! permutations.</summary>
public sealed class BruteForceTests
{
    /// <summary>Random matrices per size; fewer for n = 7 where brute force enumerates 5040 permutations.</summary>
    private static int CasesFor(int n) => n switch
    {
        <= 4 => 400,
        5 => 200,
        6 => 80,
        _ => 30,
    };

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    [InlineData(6)]
    [InlineData(7)]
    public void Solve_RandomSmallIntegerMatrices_MatchesBruteForceExactly(int n)
    {
        var rng = new Random(1000 + n);
        for (int t = 0; t < CasesFor(n); t++)
        {
            // Alternate a tiny range (0..2: heavy ties, many optimal assignments) with a signed wider one.
            double[] c = t % 2 == 0 ? Integers(rng, n, 0, 2) : Integers(rng, n, -9, 9);
            AssertMatchesBruteForce(c, n, maximize: false, tolerance: 0.0);
            AssertMatchesBruteForce(c, n, maximize: true, tolerance: 0.0);
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    [InlineData(6)]
    [InlineData(7)]
    public void Solve_RandomSmallDoubleMatrices_MatchesBruteForceWithin1e9(int n)
    {
        var rng = new Random(2000 + n);
        for (int t = 0; t < CasesFor(n); t++)
        {
            double[] c = (t % 3) switch
            {
                0 => UniformDoubles(rng, n),
                1 => UniformDoubles(rng, n, -1000.0, 1000.0),
                _ => LowRank(rng, n, 2),
            };
            AssertMatchesBruteForce(c, n, maximize: false, tolerance: 1e-9);
            AssertMatchesBruteForce(c, n, maximize: true, tolerance: 1e-9);
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    [InlineData(6)]
    [InlineData(7)]
    public void Solve_RandomSmallMatrices_DualCertificateHolds(int n)
    {
        var rng = new Random(3000 + n);
        for (int t = 0; t < CasesFor(n) / 4; t++)
        {
            double[] c = t % 2 == 0 ? Integers(rng, n, 0, 3) : UniformDoubles(rng, n, -5.0, 5.0);
            AssignmentResult min = SolveAndCertify(c, n, maximize: false);
            AssignmentResult max = SolveAndCertify(c, n, maximize: true);
            var (bfMin, bfMax) = BruteForce(c, n);
            Assert.Equal(bfMin, min.Objective, 1e-9);
            Assert.Equal(bfMax, max.Objective, 1e-9);
        }
    }

    [Fact]
    public void Solve_Every2x2MatrixOver0To3_MatchesBruteForce() => Exhaustive(n: 2, values: 4);

    [Fact]
    public void Solve_Every3x3MatrixOver0To2_MatchesBruteForce() => Exhaustive(n: 3, values: 3);

    [Fact]
    public void Solve_Every4x4ZeroOneMatrix_MatchesBruteForce() => Exhaustive(n: 4, values: 2);

    /// <summary>Enumerates every n×n matrix with entries in {0, …, values−1} (values^(n²) matrices).</summary>
    private static void Exhaustive(int n, int values)
    {
        int cells = n * n;
        long total = (long)Math.Pow(values, cells);
        var c = new double[cells];
        for (long code = 0; code < total; code++)
        {
            long rest = code;
            for (int k = 0; k < cells; k++)
            {
                c[k] = rest % values;
                rest /= values;
            }

            var (min, max) = BruteForce(c, n);
            Assert.Equal(min, Objective(c, n, LinearAssignment.SolveMinimize(c, n)));
            Assert.Equal(max, Objective(c, n, LinearAssignment.SolveMaximize(c, n)));
        }
    }
}
