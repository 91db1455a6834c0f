using System.Buffers;
using System.Globalization;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace FedRebasin.Merging.Assignment;

/// <summary>
/// Exact solver for the dense square linear assignment problem in double precision: find the permutation
/// <c>col</c> that minimises (or maximises) <c>Σ_i cost[i, col[i]]</c>.
/// </summary>
/// <remarks>
/// <para>
/// Algorithm: Jonker–Volgenant (column reduction, reduction transfer, augmenting row reduction) followed by
/// shortest augmenting paths with a dense, SIMD-vectorised Dijkstra search, the same family as SciPy's
/// <c>scipy.optimize.linear_sum_assignment</c> (Crouse's LAPJV variant). Worst case <c>O(n³)</c>.
/// </para>
/// <para>
/// Contracts shared by every overload:
/// <list type="bullet">
/// <item><description>The matrix is square, row-major, <c>n × n</c>; <c>cost.Length</c> must equal <c>n·n</c>,
/// otherwise <see cref="ArgumentException"/>.</description></item>
/// <item><description>Every entry must be finite. The first NaN or ±∞ (in row-major order) raises an
/// <see cref="ArgumentException"/> naming its <c>(row, col)</c>; the solver never loops on bad input.</description></item>
/// <item><description><c>n = 0</c> gives an empty assignment; <c>n = 1</c> assigns row 0 to column 0.</description></item>
/// <item><description>The input is never modified and is copied at most once (only when its magnitude is
/// extreme, to rescale it exactly by a power of two). Maximisation negates on the fly, without a copy.</description></item>
/// <item><description>When several assignments are optimal, any one of them may be returned; the optimal
/// objective is exact up to floating-point rounding.</description></item>
/// </list>
/// </para>
/// Thread safety: all members are stateless and may be called concurrently.
/// </remarks>
public static class LinearAssignment
{
    /// <summary>Costs whose largest magnitude has a binary exponent outside ±this are rescaled by a power of two.</summary>
    private const int MaxUnscaledExponent = 500;

    /// <summary>Solves the minimisation problem.</summary>
    /// <param name="cost">Row-major <c>n × n</c> cost matrix.</param>
    /// <param name="n">Number of rows (= number of columns).</param>
    /// <returns><c>col</c> with <c>col[i]</c> the column assigned to row <c>i</c>; a permutation minimising
    /// <c>Σ cost[i, col[i]]</c>.</returns>
    /// <exception cref="ArgumentException">Length mismatch or a non-finite entry.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="n"/> is negative.</exception>
    public static int[] SolveMinimize(ReadOnlySpan<double> cost, int n)
    {
        var col = new int[Math.Max(n, 0)];
        Solve(cost, n, maximize: false, col);
        return col;
    }

    /// <summary>Solves the maximisation problem.</summary>
    /// <param name="cost">Row-major <c>n × n</c> score matrix.</param>
    /// <param name="n">Number of rows (= number of columns).</param>
    /// <returns><c>col</c> with <c>col[i]</c> the column assigned to row <c>i</c>; a permutation maximising
    /// <c>Σ cost[i, col[i]]</c>.</returns>
    /// <exception cref="ArgumentException">Length mismatch or a non-finite entry.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="n"/> is negative.</exception>
    public static int[] SolveMaximize(ReadOnlySpan<double> cost, int n)
    {
        var col = new int[Math.Max(n, 0)];
        Solve(cost, n, maximize: true, col);
        return col;
    }

    /// <summary>Solves the minimisation problem for a rectangular array that must be square.</summary>
    /// <param name="cost">Square cost matrix <c>cost[row, col]</c>.</param>
    /// <returns>The column assigned to each row.</returns>
    /// <exception cref="ArgumentException">Non-square matrix or a non-finite entry.</exception>
    public static int[] SolveMinimize(double[,] cost) => SolveMinimize(AsSpan(cost, out int n), n);

    /// <summary>Solves the maximisation problem for a rectangular array that must be square.</summary>
    /// <param name="cost">Square score matrix <c>cost[row, col]</c>.</param>
    /// <returns>The column assigned to each row.</returns>
    /// <exception cref="ArgumentException">Non-square matrix or a non-finite entry.</exception>
    public static int[] SolveMaximize(double[,] cost) => SolveMaximize(AsSpan(cost, out int n), n);

