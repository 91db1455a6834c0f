using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace FedRebasin.Merging.Assignment;

/// <summary>
/// Dense Jonker–Volgenant shortest-augmenting-path solver for the square linear assignment problem
/// (minimisation of <c>Σ sg·c[i, x[i]]</c>), operating on raw pointers.
/// </summary>
/// <remarks>
/// <para>
/// Phases: column reduction with reduction transfer and one budgeted pass of augmenting row reduction
/// (Jonker &amp; Volgenant 1987, as in the <c>lap</c> package), then one Dijkstra-like shortest augmenting
/// path search per remaining free row (as in Crouse 2016 / SciPy's <c>linear_sum_assignment</c>).
/// </para>
/// <para>
/// Only the column potentials <c>v</c> are stored; the row potential of an assigned row is implicitly
/// <c>u[i] = sg·c[i, x[i]] − v[x[i]]</c>, which after every phase is the minimum of <c>sg·c[i, j] − v[j]</c>
/// over <c>j</c> (dual feasibility and complementary slackness).
/// </para>
/// <para>
/// The Dijkstra search scans the whole row densely with SIMD instead of a compacted to-do list: settled
/// columns are masked by setting their entry of a shadow copy of <c>v</c> to −∞ (their candidate distance
/// then becomes +∞ and never wins a comparison), so the loop has no branches and no gathers. The same pass
/// finds the arg-min and the minimum over free columns (so that a free column wins ties, which keeps heavily
/// tied inputs such as constant matrices at O(n²)). Predecessors are reconstructed after the search instead
/// of being stored in the hot loop.
/// </para>
/// <para>
/// The caller guarantees: <c>n ≥ 2</c>, all <c>c</c> finite, <c>sg ∈ {−1, +1}</c>, and magnitudes small enough
/// that sums of a few thousand costs cannot overflow (the public entry point rescales extreme inputs).
/// </para>
/// </remarks>
internal static unsafe class JonkerVolgenant
{
    /// <summary>Number of augmenting-row-reduction passes run after column reduction.</summary>
    /// <remarks>
    /// Measured on uniform and low-rank matrices (n = 512 … 2048): one budgeted pass removes about 60 % of
    /// the free rows and 10–15 % of the total row scans. More passes did not reduce the total further, and
    /// the unbounded re-insertion of the original algorithm made it 3–10 times slower than the shortest-path
    /// phase it replaces (e.g. 114 000 row reductions instead of 30 000 Dijkstra row scans at n = 1024).
    /// </remarks>
    private const int AugmentingRowReductionPasses = 1;

    /// <summary>
    /// Solves the assignment problem for the <paramref name="n"/>×<paramref name="n"/> row-major matrix at
    /// <paramref name="c"/>, multiplied element-wise by <paramref name="sg"/>, minimising.
    /// </summary>
    /// <param name="c">Row-major costs (read only).</param>
    /// <param name="n">Size, at least 2.</param>
    /// <param name="sg">+1 to minimise <c>c</c>, −1 to maximise it.</param>
    /// <param name="x">Output, length n: column of each row.</param>
    /// <param name="v">Output, length n: column potentials in the units of <c>sg·c</c>.</param>
    public static void Solve(double* c, int n, double sg, int* x, double* v)
    {
        var ws = new Workspace(n);
        try
        {
            int* y = ws.Y;
            int* freeRows = ws.FreeRows;
            int freeCount = ColumnReductionAndTransfer(c, n, sg, x, y, v, freeRows, ws);
            for (int pass = 0; pass < AugmentingRowReductionPasses && freeCount > 0; pass++)
            {
                freeCount = AugmentingRowReduction(c, n, sg, x, y, v, freeRows, freeCount);
            }

            if (freeCount > 0)
            {
                AugmentFreeRows(c, n, sg, x, y, v, freeRows, freeCount, ws);
            }

            BalanceGauge(c, n, sg, x, v);
        }
        finally
        {
            ws.Dispose();
        }
    }

