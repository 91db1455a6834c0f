using CsCheck;
using FedRebasin.Merging.Assignment;
using static FedRebasin.Merging.Tests.Assignment.AssignmentTestKit;

namespace FedRebasin.Merging.Tests.Assignment;

/// <summary>
/// CsCheck property tests against brute force. The seed and iteration count are fixed, so every run checks
/// the same cases; a failure prints the seed of the (shrunk) failing case, and setting the CsCheck_Seed
/// environment variable to it replays that case.
/// </summary>
public sealed class PropertyTests
{
    private const int Iterations = 3_000;

    /// <summary>Seed string of <c>new PCG(7, 20250101)</c>.</summary>
    private const string Seed = "0000001dfU47";

    /// <summary>An n×n matrix (n ≤ 6) of small integers (ties) or doubles, and the sense to optimise.</summary>
    private static readonly Gen<(int N, double[] Cost, bool Maximize)> s_case =
        from n in Gen.Int[1, 6]
        from integers in Gen.Bool
        from cost in integers
            ? Gen.Int[-4, 4].Select(i => (double)i).Array[n * n]
            : Gen.Double[-100.0, 100.0].Array[n * n]
        from maximize in Gen.Bool
        select (n, cost, maximize);

    [Fact]
    public void Solve_RandomMatricesUpTo6_ObjectiveEqualsBruteForceAndIsCertified()
    {
        s_case.Sample(
            t =>
            {
                var (n, cost, maximize) = t;
                var (min, max) = BruteForce(cost, n);
                double expected = maximize ? max : min;
                AssignmentResult result = LinearAssignment.Solve(cost, n, maximize);
                Assert.True(LinearAssignment.IsPermutation(result.Assignment));
                Assert.True(Math.Abs(result.Objective - expected) <= 1e-9 * Math.Max(1.0, Math.Abs(expected)));
                Assert.True(Certificate.IsOptimal(cost, n, result));
            },
            seed: Seed,
            iter: Iterations,
            threads: 1);
    }

    [Fact]
    public void SolveMaximize_NegatedMatrix_EqualsSolveMinimizeObjective()
    {
        s_case.Sample(
            t =>
            {
                var (n, cost, _) = t;
                double[] negated = cost.Select(x => -x).ToArray();
                double min = Objective(cost, n, LinearAssignment.SolveMinimize(cost, n));
                double max = Objective(negated, n, LinearAssignment.SolveMaximize(negated, n));
                Assert.Equal(min, -max, 1e-9);
            },
            seed: Seed,
            iter: Iterations / 3,
            threads: 1);
    }
}