    /// <summary>Solves the problem for a two-dimensional array and returns the assignment with its certificate.</summary>
    /// <param name="cost">Square matrix <c>cost[row, col]</c>.</param>
    /// <param name="maximize"><see langword="true"/> to maximise, <see langword="false"/> to minimise.</param>
    /// <returns>The optimal assignment, its objective and dual potentials.</returns>
    /// <exception cref="ArgumentException">Non-square matrix or a non-finite entry.</exception>
    public static AssignmentResult Solve(double[,] cost, bool maximize) => Solve(AsSpan(cost, out int n), n, maximize);

    /// <summary>Solves the problem and returns the assignment, its objective and certifying dual potentials.</summary>
    /// <param name="cost">Row-major <c>n × n</c> matrix.</param>
    /// <param name="n">Number of rows (= number of columns).</param>
    /// <param name="maximize"><see langword="true"/> to maximise, <see langword="false"/> to minimise.</param>
    /// <returns>
    /// The result; its potentials satisfy the conditions documented on <see cref="AssignmentResult"/>
    /// up to rounding (see <see cref="Certificate"/>).
    /// </returns>
    /// <exception cref="ArgumentException">Length mismatch or a non-finite entry.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="n"/> is negative.</exception>
    public static AssignmentResult Solve(ReadOnlySpan<double> cost, int n, bool maximize)
    {
        var col = new int[Math.Max(n, 0)];
        var v = new double[col.Length];
        double objective = SolveCore(cost, n, maximize, col, v);
        var u = new double[col.Length];
        for (int i = 0; i < col.Length; i++)
        {
            int j = col[i];
            u[i] = cost[(i * n) + j] - v[j];
        }

        return new AssignmentResult(col, objective, u, v, maximize);
    }

    /// <summary>
    /// Allocation-light overload for hot loops: writes the assignment into <paramref name="columnForRow"/> and
    /// returns the objective.
    /// </summary>
    /// <param name="cost">Row-major <c>n × n</c> matrix.</param>
    /// <param name="n">Number of rows (= number of columns).</param>
    /// <param name="maximize"><see langword="true"/> to maximise, <see langword="false"/> to minimise.</param>
    /// <param name="columnForRow">Destination of length at least <paramref name="n"/>; element <c>i</c> receives
    /// the column assigned to row <c>i</c>.</param>
    /// <returns>The optimal objective <c>Σ_i cost[i, columnForRow[i]]</c>.</returns>
    /// <exception cref="ArgumentException">Length mismatch, destination too short, or a non-finite entry.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="n"/> is negative.</exception>
    public static double Solve(ReadOnlySpan<double> cost, int n, bool maximize, Span<int> columnForRow)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        if (columnForRow.Length < n)
        {
            throw new ArgumentException(
                string.Create(CultureInfo.InvariantCulture, $"Destination has length {columnForRow.Length}, need {n}."),
                nameof(columnForRow));
        }

