using FedRebasin.Merging.Averaging;
using FedRebasin.Merging.Repair;
using FedRebasin.Models;
using FedRebasin.Models.Permutations;
using TorchSharp;
using static TorchSharp.torch;

namespace FedRebasin.Merging.Interpolation;

/// <summary>
/// Optional repair of each interpolated model (ALGORITHMS.md §4.3): at α the blended model is repaired toward the
/// targets <c>(1−α)·A + α·B</c> formed from the endpoints' moments, or, for <see cref="RepairMode.BnReset"/>, its
/// BatchNorm statistics are re-estimated.
/// </summary>
/// <param name="Mode">The repair mode; <see cref="RepairMode.None"/> does nothing.</param>
/// <param name="MomentsA">A's moments at every repair point (unused, and may be empty, for none and bn-reset).</param>
/// <param name="MomentsB">B's moments, already in A's frame (permuted like B's weights).</param>
/// <param name="CalibrationBatches">Calibration inputs on the model's device (see <see cref="Repairer.Apply"/>).</param>
public sealed record InterpolationRepair(
    RepairMode Mode,
    IReadOnlyList<ChannelMoments> MomentsA,
    IReadOnlyList<ChannelMoments> MomentsB,
    Func<IEnumerable<Tensor>> CalibrationBatches)
{
    /// <summary>Repair settings; <see cref="RepairOptions.Default"/> when null.</summary>
    public RepairOptions? Options { get; init; }

    /// <summary>
    /// Whether α = 0 and α = 1 are repaired too. Default false: the endpoints are evaluated exactly as given, so the
    /// barrier is measured against the original models (as in the REPAIR notebooks).
    /// </summary>
    public bool RepairEndpoints { get; init; }
}

/// <summary>Loss and accuracy along an interpolation path and its barriers.</summary>
/// <param name="Alphas">The interpolation coefficients, from 0 to 1.</param>
/// <param name="Loss">Loss at each alpha.</param>
/// <param name="Accuracy">Accuracy at each alpha.</param>
/// <param name="LossBarrier"><see cref="Barriers.Loss"/> of the curve.</param>
/// <param name="AccuracyBarrier"><see cref="Barriers.Accuracy"/> of the curve.</param>
/// <param name="Repairs">The repair report at each alpha (null where no repair was applied).</param>
public sealed record InterpolationResult(
    double[] Alphas,
    double[] Loss,
    double[] Accuracy,
    double LossBarrier,
    double AccuracyBarrier,
    IReadOnlyList<RepairReport?> Repairs);

/// <summary>Evaluates the linear path between two models (ALGORITHMS.md §1.7).</summary>
public static class InterpolationCurve
{
    /// <summary>
    /// For each α builds <c>θ(α) = (1−α)·a + α·b</c> (<see cref="StateBlend.Lerp"/>) into one model of
    /// <paramref name="spec"/> on a's device, optionally repairs it (for 0 &lt; α &lt; 1 unless
    /// <see cref="InterpolationRepair.RepairEndpoints"/>), and calls <paramref name="evaluate"/> on it. With no repair,
    /// α = 0 and α = 1 are exact copies of a and b, so their evaluations equal those of the endpoint models. The inputs
    /// are not changed. <paramref name="evaluate"/> must not keep the model, which is reused and disposed.
    /// </summary>
    /// <param name="spec">The architecture of both endpoints.</param>
    /// <param name="a">Model A's state (the alignment reference).</param>
    /// <param name="b">Model B's state, already permuted into A's frame.</param>
    /// <param name="alphas">Strictly increasing, in [0, 1], starting at 0 and ending at 1 (<see cref="Alphas.Validate"/>).</param>
    /// <param name="evaluate">Loss and accuracy of a model (e.g. on a test set).</param>
    /// <param name="repair">Repair applied at each alpha, or null for none.</param>
    /// <param name="progress">Receives the number of alphas evaluated so far after each one.</param>
    /// <exception cref="ArgumentException">Bad alphas; the states do not match each other or the spec (the message names
    /// the tensor); or the repair's moments or calibration data do not fit.</exception>
    public static InterpolationResult Compute(
        ModelSpec spec,
        IReadOnlyDictionary<string, Tensor> a,
        IReadOnlyDictionary<string, Tensor> b,
        IReadOnlyList<double> alphas,
        Func<ClassifierModel, (double Loss, double Accuracy)> evaluate,
        InterpolationRepair? repair = null,
        IProgress<int>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(evaluate);
        Alphas.Validate(alphas);
        StateBlend.EnsureCompatible(a, b);
        if (a.Count == 0)
        {
            throw new ArgumentException("The states hold no tensors.", nameof(a));
        }

        bool corrects = repair is not null && RepairModes.IsCorrection(repair.Mode);
        if (corrects)
        {
            // Fail before any work when the moments cannot form targets.
            _ = RepairTargets.Interpolate(repair!.MomentsA, repair.MomentsB, 0.5);
        }

        int count = alphas.Count;
        var loss = new double[count];
        var accuracy = new double[count];
        var repairs = new RepairReport?[count];
        using var model = ModelRegistry.Create(spec, a.Values.First().device);
        var state = model.state_dict();
        EnsureFits(state, a, spec);
        for (int k = 0; k < count; k++)
        {
            double alpha = alphas[k];
            using (NewDisposeScope())
            {
                StateDicts.CopyInto(state, StateBlend.Lerp(a, b, alpha));
            }

            bool endpoint = alpha == 0 || alpha == 1;
            if (repair is not null && repair.Mode != RepairMode.None && (!endpoint || repair.RepairEndpoints))
            {
                var targets = corrects ? RepairTargets.Interpolate(repair.MomentsA, repair.MomentsB, alpha) : null;
                repairs[k] = Repairer.Apply(model, targets, repair.Mode, repair.CalibrationBatches, repair.Options);
            }

            (loss[k], accuracy[k]) = evaluate(model);
            progress?.Report(k + 1);
        }

        double[] alphaCopy = [.. alphas];
        return new InterpolationResult(
            alphaCopy,
            loss,
            accuracy,
            Barriers.Loss(alphaCopy, loss),
            Barriers.Accuracy(alphaCopy, accuracy),
            repairs);
    }

    private static void EnsureFits(Dictionary<string, Tensor> model, IReadOnlyDictionary<string, Tensor> a, ModelSpec spec)
    {
        foreach (var (name, target) in model)
        {
            if (!a.TryGetValue(name, out var source))
            {
                throw new ArgumentException($"Tensor '{name}' of {spec.Describe()} is missing from the states.", nameof(a));
            }

            if (!source.shape.SequenceEqual(target.shape))
            {
                throw new ArgumentException($"Tensor '{name}' has shape [{string.Join(',', source.shape)}] but {spec.Describe()} needs [{string.Join(',', target.shape)}].", nameof(a));
            }
        }

        foreach (var name in a.Keys)
        {
            if (!model.ContainsKey(name))
            {
                throw new ArgumentException($"Tensor '{name}' is not part of {spec.Describe()}.", nameof(a));
            }
        }
    }
}
