using FedRebasin.Merging.Assignment;
using static FedRebasin.Merging.Tests.Assignment.AssignmentTestKit;

namespace FedRebasin.Merging.Tests.Assignment;

/// <summary>
/// Optimality of large solutions, certified independently of the solver by LP duality: the returned
/// potentials are dual feasible, complementary slackness holds, and the duality gap is ~0.
/// </summary>
public sealed class LargeCertificateTests
{
    public static TheoryData<int, string> Cases()
    {
        var data = new TheoryData<int, string>();
        foreach (int n in new[] { 100, 500, 1000 })
        {
            foreach (string kind in new[] { "uniform", "ties", "lowrank" })
            {
                data.Add(n, kind);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Solve_LargeRandomMatrix_IsCertifiedOptimalBothSenses(int n, string kind)
    {
        var rng = new Random((n * 31) + kind.Length);
        double[] c = kind switch
        {
            "uniform" => UniformDoubles(rng, n),
            "ties" => Integers(rng, n, 0, 4), // 5 distinct values: huge numbers of ties
            _ => LowRank(rng, n, 16), // A·Bᵀ, like weight-matching similarity matrices
        };

        AssignmentResult min = SolveAndCertify(c, n, maximize: false);
        AssignmentResult max = SolveAndCertify(c, n, maximize: true);
        Assert.True(min.Objective <= max.Objective);

        // Strong duality: ΣU + ΣV equals the optimum.
        double scale = MaxAbs(c) * n;
        Assert.Equal(min.Objective, min.U.Sum() + min.V.Sum(), 1e-9 * scale);
        Assert.Equal(max.Objective, max.U.Sum() + max.V.Sum(), 1e-9 * scale);
    }

    [Theory]
    [InlineData(400)]
    public void Solve_StructuredTieMatrices_AreCertifiedOptimal(int n)
    {
        // Patterns with massive degeneracy that can trip tie handling or cycle a naive implementation.
        var patterns = new Func<int, int, double>[]
        {
            (i, j) => i + j, // every permutation is optimal
            (i, j) => (i * j) % 3,
            (i, j) => Math.Min(i, j),
            (i, j) => Math.Abs(i - j),
            (i, j) => (double)i * j, // rank one: optimum pairs sorted against reverse-sorted
            (i, j) => (i / 7) == (j / 7) ? 1.0 : 0.0, // block diagonal of ones
        };
        foreach (var pattern in patterns)
        {
            var c = new double[n * n];
            for (int i = 0; i < n; i++)
            {
                for (int j = 0; j < n; j++)
                {
                    c[(i * n) + j] = pattern(i, j);
                }
            }

            SolveAndCertify(c, n, maximize: false);
            SolveAndCertify(c, n, maximize: true);
        }
    }

    [Fact]
    public void Solve_RankOneProduct_MatchesRearrangementInequality()
    {
        // c[i, j] = a[i]·b[j] with a, b increasing: the maximum pairs i with i (sum of a[i]·b[i]) and the
        // minimum pairs i with n−1−i (rearrangement inequality).
        const int n = 300;
        var a = Enumerable.Range(0, n).Select(i => 1.0 + i).ToArray();
        var b = Enumerable.Range(0, n).Select(j => 2.0 + (0.5 * j)).ToArray();
        var c = new double[n * n];
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < n; j++)
            {
                c[(i * n) + j] = a[i] * b[j];
            }
        }

        double expectedMax = Enumerable.Range(0, n).Sum(i => a[i] * b[i]);
        double expectedMin = Enumerable.Range(0, n).Sum(i => a[i] * b[n - 1 - i]);
        Assert.Equal(expectedMax, LinearAssignment.Solve(c, n, maximize: true).Objective, 1e-9 * expectedMax);
        Assert.Equal(expectedMin, LinearAssignment.Solve(c, n, maximize: false).Objective, 1e-9 * expectedMin);
    }

    [Fact]
    public void Certificate_SuboptimalAssignment_IsRejected()
    {
        const int n = 200;
        double[] c = UniformDoubles(new Random(5), n);
        AssignmentResult optimal = LinearAssignment.Solve(c, n, maximize: true);
        Assert.True(Certificate.IsOptimal(c, n, optimal));

        // Swap two rows' columns: a different permutation whose objective is lower.
        int[] worse = (int[])optimal.Assignment.Clone();
        (worse[0], worse[1]) = (worse[1], worse[0]);
        double worseObjective = Objective(c, n, worse);
        Assert.True(worseObjective < optimal.Objective);
        var forged = new AssignmentResult(worse, worseObjective, optimal.U, optimal.V, isMaximization: true);

        Assert.False(Certificate.IsOptimal(c, n, forged));
        Assert.True(Certificate.MaxSlacknessViolation(c, n, forged) > 1e-6);
        double gap = Certificate.DualityGap(c, n, forged);
        Assert.True(gap >= (optimal.Objective - worseObjective) * (1 - 1e-9), $"gap {gap} must bound the loss");
    }

    [Fact]
    public void Certificate_InfeasiblePotentials_AreRejected()
    {
        const int n = 50;
        double[] c = UniformDoubles(new Random(6), n);
        AssignmentResult optimal = LinearAssignment.Solve(c, n, maximize: false);
        double[] u = (double[])optimal.U.Clone();
        u[3] += 0.5; // row potential too high: u + v > c somewhere in row 3
        var forged = new AssignmentResult(optimal.Assignment, optimal.Objective, u, optimal.V, isMaximization: false);
        Assert.True(Certificate.MaxDualInfeasibility(c, n, forged) >= 0.5 - 1e-12);
        Assert.False(Certificate.IsOptimal(c, n, forged));
    }

    [Fact]
    public void Certificate_MismatchedSizes_Throws()
    {
        double[] c = UniformDoubles(new Random(7), 4);
        AssignmentResult r = LinearAssignment.Solve(c, 4, maximize: false);
        Assert.Throws<ArgumentException>(() => Certificate.DualityGap(c.AsSpan(0, 9), 3, r));
        Assert.Throws<ArgumentException>(() => Certificate.MaxDualInfeasibility(c, 5, r));
        var notPermutation = new AssignmentResult([0, 0, 1, 2], 0, r.U, r.V, isMaximization: false);
        Assert.Throws<ArgumentException>(() => Certificate.DualityGap(c, 4, notPermutation));
        Assert.False(Certificate.IsOptimal(c, 4, notPermutation));
    }
}
