namespace FedRebasin.Merging.Assignment;

/// <summary>
/// An optimal solution of a square linear assignment problem together with dual potentials that certify it.
/// </summary>
/// <remarks>
/// <para>
/// For a minimisation (<see cref="IsMaximization"/> is <see langword="false"/>) the potentials satisfy, up to
/// floating-point rounding, <c>U[i] + V[j] ≤ c[i, j]</c> for every <c>(i, j)</c> (dual feasibility) and
/// <c>U[i] + V[Assignment[i]] = c[i, Assignment[i]]</c> for every row (complementary slackness), hence
/// <c>Objective = ΣU + ΣV</c> is the optimum. For a maximisation the inequality is reversed:
/// <c>U[i] + V[j] ≥ c[i, j]</c>. Use <see cref="Certificate"/> to check these conditions.
/// </para>
/// <para>
/// The potentials are balanced along their free gauge (adding <c>t</c> to every <c>U</c> and subtracting it from
/// every <c>V</c>) to keep both small. Only for inputs whose magnitude approaches <see cref="double.MaxValue"/>
/// (above roughly 1e307) can the objective or the potentials overflow to ±∞; the assignment itself is
/// still exact because the solver works on an exactly rescaled copy.
/// </para>
/// <para>The arrays are owned by the result; callers may read them but should not modify them.</para>
/// </remarks>
public sealed class AssignmentResult
{
    /// <summary>
    /// Creates a result. The solver creates these; callers may also build one to certify an assignment and
    /// potentials obtained elsewhere with <see cref="Certificate"/>. No optimality is checked here.
    /// </summary>
    /// <param name="assignment">Column of each row (length n).</param>
    /// <param name="objective">Objective of <paramref name="assignment"/>.</param>
    /// <param name="u">Row potentials (length n).</param>
    /// <param name="v">Column potentials (length n).</param>
    /// <param name="isMaximization">Whether the problem is a maximisation.</param>
    /// <exception cref="ArgumentNullException">An array is <see langword="null"/>.</exception>
    /// <exception cref="ArgumentException">The arrays differ in length.</exception>
    public AssignmentResult(int[] assignment, double objective, double[] u, double[] v, bool isMaximization)
    {
        ArgumentNullException.ThrowIfNull(assignment);
        ArgumentNullException.ThrowIfNull(u);
        ArgumentNullException.ThrowIfNull(v);
        if (u.Length != assignment.Length || v.Length != assignment.Length)
        {
            throw new ArgumentException("Assignment, U and V must have the same length.", nameof(assignment));
        }

        Assignment = assignment;
        Objective = objective;
        U = u;
        V = v;
        IsMaximization = isMaximization;
    }

    /// <summary>Gets the problem size <c>n</c> (the matrix is <c>n × n</c>).</summary>
    public int Size => Assignment.Length;

    /// <summary>
    /// Gets the assignment: <c>Assignment[i]</c> is the column given to row <c>i</c>. It is a permutation of
    /// <c>0 … n−1</c>.
    /// </summary>
    public int[] Assignment { get; }

    /// <summary>Gets the objective <c>Σ_i c[i, Assignment[i]]</c>, summed in row order from the input costs.</summary>
    public double Objective { get; }

    /// <summary>Gets the row potentials (length <c>n</c>), in the units of the input costs.</summary>
    public double[] U { get; }

    /// <summary>Gets the column potentials (length <c>n</c>), in the units of the input costs.</summary>
    public double[] V { get; }

    /// <summary>Gets a value indicating whether the objective was maximised (otherwise minimised).</summary>
    public bool IsMaximization { get; }
}
