using FedRebasin.Merging.Repair;
using FedRebasin.Models;
using FedRebasin.Models.Permutations;
using FedRebasin.Training;
using TorchSharp;
using static TorchSharp.torch;
using Kit = FedRebasin.Merging.Tests.Repair.RepairTestKit;

namespace FedRebasin.Merging.Tests.Repair;

public sealed class BatchNormResetTests
{
    public static TheoryData<string> BatchNormArchitectures => ["vgg11", "resnet20"];

    [Fact]
    public void Apply_PerturbedRunningStats_FirstBatchNormHoldsExactInputStatistics()
    {
        // Arrange
        using var scope = NewDisposeScope();
        using var model = ModelRegistry.Create(Kit.VggBatch, seed: 5);
        var modules = model.named_modules().ToDictionary(m => m.name, m => m.module);
        var norm = (TorchSharp.Modules.BatchNorm2d)modules["features.1"];
        Perturb(model);
        // The first BatchNorm's input is the first conv's output on the calibration data.
        var conv = (nn.Module<Tensor, Tensor>)modules["features.0"];
        Tensor input;
        using (no_grad())
        {
            input = cat(Kit.Calibration.Select(conv.call).ToArray(), 0).to_type(ScalarType.Float64);
        }

        var exactMean = input.mean([0, 2, 3]);
        var exactVariance = input.var([0, 2, 3], unbiased: false);

        // Act
        int layers = BatchNormReset.Apply(model, Kit.CalibrationBatches);

        // Assert
        Assert.Equal(8, layers);
        Assert.True(norm.running_mean!.to_type(ScalarType.Float64).allclose(exactMean, rtol: 0, atol: 1e-4), "running_mean");
        Assert.True(norm.running_var!.to_type(ScalarType.Float64).allclose(exactVariance, rtol: 1e-4, atol: 1e-4), "running_var (population variance)");
        Assert.Equal(Kit.Calibration.Count, norm.num_batches_tracked!.item<long>());
    }

    [Theory]
    [MemberData(nameof(BatchNormArchitectures))]
    public void Apply_PerturbedRunningStats_EveryBatchNormNormalisesCalibrationDataInEvalMode(string architecture)
    {
        // Arrange: fresh models have γ = 1, β = 0, so after an exact reset each BN output (a repair point) has per-channel
        // mean 0 and std sqrt(v / (v + eps)) on the calibration data, whatever the depth.
        using var scope = NewDisposeScope();
        using var model = ModelRegistry.Create(architecture == "vgg11" ? Kit.VggBatch : Kit.ResNetBatch, seed: 6);
        Perturb(model);
        var norms = model.named_modules().Where(m => m.module is TorchSharp.Modules.BatchNorm2d)
            .ToDictionary(m => m.name, m => (TorchSharp.Modules.BatchNorm2d)m.module);

        // Act
        BatchNormReset.Apply(model, Kit.CalibrationBatches);

        // Assert
        var moments = MomentCollector.Collect(model, Kit.Calibration);
        int checkedPoints = 0;
        for (int i = 0; i < moments.Count; i++)
        {
            if (!norms.TryGetValue(model.RepairPoints[i].Name, out var norm))
            {
                continue;
            }

            double[] variance = norm.running_var!.to_type(ScalarType.Float64).data<double>().ToArray();
            double[] expectedStd = variance.Select(v => Math.Sqrt(v / (v + norm.eps))).ToArray();
            Kit.AssertMatches($"{model.RepairPoints[i].Name} mean", new double[variance.Length], moments[i].Mean());
            Kit.AssertMatches($"{model.RepairPoints[i].Name} std", expectedStd, moments[i].Std());
            checkedPoints++;
        }

        Assert.Equal(norms.Count, checkedPoints);
    }

    [Fact]
    public void Apply_NaivelyAveragedBatchNormModels_TestAccuracyNoWorse()
    {
        // Arrange: two clients trained from one initial model on different batch orders, averaged as FedAvg does.
        using var scope = NewDisposeScope();
        var (a, b) = (Kit.Trained(Kit.VggBatch, 1, orderSeed: 10), Kit.Trained(Kit.VggBatch, 1, orderSeed: 20));
        using var merged = Kit.NaiveAverage(Kit.VggBatch, a, b);
        var before = Evaluator.Evaluate(merged, Kit.Test);

        // Act
        var report = Repairer.Apply(merged, null, RepairMode.BnReset, Kit.CalibrationBatches);

        // Assert
        var after = Evaluator.Evaluate(merged, Kit.Test);
        Assert.Equal(8, report.BatchNormLayersReset);
        Assert.True(after.Accuracy >= before.Accuracy, $"accuracy {before.Accuracy} -> {after.Accuracy}");
        Assert.True(after.Loss < before.Loss, $"loss {before.Loss} -> {after.Loss}");
        Assert.All(report.Points, p => Assert.True(double.IsNaN(p.TargetStd)));
    }

    [Fact]
    public void Apply_CalibrationSourceCreatingTensors_LiveTensorCountBackToBaseline()
    {
        // Arrange
        using var model = ModelRegistry.Create(Kit.ResNetBatch, seed: 2);
        long baseline = DisposeScopeManager.Statistics.ThreadTotalLiveCount;

        // Act: the source makes fresh views on every call.
        BatchNormReset.Apply(model, () => Kit.Train.Features.narrow(0, 0, 128).split(64));

        // Assert
        Assert.Equal(baseline, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
    }

    [Fact]
    public void Apply_ModelWithoutBatchNorm_ThrowsClearError()
    {
        // Arrange
        using var model = ModelRegistry.Create(Kit.VggLayer, seed: 1);

        // Act
        var error = Assert.Throws<ArgumentException>(() => BatchNormReset.Apply(model, Kit.CalibrationBatches));

        // Assert
        Assert.Contains("BatchNorm", error.Message, StringComparison.Ordinal);
        Assert.False(BatchNormReset.HasBatchNorm(model));
    }

    [Fact]
    public void Apply_NoCalibrationData_Throws()
    {
        // Arrange
        using var model = ModelRegistry.Create(Kit.VggBatch, seed: 1);

        // Act and Assert
        Assert.Throws<ArgumentException>(() => BatchNormReset.Apply(model, () => []));
    }

    private static void Perturb(ClassifierModel model)
    {
        using var noGrad = no_grad();
        foreach (var (_, module) in model.named_modules())
        {
            if (module is TorchSharp.Modules.BatchNorm2d norm)
            {
                norm.running_mean!.uniform_(-3, 3);
                norm.running_var!.uniform_(0.1, 5);
                norm.num_batches_tracked!.fill_(777);
            }
        }
    }
}
