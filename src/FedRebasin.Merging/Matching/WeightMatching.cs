using System.Diagnostics;
using System.Runtime.InteropServices;
using FedRebasin.Merging.Assignment;
using FedRebasin.Models.Permutations;
using FedRebasin.Torch;
using TorchSharp;
using static TorchSharp.torch;

namespace FedRebasin.Merging.Matching;

/// <summary>Settings of <see cref="WeightMatching.Match"/>.</summary>
public sealed record WeightMatchingOptions
{
    /// <summary>Most coordinate-descent sweeps over all groups. Default 100 (Git Re-Basin's cap); must be at least 1.</summary>
    public int MaxSweeps { get; init; } = 100;

    /// <summary>A sweep with no group gaining more than this ends the search. Default 1e-12.</summary>
    public double Tolerance { get; init; } = 1e-12;

    /// <summary>Independent searches (fresh sweep orders); the best objective wins. Default 1; must be at least 1.</summary>
    public int Restarts { get; init; } = 1;

    /// <summary>Seed of the sweep orders. The same seed gives the same permutations.</summary>
    public long Seed { get; init; }

    /// <summary>Where the first restart starts (e.g. the previous round's permutation); identity when null.</summary>
    public IReadOnlyDictionary<string, long[]>? InitialPermutations { get; init; }

    /// <summary>Checks the settings.</summary>
    public void Validate()
    {
        if (MaxSweeps < 1)
        {
            throw new ArgumentException($"MaxSweeps must be at least 1, not {MaxSweeps}.");
        }

        if (Restarts < 1)
        {
            throw new ArgumentException($"Restarts must be at least 1, not {Restarts}.");
        }

        if (!(Tolerance >= 0))
        {
            throw new ArgumentException($"Tolerance must be non-negative, not {Tolerance}.");
        }
    }
}

/// <summary>How a permutation group moved.</summary>
/// <param name="Name">Group name.</param>
/// <param name="Size">Units in the group.</param>
/// <param name="Gain">Objective gained by this group's permutation with the others at their final values
/// (Σ_i A[i, π(i)] − Σ_i A[i, i]).</param>
/// <param name="IdentityFraction">Fraction of units left in place (1 = nothing moved).</param>
public sealed record GroupMatch(string Name, int Size, double Gain, double IdentityFraction);

/// <summary>The result of weight matching one model to a reference.</summary>
/// <param name="Permutations">One permutation per group; apply with <see cref="PermutationSpec.Permute"/>.</param>
/// <param name="ObjectiveBefore">Σ over matched tensors of ⟨θ_ref, θ⟩ before alignment (float64).</param>
/// <param name="ObjectiveAfter">Σ over matched tensors of ⟨θ_ref, π(θ)⟩ after alignment.</param>
/// <param name="Sweeps">Sweeps of the winning restart.</param>
/// <param name="Seconds">Wall time of the whole search.</param>
/// <param name="Groups">Per-group figures, in spec order.</param>
public sealed record WeightMatchingResult(
    Dictionary<string, long[]> Permutations,
    double ObjectiveBefore,
    double ObjectiveAfter,
    int Sweeps,
    double Seconds,
    IReadOnlyList<GroupMatch> Groups);

/// <summary>
/// Git Re-Basin weight matching: coordinate descent over permutation groups, each step an exact linear assignment
/// that maximises Σ_k ⟨θ_ref[k], π(θ)[k]⟩ over every tensor axis the group touches, with all other groups held at
/// their current permutations. Groups are visited in a fresh seeded random order each sweep; the search stops after
/// a sweep with no gain above the tolerance. Cost matrices are built with TorchSharp matmuls in float64 (operands
/// widened a block of columns at a time, so no float64 copy of a whole layer exists) on the tensors' device (the GPU
/// when the state lives there) and solved on the CPU. BatchNorm running statistics are permuted by the spec but do
/// not enter the cost.
/// </summary>
public static class WeightMatching
{
    /// <summary>Finds the permutations that align <paramref name="model"/> to <paramref name="reference"/>.</summary>
    /// <param name="spec">The permutation spec; validated against both state dicts.</param>
    /// <param name="reference">Reference tensors (not modified).</param>
    /// <param name="model">Tensors of the model to align (not modified).</param>
    /// <param name="options">Search settings; defaults when null.</param>
    public static WeightMatchingResult Match(
        PermutationSpec spec,
        IReadOnlyDictionary<string, Tensor> reference,
        IReadOnlyDictionary<string, Tensor> model,
        WeightMatchingOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(reference);
        ArgumentNullException.ThrowIfNull(model);
        options ??= new WeightMatchingOptions();
        options.Validate();
        spec.Validate(reference);
        spec.Validate(model);
        RequireSameShapes(reference, model);
        var clock = Stopwatch.StartNew();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var problem = new MatchingProblem(spec, reference, model);

        Dictionary<string, long[]>? best = null;
        double bestObjective = double.NegativeInfinity;
        int bestSweeps = 0;
        IReadOnlyDictionary<string, double[]>? bestCosts = null;
        for (int restart = 0; restart < options.Restarts; restart++)
        {
            var start = restart == 0 && options.InitialPermutations is not null
                ? CopyChecked(spec, options.InitialPermutations)
                : spec.Identity();
            var (permutations, sweeps, finalCosts) = problem.Search(start, options, new Random(unchecked((int)(options.Seed * 1_000_003 + restart))));
            double objective = problem.Objective(permutations);
            if (objective > bestObjective)
            {
                (best, bestObjective, bestSweeps, bestCosts) = (permutations, objective, sweeps, finalCosts);
            }
        }

        double before = problem.Objective(spec.Identity());
        var groups = spec.Groups.Select(g => problem.Describe(g, best!, bestCosts?.GetValueOrDefault(g.Name))).ToList();
        return new WeightMatchingResult(best!, before, bestObjective, bestSweeps, clock.Elapsed.TotalSeconds, groups);
    }

