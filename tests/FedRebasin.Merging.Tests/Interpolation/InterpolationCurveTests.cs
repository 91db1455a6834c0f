using FedRebasin.Merging.Interpolation;
using FedRebasin.Merging.Repair;
using FedRebasin.Models;
using FedRebasin.Models.Permutations;
using TorchSharp;
using static TorchSharp.torch;
using Kit = FedRebasin.Merging.Tests.Repair.RepairTestKit;

namespace FedRebasin.Merging.Tests.Interpolation;

public sealed class InterpolationCurveTests
{
    [Fact]
    public void Compute_NoRepair_EndpointsReproduceEvaluationsOfAAndBExactly()
    {
        // Arrange
        using var scope = NewDisposeScope();
        var (a, b) = (Kit.Trained(Kit.Mlp, 1), Kit.Trained(Kit.Mlp, 2));
        using var modelA = Kit.Build(Kit.Mlp, a);
        using var modelB = Kit.Build(Kit.Mlp, b);
        var evaluationA = Kit.EvaluateOnTest(modelA);
        var evaluationB = Kit.EvaluateOnTest(modelB);
        var reports = new List<int>();

        // Act
        var result = InterpolationCurve.Compute(Kit.Mlp, a, b, Alphas.Linspace(5), Kit.EvaluateOnTest, progress: new InlineProgress(reports.Add));

        // Assert
        Assert.Equal(evaluationA.Loss, result.Loss[0]);
        Assert.Equal(evaluationA.Accuracy, result.Accuracy[0]);
        Assert.Equal(evaluationB.Loss, result.Loss[^1]);
        Assert.Equal(evaluationB.Accuracy, result.Accuracy[^1]);
        Assert.Equal([1, 2, 3, 4, 5], reports);
        Assert.Equal(Barriers.Loss(result.Alphas, result.Loss), result.LossBarrier);
        Assert.Equal(Barriers.Accuracy(result.Alphas, result.Accuracy), result.AccuracyBarrier);
        // Two independently trained, unaligned models: the midpoint is worse than both ends.
        Assert.True(result.LossBarrier > 0);
        Assert.All(result.Repairs, r => Assert.Null(r));
    }

    [Fact]
    public void Compute_WithRepair_EachInteriorModelMatchesInterpolatedTargets()
    {
        // Arrange
        using var scope = NewDisposeScope();
        var (a, b) = (Kit.Trained(Kit.Mlp, 1), Kit.Trained(Kit.Mlp, 2));
        var (momentsA, momentsB) = (Kit.Moments(Kit.Mlp, a), Kit.Moments(Kit.Mlp, b));
        var repair = new InterpolationRepair(RepairMode.Repair, momentsA, momentsB, Kit.CalibrationBatches);
        double[] alphas = [0, 0.25, 0.5, 1];
        int step = 0;
        (double, double) Evaluate(ClassifierModel model)
        {
            double alpha = alphas[step++];
            if (alpha is > 0 and < 1)
            {
                var targets = RepairTargets.Interpolate(momentsA, momentsB, alpha);
                var moments = MomentCollector.Collect(model, Kit.Calibration);
                for (int i = 0; i < moments.Count; i++)
                {
                    Kit.AssertMatches($"alpha {alpha}, point {i} mean", targets.Means[i], moments[i].Mean());
                    Kit.AssertMatches($"alpha {alpha}, point {i} std", targets.Stds[i], moments[i].Std());
                }
            }

            return Kit.EvaluateOnTest(model);
        }

        // Act
        var repaired = InterpolationCurve.Compute(Kit.Mlp, a, b, alphas, Evaluate, repair);
        var plain = InterpolationCurve.Compute(Kit.Mlp, a, b, alphas, Kit.EvaluateOnTest);

        // Assert
        Assert.Equal(4, step);
        Assert.Null(repaired.Repairs[0]);
        Assert.NotNull(repaired.Repairs[2]);
        Assert.Null(repaired.Repairs[3]);
        Assert.Equal(plain.Loss[0], repaired.Loss[0]);
        Assert.Equal(plain.Loss[3], repaired.Loss[3]);
        Assert.True(repaired.Loss[2] < plain.Loss[2], $"midpoint loss {plain.Loss[2]} -> {repaired.Loss[2]} with REPAIR");
    }

    [Fact]
    public void Compute_BnResetOnBatchNormModels_MidpointNoWorseThanWithout()
    {
        // Arrange
        using var scope = NewDisposeScope();
        var (a, b) = (Kit.Trained(Kit.VggBatch, 1, orderSeed: 10), Kit.Trained(Kit.VggBatch, 1, orderSeed: 20));
        var repair = new InterpolationRepair(RepairMode.BnReset, [], [], Kit.CalibrationBatches);
        double[] alphas = [0, 0.5, 1];

        // Act
        var reset = InterpolationCurve.Compute(Kit.VggBatch, a, b, alphas, Kit.EvaluateOnTest, repair);
        var plain = InterpolationCurve.Compute(Kit.VggBatch, a, b, alphas, Kit.EvaluateOnTest);

        // Assert
        Assert.Equal(8, reset.Repairs[1]!.BatchNormLayersReset);
        Assert.Equal(plain.Accuracy[0], reset.Accuracy[0]);
        Assert.True(reset.Accuracy[1] >= plain.Accuracy[1], $"midpoint accuracy {plain.Accuracy[1]} -> {reset.Accuracy[1]} with bn-reset");
        Assert.True(reset.LossBarrier <= plain.LossBarrier);
    }

    [Fact]
    public void Compute_BadInputs_ThrowClearErrors()
    {
        // Arrange
        using var scope = NewDisposeScope();
        var a = Kit.Trained(Kit.Mlp, 1);
        var other = Kit.Trained(Kit.VggLayer, 1);
        var shortMoments = new InterpolationRepair(RepairMode.Rescale, Kit.Moments(Kit.Mlp, a), [], Kit.CalibrationBatches);

        // Act and Assert
        Assert.Throws<ArgumentException>(() => InterpolationCurve.Compute(Kit.Mlp, a, a, [0, 0.5], Kit.EvaluateOnTest));
        Assert.Throws<ArgumentException>(() => InterpolationCurve.Compute(Kit.Mlp, a, a, [0.5, 0, 1], Kit.EvaluateOnTest));
        Assert.Contains("'0.weight'", Assert.Throws<ArgumentException>(() => InterpolationCurve.Compute(Kit.Mlp, a, other, [0, 1], Kit.EvaluateOnTest)).Message, StringComparison.Ordinal);
        Assert.Contains("'0.weight' of mlp 64-32-32-4 is missing", Assert.Throws<ArgumentException>(() => InterpolationCurve.Compute(Kit.Mlp, other, other, [0, 1], Kit.EvaluateOnTest)).Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => InterpolationCurve.Compute(Kit.Mlp, a, a, [0, 1], Kit.EvaluateOnTest, shortMoments));
    }

    private sealed class InlineProgress(Action<int> report) : IProgress<int>
    {
        public void Report(int value) => report(value);
    }
}