        double[] v = ArrayPool<double>.Shared.Rent(Math.Max(n, 1));
        try
        {
            return SolveCore(cost, n, maximize, columnForRow[..n], v.AsSpan(0, n));
        }
        finally
        {
            ArrayPool<double>.Shared.Return(v);
        }
    }

    /// <summary>Returns whether <paramref name="p"/> is a permutation of <c>0 … p.Length−1</c>.</summary>
    /// <param name="p">Candidate permutation (an empty span is the empty permutation).</param>
    /// <returns><see langword="true"/> if every value in <c>[0, p.Length)</c> occurs exactly once.</returns>
    public static bool IsPermutation(ReadOnlySpan<int> p)
    {
        var seen = new bool[p.Length];
        foreach (int value in p)
        {
            if ((uint)value >= (uint)p.Length || seen[value])
            {
                return false;
            }

            seen[value] = true;
        }

        return true;
    }

    /// <summary>Validates, rescales if needed, solves; fills col and v (input units, sense-appropriate); returns objective.</summary>
    private static unsafe double SolveCore(ReadOnlySpan<double> cost, int n, bool maximize, Span<int> col, Span<double> v)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        if ((long)n * n != cost.Length)
        {
            throw new ArgumentException(
                string.Create(
                    CultureInfo.InvariantCulture,
                    $"Cost matrix must be square: expected n*n = {(long)n * n} entries for n = {n}, got {cost.Length}."),
                nameof(cost));
        }

        if (n == 0)
        {
            return 0.0;
        }

        double maxAbs = ValidateFinite(cost, n);
        double sg = maximize ? -1.0 : 1.0;
        if (n == 1 || maxAbs == 0.0)
        {
            // Trivial: every permutation is optimal (n = 1, or an all-zero matrix); zero column potentials.
            for (int i = 0; i < n; i++)
            {
                col[i] = i;
                v[i] = 0.0;
            }
        }
        else
        {
            int exponent = Math.ILogB(maxAbs);
            fixed (int* x = col)
            fixed (double* vp = v)
            {
                if (exponent > MaxUnscaledExponent || exponent < -MaxUnscaledExponent)
                {
                    // Exact power-of-two rescale so that potentials and path lengths can neither overflow nor
                    // lose precision to subnormals. The sign is folded into the single copy.
                    double[] scaled = GC.AllocateUninitializedArray<double>(cost.Length);
                    for (int k = 0; k < scaled.Length; k++)
                    {
                        scaled[k] = Math.ScaleB(sg * cost[k], -exponent);
                    }

                    fixed (double* c = scaled)
                    {
                        JonkerVolgenant.Solve(c, n, 1.0, x, vp);
                    }

                    for (int j = 0; j < n; j++)
                    {
                        v[j] = sg * Math.ScaleB(v[j], exponent);
                    }
                }
                else
                {
                    fixed (double* c = cost)
                    {
                        JonkerVolgenant.Solve(c, n, sg, x, vp);
                    }

                    for (int j = 0; j < n; j++)
                    {
                        v[j] = sg * v[j];
                    }
                }
            }
        }

        double objective = 0.0;
        for (int i = 0; i < n; i++)
        {
            objective += cost[(i * n) + col[i]];
        }

        return objective;
    }

    /// <summary>Throws on the first non-finite entry; returns the largest magnitude.</summary>
    private static unsafe double ValidateFinite(ReadOnlySpan<double> cost, int n)
    {
        int vc = Vector<double>.Count;
        var poison = Vector<double>.Zero;
        var maxv = Vector<double>.Zero;
        double max = 0.0;
        double poisonScalar = 0.0;
        fixed (double* p = cost)
        {
            int k = 0;
            for (; k <= cost.Length - vc; k += vc)
            {
                Vector<double> value = Vector.Load(p + k);
                poison += value - value; // NaN for NaN and ±inf, zero otherwise
                maxv = Vector.MaxNative(maxv, Vector.Abs(value));
            }

            for (; k < cost.Length; k++)
            {
                poisonScalar += p[k] - p[k];
                max = Math.Max(max, Math.Abs(p[k]));
            }
        }

        for (int l = 0; l < vc; l++)
        {
            poisonScalar += poison[l];
            max = Math.Max(max, maxv[l]);
        }

        if (!double.IsFinite(poisonScalar))
        {
            for (int k = 0; k < cost.Length; k++)
            {
                if (!double.IsFinite(cost[k]))
                {
                    throw new ArgumentException(
                        string.Create(
                            CultureInfo.InvariantCulture,
                            $"Cost matrix entry ({k / n}, {k % n}) is {cost[k]}; all entries must be finite."),
                        nameof(cost));
                }
            }
        }

        return max;
    }

    private static ReadOnlySpan<double> AsSpan(double[,] cost, out int n)
    {
        ArgumentNullException.ThrowIfNull(cost);
        n = cost.GetLength(0);
        if (cost.GetLength(1) != n)
        {
            throw new ArgumentException(
                string.Create(
                    CultureInfo.InvariantCulture,
                    $"Cost matrix must be square, got {cost.GetLength(0)}x{cost.GetLength(1)}."),
                nameof(cost));
        }

        return MemoryMarshal.CreateReadOnlySpan(
            ref Unsafe.As<byte, double>(ref MemoryMarshal.GetArrayDataReference(cost)), cost.Length);
    }
}