    private static Dictionary<string, long[]> CopyChecked(PermutationSpec spec, IReadOnlyDictionary<string, long[]> permutations)
    {
        spec.CheckPermutations(permutations);
        return permutations.ToDictionary(p => p.Key, p => (long[])p.Value.Clone(), StringComparer.Ordinal);
    }

    private static void RequireSameShapes(IReadOnlyDictionary<string, Tensor> reference, IReadOnlyDictionary<string, Tensor> model)
    {
        foreach (var (name, tensor) in reference)
        {
            if (!model.TryGetValue(name, out var other))
            {
                throw new ArgumentException($"Tensor '{name}' is in the reference but not in the model being aligned.");
            }

            if (!tensor.shape.SequenceEqual(other.shape))
            {
                throw new ArgumentException($"Tensor '{name}' has shape [{string.Join(',', other.shape)}] but the reference has [{string.Join(',', tensor.shape)}].");
            }
        }

        foreach (string name in model.Keys.Where(n => !reference.ContainsKey(n)))
        {
            throw new ArgumentException($"Tensor '{name}' is in the model being aligned but not in the reference.");
        }
    }

    /// <summary>The tensors of one matching problem: the callers' tensors, widened to float64 a block at a time.</summary>
    private sealed class MatchingProblem
    {
        /// <summary>Elements of an operand widened to float64 at once (8 MiB of float64) in cost and objective sums.</summary>
        private const long WideningBlockElements = 1 << 20;

        private readonly PermutationSpec _spec;
        private readonly Dictionary<string, Tensor> _reference = new(StringComparer.Ordinal);
        private readonly Dictionary<string, Tensor> _model = new(StringComparer.Ordinal);
        private readonly Device _device;

        public MatchingProblem(PermutationSpec spec, IReadOnlyDictionary<string, Tensor> reference, IReadOnlyDictionary<string, Tensor> model)
        {
            _spec = spec;
            // Only tensors that some group's cost reads are needed. They are the caller's tensors, not copies: each is
            // widened to float64 only while its term is computed, so the search holds the two models, one permuted
            // tensor and the cost matrix at a time.
            var costTensors = spec.Groups.SelectMany(g => g.CostAxes).Select(a => a.Tensor).ToHashSet(StringComparer.Ordinal);
            foreach (string name in costTensors)
            {
                _reference[name] = reference[name].detach();
                _model[name] = model[name].detach();
            }

            _device = _reference.Values.FirstOrDefault()?.device ?? CPU;
        }

        /// <returns>The permutations, the sweeps run, and — when the search converged — every group's cost matrix
        /// from the last sweep: nothing moved in that sweep, so they are the matrices at the final permutations.</returns>
        public (Dictionary<string, long[]> Permutations, int Sweeps, IReadOnlyDictionary<string, double[]>? FinalCosts) Search(
            Dictionary<string, long[]> permutations, WeightMatchingOptions options, Random random)
        {
            var groups = _spec.Groups.ToArray();
            var lastCosts = new Dictionary<string, double[]>(StringComparer.Ordinal);
            int sweep = 0;
            bool converged = false;
            while (sweep < options.MaxSweeps)
            {
                sweep++;
                bool progress = false;
                random.Shuffle(groups);
                foreach (var group in groups)
                {
                    // Each group's matrix is written into the array of its previous sweep: a fresh n²·8-byte array per
                    // group and sweep would be large-object-heap garbage that stays resident until a full collection.
                    double[] cost = CostMatrix(group, permutations, lastCosts.GetValueOrDefault(group.Name));
                    lastCosts[group.Name] = cost;
                    int n = group.Size;
                    int[] assignment = LinearAssignment.SolveMaximize(cost, n);
                    long[] current = permutations[group.Name];
                    double oldValue = 0;
                    double newValue = 0;
                    for (int i = 0; i < n; i++)
                    {
                        oldValue += cost[(i * n) + current[i]];
                        newValue += cost[(i * n) + assignment[i]];
                    }

                    if (newValue > oldValue + options.Tolerance)
                    {
                        progress = true;
                        permutations[group.Name] = Array.ConvertAll(assignment, c => (long)c);
                    }
                }

                if (!progress)
                {
                    converged = true;
                    break;
                }
            }

            return (permutations, sweep, converged ? lastCosts : null);
        }

