using FedRebasin.Merging.Assignment;
using static FedRebasin.Merging.Tests.Assignment.AssignmentTestKit;

namespace FedRebasin.Merging.Tests.Assignment;

/// <summary>Edge cases: trivial sizes, constant matrices, planted optima, extreme magnitudes, bad input.</summary>
public sealed class DegenerateInputTests
{
    [Fact]
    public void Solve_SizeZero_ReturnsEmptyResult()
    {
        Assert.Empty(LinearAssignment.SolveMinimize(ReadOnlySpan<double>.Empty, 0));
        Assert.Empty(LinearAssignment.SolveMaximize(ReadOnlySpan<double>.Empty, 0));
        AssignmentResult r = LinearAssignment.Solve(ReadOnlySpan<double>.Empty, 0, maximize: true);
        Assert.Equal(0, r.Size);
        Assert.Equal(0.0, r.Objective);
        Assert.Empty(r.U);
        Assert.Empty(r.V);
        Assert.Equal(0.0, LinearAssignment.Solve(ReadOnlySpan<double>.Empty, 0, false, Span<int>.Empty));
        Assert.Empty(LinearAssignment.SolveMinimize(new double[0, 0]));
    }

    [Theory]
    [InlineData(-3.5)]
    [InlineData(0.0)]
    [InlineData(1e300)]
    [InlineData(-1e-300)]
    public void Solve_SizeOne_AssignsOnlyColumnWithTightPotentials(double value)
    {
        double[] c = [value];
        Assert.Equal([0], LinearAssignment.SolveMinimize(c, 1));
        Assert.Equal([0], LinearAssignment.SolveMaximize(c, 1));
        foreach (bool maximize in new[] { false, true })
        {
            AssignmentResult r = LinearAssignment.Solve(c, 1, maximize);
            Assert.Equal(value, r.Objective);
            Assert.Equal(value, r.U[0] + r.V[0]);
            Assert.True(Certificate.IsOptimal(c, 1, r));
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(5)]
    [InlineData(257)]
    public void Solve_AllZeros_ReturnsPermutationWithZeroObjective(int n)
    {
        var c = new double[n * n];
        AssignmentResult r = SolveAndCertify(c, n, maximize: false);
        Assert.Equal(0.0, r.Objective);
        Assert.Equal(0.0, SolveAndCertify(c, n, maximize: true).Objective);
    }

    [Theory]
    [InlineData(2, 7.5)]
    [InlineData(9, -3.25)]
    [InlineData(300, 1e12)]
    public void Solve_AllEqual_ObjectiveIsNTimesValue(int n, double value)
    {
        double[] c = Enumerable.Repeat(value, n * n).ToArray();
        Assert.Equal(n * value, SolveAndCertify(c, n, maximize: false).Objective);
        Assert.Equal(n * value, SolveAndCertify(c, n, maximize: true).Objective);
    }

    [Theory]
    [InlineData(6)]
    [InlineData(200)]
    public void Solve_IdentityDominant_ReturnsIdentity(int n)
    {
        double[] c = UniformDoubles(new Random(n), n);
        for (int i = 0; i < n; i++)
        {
            c[(i * n) + i] += 100.0;
        }

        Assert.Equal(Enumerable.Range(0, n), LinearAssignment.SolveMaximize(c, n));
        double[] negated = c.Select(x => -x).ToArray();
        Assert.Equal(Enumerable.Range(0, n), LinearAssignment.SolveMinimize(negated, n));
    }

    [Theory]
    [InlineData(7, 1)]
    [InlineData(64, 2)]
    [InlineData(500, 3)]
    public void Solve_PlantedPermutationWithBonus_IsRecovered(int n, int seed)
    {
        var rng = new Random(seed);
        int[] planted = Enumerable.Range(0, n).OrderBy(_ => rng.Next()).ToArray();
        double[] c = LowRank(rng, n, 4);
        double bonus = 2.0 * n * MaxAbs(c); // larger than any possible difference of other assignments
        for (int i = 0; i < n; i++)
        {
            c[(i * n) + planted[i]] += bonus;
        }

        Assert.Equal(planted, LinearAssignment.SolveMaximize(c, n));
        Assert.Equal(planted, LinearAssignment.SolveMinimize(c.Select(x => -x).ToArray(), n));
        SolveAndCertify(c, n, maximize: true);
    }

    [Theory]
    [InlineData(1e300)]
    [InlineData(-1e300)]
    [InlineData(1.7e308)]
    [InlineData(1e-300)]
    [InlineData(1e-200)]
    [InlineData(1e150)]
    public void Solve_ExtremeScale_MatchesBruteForceOfUnscaledProblem(double factor)
    {
        var rng = new Random(11);
        for (int t = 0; t < 60; t++)
        {
            int n = 1 + (t % 7);
            double[] unit = t % 2 == 0 ? Integers(rng, n, -5, 5) : UniformDoubles(rng, n, -1.0, 1.0);
            double[] c = Scaled(unit, factor / 5.0 * (t % 2 == 0 ? 1.0 : 5.0));

            // The optimal permutation set is scale invariant (for positive factors; negative swaps the sense).
            bool flip = factor < 0;
            int[] colMin = LinearAssignment.SolveMinimize(c, n);
            int[] colMax = LinearAssignment.SolveMaximize(c, n);
            var (min, max) = BruteForce(unit, n);
            double tol = 1e-9 * Math.Max(1.0, MaxAbs(unit) * n);
            Assert.Equal(flip ? max : min, Objective(unit, n, colMin), tol);
            Assert.Equal(flip ? min : max, Objective(unit, n, colMax), tol);
        }
    }

    [Theory]
    [InlineData(1e300)]
    [InlineData(1e-300)]
    [InlineData(1e305)] // n·1e305 still fits in a double, so the objective and potentials are finite
    public void Solve_ExtremeScaleLarge_IsCertified(double factor)
    {
        const int n = 150;
        double[] c = Scaled(UniformDoubles(new Random(12), n, -1.0, 1.0), factor);
        AssignmentResult r = SolveAndCertify(c, n, maximize: true);
        Assert.True(double.IsFinite(r.Objective));
        Assert.All(r.U, u => Assert.True(double.IsFinite(u)));
        Assert.All(r.V, v => Assert.True(double.IsFinite(v)));
        SolveAndCertify(c, n, maximize: false);
    }

    [Fact]
    public void Solve_SubnormalIntegerMultiples_MatchesBruteForceExactly()
    {
        // Multiples of the smallest subnormal are integers in disguise; sums of them are exact.
        var rng = new Random(13);
        for (int t = 0; t < 100; t++)
        {
            int n = 1 + (t % 6);
            double[] k = Integers(rng, n, 0, 6);
            double[] c = k.Select(x => x * double.Epsilon).ToArray();
            var (min, max) = BruteForce(k, n);
            Assert.Equal(min, Objective(k, n, LinearAssignment.SolveMinimize(c, n)));
            Assert.Equal(max, Objective(k, n, LinearAssignment.SolveMaximize(c, n)));
        }
    }

    [Fact]
    public void Solve_MixedMagnitudesAndSigns_MatchesBruteForce()
    {
        // Entries ±10^e with e uniform in [-300, 300]: the huge entries decide, the rest is rounding noise.
        var rng = new Random(14);
        for (int t = 0; t < 200; t++)
        {
            int n = 1 + (t % 7);
            double[] c = Enumerable.Range(0, n * n)
                .Select(_ => (rng.Next(2) == 0 ? -1 : 1) * Math.Pow(10, rng.Next(-300, 301)))
                .ToArray();
            var (min, max) = BruteForce(c, n);
            double tol = 1e-12 * MaxAbs(c) * n;
            Assert.Equal(min, Objective(c, n, LinearAssignment.SolveMinimize(c, n)), tol);
            Assert.Equal(max, Objective(c, n, LinearAssignment.SolveMaximize(c, n)), tol);
        }
    }

    [Fact]
    public void Solve_NegativeValues_MatchesBruteForceAndIsCertified()
    {
        var rng = new Random(15);
        for (int n = 1; n <= 7; n++)
        {
            double[] c = Integers(rng, n, -100, -1);
            AssertMatchesBruteForce(c, n, maximize: false, tolerance: 0.0);
            AssertMatchesBruteForce(c, n, maximize: true, tolerance: 0.0);
        }

        SolveAndCertify(Integers(rng, 300, -1000, -1), 300, maximize: false);
        SolveAndCertify(Integers(rng, 300, -1000, -1), 300, maximize: true);
    }

    [Theory]
    [InlineData(3, 10)]
    [InlineData(3, 8)]
    [InlineData(0, 1)]
    [InlineData(4, 12)]
    public void Solve_LengthNotNSquared_ThrowsArgumentException(int n, int length)
    {
        var c = new double[length];
        var e = Assert.Throws<ArgumentException>(() => LinearAssignment.SolveMinimize(c, n));
        Assert.Equal("cost", e.ParamName);
        Assert.Throws<ArgumentException>(() => LinearAssignment.SolveMaximize(c, n));
        Assert.Throws<ArgumentException>(() => LinearAssignment.Solve(c, n, maximize: true));
        Assert.Throws<ArgumentException>(() => LinearAssignment.Solve(c, n, false, new int[Math.Max(n, 0)]));
    }

    [Fact]
    public void Solve_NegativeSize_ThrowsArgumentOutOfRange()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => LinearAssignment.SolveMinimize(new double[1], -1));
    }

    [Fact]
    public void Solve_NonSquareArray_ThrowsArgumentException()
    {
        var e = Assert.Throws<ArgumentException>(() => LinearAssignment.SolveMinimize(new double[2, 3]));
        Assert.Contains("2x3", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(5, 2, 3, double.NaN)]
    [InlineData(5, 4, 4, double.PositiveInfinity)] // last entry: in the scalar tail of the SIMD scan
    [InlineData(5, 0, 0, double.NegativeInfinity)]
    [InlineData(64, 63, 1, double.NaN)]
    [InlineData(1, 0, 0, double.NaN)]
    public void Solve_NonFiniteEntry_ThrowsNamingRowAndColumn(int n, int row, int col, double bad)
    {
        double[] c = UniformDoubles(new Random(16), n);
        c[(row * n) + col] = bad;
        var e = Assert.Throws<ArgumentException>(() => LinearAssignment.SolveMaximize(c, n));
        Assert.Contains($"({row}, {col})", e.Message, StringComparison.Ordinal);
        Assert.Equal("cost", e.ParamName);
        Assert.Throws<ArgumentException>(() => LinearAssignment.SolveMinimize(c, n));
        Assert.Throws<ArgumentException>(() => LinearAssignment.Solve(c, n, maximize: false));
    }

    [Fact]
    public void Solve_SeveralNonFiniteEntries_NamesFirstInRowMajorOrder()
    {
        const int n = 6;
        var c = new double[n * n];
        c[(4 * n) + 1] = double.NaN;
        c[(1 * n) + 5] = double.PositiveInfinity;
        c[(3 * n) + 0] = double.NegativeInfinity;
        var e = Assert.Throws<ArgumentException>(() => LinearAssignment.SolveMinimize(c, n));
        Assert.Contains("(1, 5)", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Solve_TwoDimensionalArrayOverloads_MatchSpanOverloads()
    {
        const int n = 40;
        double[] flat = UniformDoubles(new Random(17), n);
        var grid = new double[n, n];
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < n; j++)
            {
                grid[i, j] = flat[(i * n) + j];
            }
        }

        Assert.Equal(LinearAssignment.SolveMaximize(flat, n), LinearAssignment.SolveMaximize(grid));
        Assert.Equal(LinearAssignment.SolveMinimize(flat, n), LinearAssignment.SolveMinimize(grid));
        Assert.Equal(LinearAssignment.Solve(flat, n, true).Objective, LinearAssignment.Solve(grid, true).Objective);
    }

    [Fact]
    public void Solve_DestinationOverload_MatchesArrayOverloadAndRejectsShortDestination()
    {
        const int n = 33;
        double[] c = LowRank(new Random(18), n, 3);
        var destination = new int[n + 2];
        double objective = LinearAssignment.Solve(c, n, maximize: true, destination);
        Assert.Equal(LinearAssignment.SolveMaximize(c, n), destination[..n]);
        Assert.Equal(Objective(c, n, destination), objective);
        Assert.Throws<ArgumentException>(() => LinearAssignment.Solve(c, n, true, new int[n - 1]));
    }

    [Fact]
    public void Solve_Always_LeavesInputUnchanged()
    {
        foreach (double factor in new[] { 1.0, 1e300 })
        {
            double[] c = Scaled(UniformDoubles(new Random(19), 50, -1, 1), factor);
            double[] copy = (double[])c.Clone();
            LinearAssignment.Solve(c, 50, maximize: true);
            LinearAssignment.Solve(c, 50, maximize: false);
            Assert.Equal(copy, c);
        }
    }

    [Theory]
    [InlineData(new int[0], true)]
    [InlineData(new[] { 0 }, true)]
    [InlineData(new[] { 2, 0, 1 }, true)]
    [InlineData(new[] { 1 }, false)]
    [InlineData(new[] { 0, 0 }, false)]
    [InlineData(new[] { 0, -1 }, false)]
    [InlineData(new[] { 0, 2 }, false)]
    public void IsPermutation_Candidates_ClassifiedCorrectly(int[] p, bool expected)
    {
        Assert.Equal(expected, LinearAssignment.IsPermutation(p));
    }
}
