using FedRebasin.Merging.Repair;
using FedRebasin.Models;
using FedRebasin.Models.Permutations;
using TorchSharp;
using static TorchSharp.torch;
using Kit = FedRebasin.Merging.Tests.Repair.RepairTestKit;

namespace FedRebasin.Merging.Tests.Repair;

public sealed class RepairerTests
{
    public static TheoryData<string> ConvArchitectures => ["vgg11-layer", "resnet20-none"];

    [Theory]
    [InlineData(RepairMode.Repair)]
    [InlineData(RepairMode.Rescale)]
    [InlineData(RepairMode.Reshift)]
    public void Apply_SequentialOnAveragedMlps_MergedMomentsMatchTargets(RepairMode mode)
    {
        // Arrange
        using var scope = NewDisposeScope();
        var (a, b) = (Kit.Trained(Kit.Mlp, 1), Kit.Trained(Kit.Mlp, 2));
        var targets = RepairTargets.Mix([(Kit.Moments(Kit.Mlp, a), 1.0), (Kit.Moments(Kit.Mlp, b), 1.0)]);
        using var merged = Kit.NaiveAverage(Kit.Mlp, a, b);
        var before = MomentCollector.Collect(merged, Kit.Calibration);

        // Act
        var report = Repairer.Apply(merged, targets, mode, Kit.CalibrationBatches);

        // Assert
        var after = MomentCollector.Collect(merged, Kit.Calibration);
        for (int i = 0; i < after.Count; i++)
        {
            string point = merged.RepairPoints[i].Name;
            switch (mode)
            {
                case RepairMode.Repair:
                    Kit.AssertMatches($"{point} mean", targets.Means[i], after[i].Mean());
                    Kit.AssertMatches($"{point} std", targets.Stds[i], after[i].Std());
                    break;
                case RepairMode.Rescale:
                    Kit.AssertMatches($"{point} std", targets.Stds[i], after[i].Std());
                    break;
                default:
                    Kit.AssertMatches($"{point} mean", targets.Means[i], after[i].Mean());
                    break;
            }
        }

        // Reshift leaves the first layer's std alone (its input is the data); rescale keeps the sign of the mean.
        if (mode == RepairMode.Reshift)
        {
            Kit.AssertMatches("0 std unchanged", before[0].Std(), after[0].Std());
        }

        Assert.All(report.Points, p => Assert.True(p.Corrected));
        Assert.Equal(merged.RepairPoints.Count + 1, report.CalibrationPasses);
        Assert.Equal(RepairEstimation.Sequential, report.Estimation);
    }

    [Theory]
    [MemberData(nameof(ConvArchitectures))]
    public void Apply_SequentialRepairOnAveragedConvNets_FoldablePointsMatchTargets(string architecture)
    {
        // Arrange
        using var scope = NewDisposeScope();
        var spec = architecture == "vgg11-layer" ? Kit.VggLayer : Kit.ResNetNone;
        var (a, b) = (Kit.Trained(spec, 1), Kit.Trained(spec, 2));
        var targets = RepairTargets.Mix([(Kit.Moments(spec, a), 1.0), (Kit.Moments(spec, b), 1.0)]);
        using var merged = Kit.NaiveAverage(spec, a, b);

        // Act
        var report = Repairer.Apply(merged, targets, RepairMode.Repair, Kit.CalibrationBatches);

        // Assert
        var after = MomentCollector.Collect(merged, Kit.Calibration);
        var points = merged.RepairPoints;
        Assert.Contains(points, p => p.Foldable);
        for (int i = 0; i < points.Count; i++)
        {
            Assert.Equal(points[i].Foldable, report.Points[i].Corrected);
            if (points[i].Foldable)
            {
                Kit.AssertMatches($"{points[i].Name} mean", targets.Means[i], after[i].Mean());
                Kit.AssertMatches($"{points[i].Name} std", targets.Stds[i], after[i].Std());
            }
        }
    }

    [Fact]
    public void Apply_NaiveAverageOfIndependentMlps_VarianceCollapseAtDeepestPointIsRepaired()
    {
        // Arrange
        using var scope = NewDisposeScope();
        var (a, b) = (Kit.Trained(Kit.Mlp, 1), Kit.Trained(Kit.Mlp, 2));
        var (momentsA, momentsB) = (Kit.Moments(Kit.Mlp, a), Kit.Moments(Kit.Mlp, b));
        var targets = RepairTargets.Mix([(momentsA, 1.0), (momentsB, 1.0)]);
        using var merged = Kit.NaiveAverage(Kit.Mlp, a, b);
        int deepest = merged.RepairPoints.Count - 1;
        double varianceA = momentsA[deepest].Variance().Average();
        double varianceB = momentsB[deepest].Variance().Average();
        double collapsed = MomentCollector.Collect(merged, Kit.Calibration)[deepest].Variance().Average();

        // Act
        var report = Repairer.Apply(merged, targets, RepairMode.Repair, Kit.CalibrationBatches);

        // Assert
        Assert.True(collapsed < Math.Min(varianceA, varianceB), $"merged variance {collapsed} vs endpoints {varianceA}, {varianceB}");
        var point = report.Points[deepest];
        Assert.True(point.VarianceRatioBefore < 0.9, $"variance ratio before {point.VarianceRatioBefore}");
        Assert.Equal(1.0, point.VarianceRatioAfter, 2e-3);
        double repaired = MomentCollector.Collect(merged, Kit.Calibration)[deepest].Variance().Average();
        Assert.Equal(targets.Stds[deepest].Average(s => s * s), repaired, 1e-3 * (1 + repaired));
    }

