using System.Globalization;

namespace FedRebasin.Merging.Assignment;

/// <summary>
/// Independent optimality checks for an <see cref="AssignmentResult"/> via linear-programming duality.
/// </summary>
/// <remarks>
/// For minimisation, an assignment <c>col</c> is optimal iff there are potentials <c>u, v</c> with
/// <c>u[i] + v[j] ≤ c[i, j]</c> for all <c>(i, j)</c> (dual feasibility) and <c>u[i] + v[col[i]] = c[i, col[i]]</c>
/// for all <c>i</c> (complementary slackness). For maximisation both inequalities flip. All checks here read
/// the original costs, never solver internals, and compute reduced costs as <c>(c − u) − v</c> so that they
/// cannot overflow for finite inputs of any magnitude.
/// </remarks>
public static class Certificate
{
    /// <summary>
    /// Certified duality gap: the primal objective minus the objective of the dual solution obtained from the
    /// result's column potentials <c>V</c> with the tightest feasible row potentials
    /// (<c>u[i] = min_j (c[i, j] − V[j])</c> for minimisation, <c>max_j</c> for maximisation).
    /// </summary>
    /// <param name="cost">The row-major <c>n × n</c> matrix that was solved.</param>
    /// <param name="n">Matrix size.</param>
    /// <param name="result">The result to certify (its sense is taken from <see cref="AssignmentResult.IsMaximization"/>).</param>
    /// <returns>
    /// A non-negative number (each row contributes a term that is ≥ 0 even in floating point). In exact
    /// arithmetic the assignment's objective is within this value of the optimum, so a gap that is tiny
    /// relative to the cost magnitude certifies optimality. It is 0 iff every row's assigned reduced cost is
    /// the row minimum, i.e. iff dual feasibility and complementary slackness hold.
    /// </returns>
    /// <exception cref="ArgumentException">Sizes of <paramref name="cost"/>, <paramref name="n"/> and
    /// <paramref name="result"/> disagree, or the assignment is not a permutation.</exception>
    public static double DualityGap(ReadOnlySpan<double> cost, int n, AssignmentResult result)
    {
        CheckShapes(cost, n, result);
        double sense = result.IsMaximization ? -1.0 : 1.0;
        double[] v = result.V;
        double gap = 0.0;
        for (int i = 0; i < n; i++)
        {
            ReadOnlySpan<double> row = cost.Slice(i * n, n);
            double best = double.PositiveInfinity;
            for (int j = 0; j < n; j++)
            {
                best = Math.Min(best, sense * (row[j] - v[j]));
            }

            int a = result.Assignment[i];
            gap += (sense * (row[a] - v[a])) - best;
        }

        return gap;
    }

    /// <summary>
    /// Largest violation of dual feasibility by the result's potentials: <c>max(0, max_ij (U[i] + V[j] − c[i, j]))</c>
    /// for minimisation, <c>max(0, max_ij (c[i, j] − U[i] − V[j]))</c> for maximisation.
    /// </summary>
    /// <param name="cost">The row-major <c>n × n</c> matrix that was solved.</param>
    /// <param name="n">Matrix size.</param>
    /// <param name="result">The result to check.</param>
    /// <returns>0 when the potentials are exactly feasible; otherwise the worst violation in cost units.</returns>
    /// <exception cref="ArgumentException">Sizes disagree or the assignment is not a permutation.</exception>
    public static double MaxDualInfeasibility(ReadOnlySpan<double> cost, int n, AssignmentResult result)
    {
        CheckShapes(cost, n, result);
        double sense = result.IsMaximization ? -1.0 : 1.0;
        double worst = 0.0;
        for (int i = 0; i < n; i++)
        {
            ReadOnlySpan<double> row = cost.Slice(i * n, n);
            double ui = result.U[i];
            for (int j = 0; j < n; j++)
            {
                double reduced = sense * ((row[j] - ui) - result.V[j]);
                worst = Math.Max(worst, -reduced);
            }
        }

        return worst;
    }

    /// <summary>
    /// Largest violation of complementary slackness: <c>max_i |c[i, col[i]] − U[i] − V[col[i]]|</c>.
    /// </summary>
    /// <param name="cost">The row-major <c>n × n</c> matrix that was solved.</param>
    /// <param name="n">Matrix size.</param>
    /// <param name="result">The result to check.</param>
    /// <returns>0 when every assigned pair is tight.</returns>
    /// <exception cref="ArgumentException">Sizes disagree or the assignment is not a permutation.</exception>
    public static double MaxSlacknessViolation(ReadOnlySpan<double> cost, int n, AssignmentResult result)
    {
        CheckShapes(cost, n, result);
        double worst = 0.0;
        for (int i = 0; i < n; i++)
        {
            int a = result.Assignment[i];
            worst = Math.Max(worst, Math.Abs((cost[(i * n) + a] - result.U[i]) - result.V[a]));
        }

        return worst;
    }

    /// <summary>
    /// Full optimality check: the assignment is a permutation and both dual feasibility and complementary
    /// slackness hold within <c>relativeTolerance · max(|c|)</c> (absolute <paramref name="relativeTolerance"/>
    /// for an all-zero matrix).
    /// </summary>
    /// <param name="cost">The row-major <c>n × n</c> matrix that was solved.</param>
    /// <param name="n">Matrix size.</param>
    /// <param name="result">The result to check.</param>
    /// <param name="relativeTolerance">Tolerance relative to the largest cost magnitude; non-negative.</param>
    /// <returns><see langword="true"/> if the result is certified optimal within tolerance.</returns>
    /// <exception cref="ArgumentException">Sizes disagree.</exception>
    public static bool IsOptimal(ReadOnlySpan<double> cost, int n, AssignmentResult result, double relativeTolerance = 1e-9)
    {
        ArgumentNullException.ThrowIfNull(result);
        ArgumentOutOfRangeException.ThrowIfNegative(relativeTolerance);
        if (!LinearAssignment.IsPermutation(result.Assignment))
        {
            return false;
        }

        double scale = 0.0;
        foreach (double c in cost)
        {
            scale = Math.Max(scale, Math.Abs(c));
        }

        double tol = relativeTolerance * (scale > 0.0 ? scale : 1.0);
        return MaxDualInfeasibility(cost, n, result) <= tol && MaxSlacknessViolation(cost, n, result) <= tol;
    }

    private static void CheckShapes(ReadOnlySpan<double> cost, int n, AssignmentResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        if (n < 0 || (long)n * n != cost.Length || result.Size != n || result.U.Length != n || result.V.Length != n)
        {
            throw new ArgumentException(
                string.Create(
                    CultureInfo.InvariantCulture,
                    $"Shape mismatch: n = {n}, cost has {cost.Length} entries, result has size {result.Size}."),
                nameof(result));
        }

        if (!LinearAssignment.IsPermutation(result.Assignment))
        {
            throw new ArgumentException("The result's assignment is not a permutation.", nameof(result));
        }
    }
}