        /// <summary>
        /// A[i, j] = Σ over the group's cost axes of ⟨row i of θ_ref along the axis, row j of θ along the axis⟩, with
        /// every other axis of θ permuted by its group's current permutation.
        /// </summary>
        /// <param name="group">The group.</param>
        /// <param name="permutations">The current permutations of every group.</param>
        /// <param name="into">An array of n² elements to overwrite, or null for a new one.</param>
        public double[] CostMatrix(PermutationGroup group, Dictionary<string, long[]> permutations, double[]? into = null)
        {
            using var scope = NewDisposeScope();
            int n = group.Size;
            var total = zeros([n, n], ScalarType.Float64, _device);
            foreach (var axis in group.CostAxes)
            {
                // One scope per term: its permuted copy is freed before the next term is built.
                using var termScope = NewDisposeScope();
                var a2 = _reference[axis.Tensor].movedim([axis.Axis], [0]).reshape(n, -1);
                var b2 = PermuteOtherAxes(axis.Tensor, axis.Axis, permutations).movedim([axis.Axis], [0]).reshape(n, -1);
                AddProductInBlocks(total, a2, b2);
            }

            using var host = total.cpu();
            var values = MemoryMarshal.Cast<byte, double>(host.bytes);
            if (into is null)
            {
                return values.ToArray();
            }

            values.CopyTo(into);
            return into;
        }

        /// <summary>Σ_k ⟨θ_ref[k], π(θ)[k]⟩ over the tensors the cost reads.</summary>
        public double Objective(Dictionary<string, long[]> permutations)
        {
            double sum = 0;
            foreach (var (name, a) in _reference)
            {
                using var scope = NewDisposeScope();
                var flatA = a.reshape(-1);
                var flatB = PermuteOtherAxes(name, -1, permutations).reshape(-1);
                long length = flatA.shape[0];
                for (long start = 0; start < length; start += WideningBlockElements)
                {
                    using var blockScope = NewDisposeScope();
                    long width = Math.Min(WideningBlockElements, length - start);
                    sum += flatA.narrow(0, start, width).to_type(ScalarType.Float64)
                        .dot(flatB.narrow(0, start, width).to_type(ScalarType.Float64)).item<double>();
                }
            }

            return sum;
        }

        /// <summary>
        /// total += a2 · b2ᵀ in float64 for [n, m] operands of any floating dtype, widening <see cref="WideningBlockElements"/>
        /// elements of each operand at a time (column blocks): a whole float64 copy of a large layer would be twice
        /// its float32 size, for each operand.
        /// </summary>
        private static void AddProductInBlocks(Tensor total, Tensor a2, Tensor b2)
        {
            long n = a2.shape[0];
            long m = a2.shape[1];
            long width = Math.Max(1, WideningBlockElements / Math.Max(1, n));
            for (long start = 0; start < m; start += width)
            {
                using var blockScope = NewDisposeScope();
                long w = Math.Min(width, m - start);
                var a = a2.narrow(1, start, w).to_type(ScalarType.Float64);
                var b = b2.narrow(1, start, w).to_type(ScalarType.Float64);
                total.addmm_(a, b.t());
            }
        }

        public GroupMatch Describe(PermutationGroup group, Dictionary<string, long[]> permutations, double[]? finalCost)
        {
            double[] cost = finalCost ?? CostMatrix(group, permutations);
            long[] perm = permutations[group.Name];
            int n = group.Size;
            double gain = 0;
            int fixedPoints = 0;
            for (int i = 0; i < n; i++)
            {
                gain += cost[(i * n) + perm[i]] - cost[(i * n) + i];
                fixedPoints += perm[i] == i ? 1 : 0;
            }

            return new GroupMatch(group.Name, n, gain, (double)fixedPoints / n);
        }

        private Tensor PermuteOtherAxes(string name, int exceptAxis, Dictionary<string, long[]> permutations)
        {
            var result = _model[name];
            var slots = _spec.AxesToGroups[name];
            for (int axis = 0; axis < slots.Length; axis++)
            {
                if (axis == exceptAxis || slots[axis] is not { } groupName)
                {
                    continue;
                }

                var index = tensor(permutations[groupName], device: _device);
                result = result.index_select(axis, index);
            }

            return result;
        }
    }
}