    [Fact]
    public void Apply_SimultaneousOnAveragedMlps_FirstPointExactAndVarianceDeficitReduced()
    {
        // Arrange
        using var scope = NewDisposeScope();
        var (a, b) = (Kit.Trained(Kit.Mlp, 1), Kit.Trained(Kit.Mlp, 2));
        var targets = RepairTargets.Mix([(Kit.Moments(Kit.Mlp, a), 1.0), (Kit.Moments(Kit.Mlp, b), 1.0)]);
        using var merged = Kit.NaiveAverage(Kit.Mlp, a, b);

        // Act
        var report = Repairer.Apply(merged, targets, RepairMode.Repair, Kit.CalibrationBatches, new RepairOptions { Estimation = RepairEstimation.Simultaneous });

        // Assert
        Assert.Equal(2, report.CalibrationPasses);
        var after = MomentCollector.Collect(merged, Kit.Calibration);
        Kit.AssertMatches("first mean", targets.Means[0], after[0].Mean());
        Kit.AssertMatches("first std", targets.Stds[0], after[0].Std());
        Assert.All(report.Points, p => Assert.True(p.Corrected));
        double deficitBefore = report.Points.Average(p => Math.Abs(1 - p.VarianceRatioBefore));
        double deficitAfter = report.Points.Average(p => Math.Abs(1 - p.VarianceRatioAfter));
        Assert.True(deficitAfter < deficitBefore, $"variance-ratio deficit {deficitBefore} -> {deficitAfter}");
    }

    [Theory]
    [MemberData(nameof(ConvArchitectures))]
    public void Apply_BatchStatisticsOnDeepNets_OnePassCloseToTargetsUnlikeSimultaneous(string architecture)
    {
        // Arrange
        using var scope = NewDisposeScope();
        var spec = architecture == "vgg11-layer" ? Kit.VggLayer : Kit.ResNetNone;
        var (a, b) = (Kit.Trained(spec, 1), Kit.Trained(spec, 2));
        var targets = RepairTargets.Mix([(Kit.Moments(spec, a), 1.0), (Kit.Moments(spec, b), 1.0)]);
        using var onePass = Kit.NaiveAverage(spec, a, b);
        using var simultaneous = Kit.NaiveAverage(spec, a, b);

        // Act
        var report = Repairer.Apply(onePass, targets, RepairMode.Repair, Kit.CalibrationBatches, new RepairOptions { Estimation = RepairEstimation.BatchStatistics });
        var naive = Repairer.Apply(simultaneous, targets, RepairMode.Repair, Kit.CalibrationBatches, new RepairOptions { Estimation = RepairEstimation.Simultaneous });

        // Assert: one correction pass between the before and after measurements.
        Assert.Equal(3, report.CalibrationPasses);
        var corrected = report.Points.Where(p => p.Corrected).ToList();
        Assert.Equal(onePass.RepairPoints.Count(p => p.Foldable), corrected.Count);
        Assert.All(corrected, p => Assert.True(Math.Abs(1 - p.VarianceRatioAfter) < 0.05, $"{p.Name}: variance ratio {p.VarianceRatioAfter}"));
        // Measuring the uncorrected model compounds the corrections in depth; the one-pass batch statistics do not.
        Assert.True(naive.Points.Where(p => p.Corrected).Max(p => p.VarianceRatioAfter) > 2);
    }