    /// <summary>
    /// Shifts the potentials along their free gauge (<c>v − t</c>, hence <c>u + t</c>) so that the ranges of
    /// the column potentials and the implied row potentials <c>u[i] = sg·c[i, x[i]] − v[x[i]]</c> share the
    /// same midpoint. This keeps both as small as possible in magnitude, which matters when the caller
    /// converts them back to the units of extreme-magnitude inputs.
    /// </summary>
    private static void BalanceGauge(double* c, int n, double sg, int* x, double* v)
    {
        double uMin = double.PositiveInfinity;
        double uMax = double.NegativeInfinity;
        double vMin = double.PositiveInfinity;
        double vMax = double.NegativeInfinity;
        for (int i = 0; i < n; i++)
        {
            int j = x[i];
            double u = (sg * c[((long)i * n) + j]) - v[j];
            uMin = Math.Min(uMin, u);
            uMax = Math.Max(uMax, u);
            vMin = Math.Min(vMin, v[j]);
            vMax = Math.Max(vMax, v[j]);
        }

        double t = (((0.5 * vMin) + (0.5 * vMax)) - ((0.5 * uMin) + (0.5 * uMax))) * 0.5;
        for (int j = 0; j < n; j++)
        {
            v[j] -= t;
        }
    }

    /// <summary>
    /// Column reduction (<c>v[j] = min_i c[i, j]</c>, each column tentatively given to its argmin row),
    /// followed by reduction transfer for rows that won exactly one column.
    /// </summary>
    /// <returns>Number of free rows written to <paramref name="freeRows"/>.</returns>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static int ColumnReductionAndTransfer(
        double* c, int n, double sg, int* x, int* y, double* v, int* freeRows, Workspace ws)
    {
        long* argmin = ws.ArgMin;
        int vc = Vector<double>.Count;
        var sgv = new Vector<double>(sg);
        for (int j = 0; j < n; j++)
        {
            v[j] = double.PositiveInfinity;
            argmin[j] = 0;
        }

        for (int i = 0; i < n; i++)
        {
            double* row = c + ((long)i * n);
            var iv = new Vector<long>(i);
            int j = 0;
            for (; j <= n - vc; j += vc)
            {
                Vector<double> cc = Vector.Load(row + j) * sgv;
                Vector<double> vv = Vector.Load(v + j);
                Vector<long> less = Vector.LessThan(cc, vv);
                Vector.Store(Vector.ConditionalSelect(less, cc, vv), v + j);
                Vector.Store(Vector.ConditionalSelect(less, iv, Vector.Load(argmin + j)), argmin + j);
            }

            for (; j < n; j++)
            {
                double cij = sg * row[j];
                if (cij < v[j])
                {
                    v[j] = cij;
                    argmin[j] = i;
                }
            }
        }

        // Give each row at most one of the columns it is the argmin of (scanning from the last column,
        // like the reference implementation); the other columns stay free.
        byte* unique = ws.Flags;
        for (int i = 0; i < n; i++)
        {
            x[i] = -1;
            unique[i] = 1;
        }

        for (int j = n - 1; j >= 0; j--)
        {
            int i = (int)argmin[j];
            if (x[i] < 0)
            {
                x[i] = j;
                y[j] = i;
            }
            else
            {
                unique[i] = 0;
                y[j] = -1;
            }
        }

        // Reduction transfer: a row that won a single column j keeps it, and v[j] drops by the row's
        // second-best reduced cost so that the row's slack moves into its own potential.
        int freeCount = 0;
        for (int i = 0; i < n; i++)
        {
            if (x[i] < 0)
            {
                freeRows[freeCount++] = i;
            }
            else if (unique[i] != 0)
            {
                int j1 = x[i];
                double saved = v[j1];
                v[j1] = double.NegativeInfinity; // excludes j1 from the minimum (reduced cost becomes +inf)
                double min = RowMinReducedCost(c + ((long)i * n), n, sg, v);
                v[j1] = saved - min;
            }
        }

        return freeCount;
    }

    /// <summary>Minimum over j of <c>sg·row[j] − v[j]</c>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static double RowMinReducedCost(double* row, int n, double sg, double* v)
    {
        int vc = Vector<double>.Count;
        var sgv = new Vector<double>(sg);
        var minv = new Vector<double>(double.PositiveInfinity);
        int j = 0;
        for (; j <= n - vc; j += vc)
        {
            minv = Vector.MinNative(minv, (Vector.Load(row + j) * sgv) - Vector.Load(v + j));
        }

        double min = double.PositiveInfinity;
        for (int l = 0; l < vc; l++)
        {
            min = double.MinNative(min, minv[l]);
        }

        for (; j < n; j++)
        {
            min = double.MinNative(min, (sg * row[j]) - v[j]);
        }

        return min;
    }

    /// <summary>
    /// One pass of augmenting row reduction (Jonker–Volgenant): each free row takes its best column,
    /// lowering that column's potential by the gap to its second best and evicting the previous owner.
    /// </summary>
    /// <returns>Number of rows still free, compacted at the start of <paramref name="freeRows"/>.</returns>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static int AugmentingRowReduction(
        double* c, int n, double sg, int* x, int* y, double* v, int* freeRows, int freeCount)
    {
        int current = 0;
        int newFree = 0;
        long iterations = 0;
        // Budget: at most `freeCount` iterations may re-insert an evicted row at the front of the queue; after
        // that every evicted row is deferred to the shortest-path phase. This keeps the pass O(freeCount · n).
        long budget = freeCount;
        while (current < freeCount)
        {
            iterations++;
            int freeRow = freeRows[current++];
            TwoSmallest(c + ((long)freeRow * n), n, sg, v, out int j1, out double v1, out int j2, out double v2);

            int i0 = y[j1];
            double v1New = v[j1] - (v2 - v1);
            bool lowers = v1New < v[j1];
            if (iterations < budget)
            {
                if (lowers)
                {
                    v[j1] = v1New;
                }
                else if (i0 >= 0)
                {
                    j1 = j2;
                    i0 = y[j2];
                }

                if (i0 >= 0)
                {
                    if (lowers)
                    {
                        freeRows[--current] = i0;
                    }
                    else
                    {
                        freeRows[newFree++] = i0;
                    }
                }
            }
            else if (i0 >= 0)
            {
                freeRows[newFree++] = i0;
            }

            x[freeRow] = j1;
            y[j1] = freeRow;
        }

        return newFree;
    }

    /// <summary>
    /// Smallest and second smallest reduced cost <c>sg·row[j] − v[j]</c> with their columns
    /// (<c>j1</c> is the first column attaining the minimum; <c>j1 ≠ j2</c>). Requires n ≥ 2.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TwoSmallest(double* row, int n, double sg, double* v, out int j1, out double v1, out int j2, out double v2)
    {
        int vc = Vector<double>.Count;
        var sgv = new Vector<double>(sg);
        var m1 = new Vector<double>(double.PositiveInfinity);
        var m2 = m1;
        var i1 = new Vector<long>(-1);
        var i2 = i1;
        Vector<long> jv = Vector<long>.Indices;
        var step = new Vector<long>(vc);
        int j = 0;
        for (; j <= n - vc; j += vc)
        {
            Vector<double> r = (Vector.Load(row + j) * sgv) - Vector.Load(v + j);
            Vector<long> lt1 = Vector.LessThan(r, m1);
            Vector<long> lt2 = Vector.LessThan(r, m2);
            m2 = Vector.ConditionalSelect(lt1, m1, Vector.ConditionalSelect(lt2, r, m2));
            i2 = Vector.ConditionalSelect(lt1, i1, Vector.ConditionalSelect(lt2, jv, i2));
            m1 = Vector.ConditionalSelect(lt1, r, m1);
            i1 = Vector.ConditionalSelect(lt1, jv, i1);
            jv += step;
        }

        // Merge the per-lane candidates (in increasing column order within each lane) and the scalar tail.
        double b1 = double.PositiveInfinity;
        double b2 = double.PositiveInfinity;
        long k1 = -1;
        long k2 = -1;
        for (int l = 0; l < vc; l++)
        {
            Offer(m1[l], i1[l], ref b1, ref k1, ref b2, ref k2);
            Offer(m2[l], i2[l], ref b1, ref k1, ref b2, ref k2);
        }

        for (; j < n; j++)
        {
            Offer((sg * row[j]) - v[j], j, ref b1, ref k1, ref b2, ref k2);
        }

        j1 = (int)k1;
        v1 = b1;
        j2 = (int)k2;
        v2 = b2;
    }

    /// <summary>Inserts a candidate into a best-two list ordered by (value, column).</summary>
    private static void Offer(double value, long column, ref double b1, ref long k1, ref double b2, ref long k2)
    {
        if (column < 0)
        {
            return;
        }

        if (value < b1 || (value == b1 && column < k1))
        {
            b2 = b1;
            k2 = k1;
            b1 = value;
            k1 = column;
        }
        else if (k2 < 0 || value < b2 || (value == b2 && column < k2))
        {
            b2 = value;
            k2 = column;
        }
    }

    /// <summary>
    /// Shortest augmenting path phase: one Dijkstra search per remaining free row, then a dual update of the
    /// settled columns and augmentation along the path.
    /// </summary>
    /// <remarks>
    /// Predecessors are not recorded during the scans (that would add a load, a blend and a store to the
    /// hot loop). Instead, the search logs each scanned row and its offset <c>h</c>; the predecessor of a path
    /// column <c>j</c> is recomputed afterwards as the first logged row, among those scanned before
    /// <c>j</c> was settled, minimising <c>sg·c[row, j] + h − v[j]</c>. This is bit-for-bit the same value
    /// and tie-break as the running minimum the scan kept, so the path is identical to an eagerly recorded one.
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AugmentFreeRows(
        double* c, int n, double sg, int* x, int* y, double* v, int* freeRows, int freeCount, Workspace ws)
    {
        double* sh = ws.Shortest;
        double* vs = ws.VScan;
        double* pen = ws.Penalty;
        double* dist = ws.Dist;
        double* scanH = ws.ScanOffsets;
        int* scanRows = ws.ScanRows;
        int* visited = ws.Visited;

        for (int j = 0; j < n; j++)
        {
            vs[j] = v[j];
            pen[j] = y[j] < 0 ? 0.0 : double.PositiveInfinity;
        }

        for (int f = 0; f < freeCount; f++)
        {
            int start = freeRows[f];
            new Span<double>(sh, n).Fill(double.PositiveInfinity);
            int visitedCount = 0;
            int scanCount = 0;
            int i = start;
            double h = 0.0;
            double lowest;
            int sink;
            while (true)
            {
                scanRows[scanCount] = i;
                scanH[scanCount] = h;
                scanCount++;
                int index = ScanRow(c + ((long)i * n), n, sg, h, vs, sh, pen, out lowest, out double lowestFree);
                if (index < 0 || scanCount > n)
                {
                    throw new InvalidOperationException("Linear assignment: no reachable free column (internal error).");
                }

                if (lowestFree <= lowest)
                {
                    sink = y[index] < 0 ? index : FindFreeAt(n, sh, pen, lowest);
                    break;
                }

                // Column `index` is assigned: settle it and continue from its row.
                dist[index] = lowest;
                visited[visitedCount++] = index;
                vs[index] = double.NegativeInfinity;
                sh[index] = double.PositiveInfinity;
                i = y[index];
                h = lowest - ((sg * c[((long)i * n) + index]) - v[index]);
            }

            // Augment along the alternating path ending at the sink (uses v before the dual update).
            int col = sink;
            int limit = scanCount;
            while (true)
            {
                int t = Predecessor(c, n, sg, v[col], col, scanRows, scanH, limit);
                int row = scanRows[t];
                y[col] = row;
                x[row] = col;
                if (t == 0)
                {
                    break; // reached the start row
                }

                col = visited[t - 1]; // the column through which `row` was reached (its old assignment)
                limit = t;
            }

            // Dual update for the settled columns (Dijkstra potentials).
            for (int k = 0; k < visitedCount; k++)
            {
                int j = visited[k];
                double nv = v[j] - (lowest - dist[j]);
                v[j] = nv;
                vs[j] = nv;
            }

            pen[sink] = double.PositiveInfinity;
        }
    }

    /// <summary>First scan index in <c>[0, limit)</c> minimising <c>sg·c[scanRows[t], col] + scanH[t] − vCol</c>.</summary>
    private static int Predecessor(double* c, int n, double sg, double vCol, int col, int* scanRows, double* scanH, int limit)
    {
        int best = 0;
        double bestValue = double.PositiveInfinity;
        for (int t = 0; t < limit; t++)
        {
            double r = Math.FusedMultiplyAdd(c[((long)scanRows[t] * n) + col], sg, scanH[t]) - vCol;
            if (r < bestValue)
            {
                bestValue = r;
                best = t;
            }
        }

        return best;
    }

    /// <summary>First free column (penalty 0) whose tentative distance equals <paramref name="value"/>.</summary>
    private static int FindFreeAt(int n, double* sh, double* pen, double value)
    {
        for (int j = 0; j < n; j++)
        {
            if (pen[j] == 0.0 && sh[j] == value)
            {
                return j;
            }
        }

        throw new InvalidOperationException("Linear assignment: inconsistent free-column bookkeeping (internal error).");
    }

    /// <summary>
    /// Relaxes every column through one row (candidate distance <c>sg·row[j] + h − vs[j]</c>; settled
    /// columns have <c>vs[j] = −∞</c> and are skipped implicitly), and returns the unsettled column with the
    /// smallest tentative distance (first index on ties). Outputs that distance as <c>lowest</c> and the
    /// smallest tentative distance among free columns (those with <c>pen[j] = 0</c>; +∞ if none) as
    /// <c>lowestFree</c>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static int ScanRow(
        double* row, int n, double sg, double h, double* vs, double* sh, double* pen,
        out double lowest, out double lowestFree)
    {
        int vc = Vector<double>.Count;
        var sgv = new Vector<double>(sg);
        var hv = new Vector<double>(h);
        var minV = new Vector<double>(double.PositiveInfinity);
        var minF = minV;
        var minI = new Vector<long>(-1);
        Vector<long> jv = Vector<long>.Indices;
        var step = new Vector<long>(vc);
        int j = 0;
        for (; j <= n - vc; j += vc)
        {
            Vector<double> r = Vector.FusedMultiplyAdd(Vector.Load(row + j), sgv, hv) - Vector.Load(vs + j);
            Vector<double> s = Vector.MinNative(r, Vector.Load(sh + j));
            Vector.Store(s, sh + j);
            Vector<long> lower = Vector.LessThan(s, minV);
            minV = Vector.MinNative(s, minV);
            minI = Vector.ConditionalSelect(lower, jv, minI);
            minF = Vector.MinNative(minF, s + Vector.Load(pen + j));
            jv += step;
        }

        double best = double.PositiveInfinity;
        double bestFree = double.PositiveInfinity;
        long bestIndex = -1;
        for (int l = 0; l < vc; l++)
        {
            double m = minV[l];
            long mi = minI[l];
            if (m < best || (m == best && mi < bestIndex))
            {
                best = m;
                bestIndex = mi;
            }

            bestFree = double.MinNative(bestFree, minF[l]);
        }

        for (; j < n; j++)
        {
            double s = double.MinNative(Math.FusedMultiplyAdd(row[j], sg, h) - vs[j], sh[j]);
            sh[j] = s;
            if (s < best)
            {
                best = s;
                bestIndex = j;
            }

            bestFree = double.MinNative(bestFree, s + pen[j]);
        }

        lowest = best;
        lowestFree = bestFree;
        return (int)bestIndex;
    }

    /// <summary>Native, 64-byte aligned scratch buffers for one solve.</summary>
    private readonly struct Workspace : IDisposable
    {
        private readonly void* _block;

        public Workspace(int n)
        {
            nuint stride = (((nuint)n * 8) + 63) & ~(nuint)63;
            // 5 double arrays, 1 long array, 4 int arrays (given 8 bytes per element for simplicity), 1 byte array.
            _block = NativeMemory.AlignedAlloc(stride * 11, 64);
            byte* p = (byte*)_block;
            Shortest = (double*)p;
            VScan = (double*)(p + stride);
            Penalty = (double*)(p + (2 * stride));
            Dist = (double*)(p + (3 * stride));
            ScanOffsets = (double*)(p + (4 * stride));
            ArgMin = (long*)(p + (5 * stride));
            Y = (int*)(p + (6 * stride));
            FreeRows = (int*)(p + (7 * stride));
            Visited = (int*)(p + (8 * stride));
            ScanRows = (int*)(p + (9 * stride));
            Flags = p + (10 * stride);
        }

        public double* Shortest { get; }

        public double* VScan { get; }

        public double* Penalty { get; }

        public double* Dist { get; }

        public double* ScanOffsets { get; }

        public long* ArgMin { get; }

        public int* Y { get; }

        public int* FreeRows { get; }

        public int* Visited { get; }

        public int* ScanRows { get; }

        public byte* Flags { get; }

        public void Dispose() => NativeMemory.AlignedFree(_block);
    }
}