    [Fact]
    public void FoldCorrections_MomentsFromClients_EqualsSimultaneousApply()
    {
        // Arrange
        using var scope = NewDisposeScope();
        var (a, b) = (Kit.Trained(Kit.Mlp, 1), Kit.Trained(Kit.Mlp, 2));
        var targets = RepairTargets.Mix([(Kit.Moments(Kit.Mlp, a), 2.0), (Kit.Moments(Kit.Mlp, b), 1.0)]);
        using var viaApply = Kit.NaiveAverage(Kit.Mlp, a, b);
        using var viaMoments = Kit.NaiveAverage(Kit.Mlp, a, b);
        // Two "clients" each measure half of the calibration data; their sums pool exactly.
        var merged = MomentCollector.Collect(viaMoments, [Kit.Calibration[0]]);
        var second = MomentCollector.Collect(viaMoments, [Kit.Calibration[1]]);
        for (int i = 0; i < merged.Count; i++)
        {
            merged[i].Merge(second[i]);
        }

        // Act
        Repairer.Apply(viaApply, targets, RepairMode.Rescale, Kit.CalibrationBatches, new RepairOptions { Estimation = RepairEstimation.Simultaneous });
        int corrected = Repairer.FoldCorrections(viaMoments.state_dict(), viaMoments.RepairPoints, targets, merged, RepairMode.Rescale);

        // Assert
        Assert.Equal(viaMoments.RepairPoints.Count, corrected);
        foreach (var (name, tensor) in viaApply.state_dict())
        {
            Assert.True(tensor.allclose(viaMoments.state_dict()[name], rtol: 1e-6, atol: 1e-7), name);
        }
    }

    [Fact]
    public void Apply_HalfStrength_FirstPointMovesPartWayToTheTargets()
    {
        // Arrange
        using var scope = NewDisposeScope();
        var (a, b) = (Kit.Trained(Kit.Mlp, 1), Kit.Trained(Kit.Mlp, 2));
        var targets = RepairTargets.Mix([(Kit.Moments(Kit.Mlp, a), 1.0), (Kit.Moments(Kit.Mlp, b), 1.0)]);
        using var half = Kit.NaiveAverage(Kit.Mlp, a, b);
        using var full = Kit.NaiveAverage(Kit.Mlp, a, b);

        // Act
        var damped = Repairer.Apply(half, targets, RepairMode.Rescale, Kit.CalibrationBatches, new RepairOptions { Bound = new RepairBound(Strength: 0.5) });
        var complete = Repairer.Apply(full, targets, RepairMode.Rescale, Kit.CalibrationBatches);

        // Assert: at the first point (inputs unchanged) each channel's variance becomes σ̂·σ*, between σ̂² and σ*², so the
        // variance ratio lands between its collapsed value and 1; the full correction reaches 1.
        var first = damped.Points[0];
        Assert.True(first.VarianceRatioBefore < 0.95, $"the average should have collapsed the variance (ratio {first.VarianceRatioBefore})");
        Assert.InRange(first.VarianceRatioAfter, first.VarianceRatioBefore + 0.01, 0.99);
        Assert.Equal(1.0, complete.Points[0].VarianceRatioAfter, 3);
    }

    [Fact]
    public void Apply_ResNet_MeasureOnlySumPointsAreReportedButNotCorrected()
    {
        // Arrange
        using var scope = NewDisposeScope();
        var spec = Kit.ResNetNone;
        var (a, b) = (Kit.Trained(spec, 1), Kit.Trained(spec, 2));
        var targets = RepairTargets.Mix([(Kit.Moments(spec, a), 1.0), (Kit.Moments(spec, b), 1.0)]);
        using var merged = Kit.NaiveAverage(spec, a, b);

        // Act
        var report = Repairer.Apply(merged, targets, RepairMode.Rescale, Kit.CalibrationBatches, new RepairOptions { Estimation = RepairEstimation.Simultaneous });

        // Assert
        var sums = report.Points.Where(p => p.Name.EndsWith(".sum", StringComparison.Ordinal)).ToList();
        Assert.Equal(9, sums.Count);
        Assert.All(sums, p =>
        {
            Assert.False(p.Corrected);
            Assert.True(double.IsFinite(p.VarianceRatioBefore) && double.IsFinite(p.VarianceRatioAfter));
            Assert.NotEqual(p.StdBefore, p.StdAfter);
        });
        Assert.Equal(report.Points.Count - 9, report.Points.Count(p => p.Corrected));
    }

    [Fact]
    public void Apply_Repair_LiveTensorCountBackToBaseline()
    {
        // Arrange
        var (a, b) = (Kit.Trained(Kit.VggLayer, 1), Kit.Trained(Kit.VggLayer, 2));
        var targets = RepairTargets.Mix([(Kit.Moments(Kit.VggLayer, a), 1.0), (Kit.Moments(Kit.VggLayer, b), 1.0)]);
        using var merged = Kit.NaiveAverage(Kit.VggLayer, a, b);
        var batches = Kit.Calibration;
        long baseline = DisposeScopeManager.Statistics.ThreadTotalLiveCount;

        // Act
        Repairer.Apply(merged, targets, RepairMode.Repair, () => batches);
        Repairer.Apply(merged, targets, RepairMode.Rescale, () => batches, new RepairOptions { Estimation = RepairEstimation.Simultaneous });

        // Assert
        Assert.Equal(baseline, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
    }

    [Fact]
    public void Apply_CalibrationSourceCreatingTensors_DisposesThemAfterEachPass()
    {
        // Arrange
        var (a, b) = (Kit.Trained(Kit.Mlp, 1), Kit.Trained(Kit.Mlp, 2));
        var targets = RepairTargets.Mix([(Kit.Moments(Kit.Mlp, a), 1.0), (Kit.Moments(Kit.Mlp, b), 1.0)]);
        using var merged = Kit.NaiveAverage(Kit.Mlp, a, b);
        long baseline = DisposeScopeManager.Statistics.ThreadTotalLiveCount;

        // Act: the source makes fresh views on every call.
        Repairer.Apply(merged, targets, RepairMode.Repair, () => Kit.Train.Features.narrow(0, 0, 256).split(64));

        // Assert
        Assert.Equal(baseline, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
    }

    [Fact]
    public void Apply_ModeNone_LeavesWeightsUnchangedAndReportsCollapse()
    {
        // Arrange
        using var scope = NewDisposeScope();
        var (a, b) = (Kit.Trained(Kit.Mlp, 1), Kit.Trained(Kit.Mlp, 2));
        var targets = RepairTargets.Mix([(Kit.Moments(Kit.Mlp, a), 1.0), (Kit.Moments(Kit.Mlp, b), 1.0)]);
        using var merged = Kit.NaiveAverage(Kit.Mlp, a, b);
        var snapshot = Kit.Snapshot(merged);

        // Act
        var report = Repairer.Apply(merged, targets, RepairMode.None, Kit.CalibrationBatches);

        // Assert
        foreach (var (name, tensor) in merged.state_dict())
        {
            Assert.True(tensor.equal(snapshot[name]).all().item<bool>(), name);
        }

        Assert.Equal(1, report.CalibrationPasses);
        Assert.All(report.Points, p => Assert.Equal(p.VarianceRatioBefore, p.VarianceRatioAfter));
        Assert.All(report.Points, p => Assert.False(p.Corrected));
        foreach (var tensor in snapshot.Values)
        {
            tensor.Dispose();
        }
    }

    [Fact]
    public void Apply_BadArguments_ThrowClearErrors()
    {
        // Arrange
        using var scope = NewDisposeScope();
        var a = Kit.Trained(Kit.Mlp, 1);
        var mlpTargets = RepairTargets.FromMoments(Kit.Moments(Kit.Mlp, a));
        using var mlp = Kit.Build(Kit.Mlp, a);
        using var vgg = ModelRegistry.Create(Kit.VggLayer, seed: 3);

        // Act and Assert
        Assert.Contains("needs target statistics", Assert.Throws<ArgumentException>(() => Repairer.Apply(mlp, null, RepairMode.Repair, Kit.CalibrationBatches)).Message, StringComparison.Ordinal);
        Assert.Contains("repair points", Assert.Throws<ArgumentException>(() => Repairer.Apply(vgg, mlpTargets, RepairMode.Repair, Kit.CalibrationBatches)).Message, StringComparison.Ordinal);
        Assert.Contains("no examples", Assert.Throws<ArgumentException>(() => Repairer.Apply(mlp, mlpTargets, RepairMode.Repair, () => [])).Message, StringComparison.Ordinal);
        Assert.Contains("BatchNorm", Assert.Throws<ArgumentException>(() => Repairer.Apply(vgg, null, RepairMode.BnReset, Kit.CalibrationBatches)).Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => Repairer.Apply(mlp, mlpTargets, RepairMode.Repair, Kit.CalibrationBatches, new RepairOptions { Epsilon = -1 }));
    }

    [Fact]
    public void Apply_BatchNormModelResetThenRepair_FoldablePointsMatchTargets()
    {
        // Arrange
        using var scope = NewDisposeScope();
        var spec = Kit.VggBatch;
        var (a, b) = (Kit.Trained(spec, 1), Kit.Trained(spec, 2));
        var targets = RepairTargets.Mix([(Kit.Moments(spec, a), 1.0), (Kit.Moments(spec, b), 1.0)]);
        using var merged = Kit.NaiveAverage(spec, a, b);

        // Act
        var report = Repairer.Apply(merged, targets, RepairMode.Repair, Kit.CalibrationBatches, new RepairOptions { ResetBatchNorm = true });

        // Assert
        Assert.Equal(8, report.BatchNormLayersReset);
        var after = MomentCollector.Collect(merged, Kit.Calibration);
        for (int i = 0; i < after.Count; i++)
        {
            Kit.AssertMatches($"{merged.RepairPoints[i].Name} mean", targets.Means[i], after[i].Mean());
            Kit.AssertMatches($"{merged.RepairPoints[i].Name} std", targets.Stds[i], after[i].Std());
        }
    }
}
