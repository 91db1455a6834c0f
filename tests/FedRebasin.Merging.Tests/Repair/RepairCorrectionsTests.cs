using FedRebasin.Merging.Repair;
using FedRebasin.Models.Permutations;

namespace FedRebasin.Merging.Tests.Repair;

public sealed class RepairCorrectionsTests
{
    private static readonly RepairPoint s_point = new("features.0", "P_features.0", 3, new RepairTarget("features.0.weight", "features.0.bias"));

    // Merged statistics: means 1, -2, 0.5; stds 2, 0.5, 1.
    private static readonly ChannelMoments s_merged = RepairTargetsTests.Moments([1, -2, 0.5], [2, 0.5, 1]);
    private static readonly double[] s_targetMean = [3, 0, -1];
    private static readonly double[] s_targetStd = [4, 1, 0.5];

    [Fact]
    public void Compute_Repair_ScaleIsStdRatioAndShiftCentresOnTargetMean()
    {
        // Act
        var (scale, shift) = RepairCorrections.Compute(s_point, s_targetMean, s_targetStd, s_merged, RepairMode.Repair);

        // Assert: scale = σ*/σ̂, shift = μ* − scale·μ̂.
        AssertClose([2, 2, 0.5], scale);
        AssertClose([3 - 2 * 1, 0 - 2 * -2, -1 - 0.5 * 0.5], shift);
    }

    [Fact]
    public void Compute_HalfStrength_MovesStdByTheRootOfTheRatioAndMeanHalfway()
    {
        // Act
        var (scale, shift) = RepairCorrections.Compute(s_point, s_targetMean, s_targetStd, s_merged, RepairMode.Repair, bound: new RepairBound(Strength: 0.5));

        // Assert: scale = (σ*/σ̂)^0.5; the corrected mean scale·μ̂ + shift is μ̂ + 0.5·(μ* − μ̂).
        AssertClose([Math.Sqrt(2), Math.Sqrt(2), Math.Sqrt(0.5)], scale);
        double[] mean = [1, -2, 0.5];
        double[] expectedMean = [2, -1, -0.25];
        AssertClose(expectedMean, [.. mean.Select((m, c) => (scale[c] * m) + shift[c])]);
    }

    [Fact]
    public void Compute_MaxScale_CapsTheScaleBothWaysAndRepairStillHitsTheTargetMean()
    {
        // Act: ratios 2, 2, 0.5 capped at 1.25.
        var (scale, shift) = RepairCorrections.Compute(s_point, s_targetMean, s_targetStd, s_merged, RepairMode.Repair, bound: new RepairBound(MaxScale: 1.25));

        // Assert
        AssertClose([1.25, 1.25, 0.8], scale);
        AssertClose([3 - 1.25, 0 + (1.25 * 2), -1 - (0.8 * 0.5)], shift);
    }

    [Fact]
    public void Compute_FullBound_IsExactlyTheUnboundedCorrection()
    {
        var unbounded = RepairCorrections.Compute(s_point, s_targetMean, s_targetStd, s_merged, RepairMode.Repair);
        var none = RepairCorrections.Compute(s_point, s_targetMean, s_targetStd, s_merged, RepairMode.Repair, bound: RepairBound.None);

        Assert.Equal(unbounded.Scale, none.Scale);
        Assert.Equal(unbounded.Shift, none.Shift);
        Assert.True(RepairBound.None.IsNone);
    }

    [Theory]
    [InlineData(0.0, double.PositiveInfinity)]
    [InlineData(1.5, double.PositiveInfinity)]
    [InlineData(double.NaN, double.PositiveInfinity)]
    [InlineData(1.0, 0.5)]
    [InlineData(1.0, double.NaN)]
    public void Compute_BadBound_Throws(double strength, double maxScale)
    {
        Assert.Throws<ArgumentException>(() => RepairCorrections.Compute(s_point, s_targetMean, s_targetStd, s_merged, RepairMode.Repair, bound: new RepairBound(strength, maxScale)));
        Assert.Throws<ArgumentException>(() => new RepairOptions { Bound = new RepairBound(strength, maxScale) }.Validate());
    }

    [Fact]
    public void Compute_Rescale_ScaleIsStdRatioAndShiftIsZero()
    {
        // Act
        var (scale, shift) = RepairCorrections.Compute(s_point, s_targetMean, s_targetStd, s_merged, RepairMode.Rescale);

        // Assert
        AssertClose([2, 2, 0.5], scale);
        AssertClose([0, 0, 0], shift);
    }

    [Fact]
    public void Compute_Reshift_ScaleIsOneAndShiftMovesMean()
    {
        // Act
        var (scale, shift) = RepairCorrections.Compute(s_point, s_targetMean, s_targetStd, s_merged, RepairMode.Reshift);

        // Assert
        AssertClose([1, 1, 1], scale);
        AssertClose([2, 2, -1.5], shift);
    }

    [Fact]
    public void Compute_None_IsIdentity()
    {
        // Act
        var (scale, shift) = RepairCorrections.Compute(s_point, s_targetMean, s_targetStd, s_merged, RepairMode.None);

        // Assert
        AssertClose([1, 1, 1], scale);
        AssertClose([0, 0, 0], shift);
    }

    [Fact]
    public void Compute_RepairAppliedToMergedStatistics_GivesTargets()
    {
        // Act
        var (scale, shift) = RepairCorrections.Compute(s_point, s_targetMean, s_targetStd, s_merged, RepairMode.Repair);

        // Assert: the affine map y' = scale·y + shift sends (μ̂, σ̂) to (scale·μ̂ + shift, |scale|·σ̂) = (μ*, σ*).
        double[] mean = s_merged.Mean();
        double[] std = s_merged.Std();
        AssertClose(s_targetMean, mean.Select((m, c) => scale[c] * m + shift[c]).ToArray());
        AssertClose(s_targetStd, std.Select((s, c) => Math.Abs(scale[c]) * s).ToArray());
    }

    [Fact]
    public void Compute_DeadChannel_IsNotRescaled()
    {
        // Arrange: channel 1 is constant (σ̂ = 0) at -2; channel 2 has σ̂ = 1e-7 below the threshold.
        var merged = RepairTargetsTests.Moments([1, -2, 0.5], [2, 0, 1e-7]);

        // Act
        var repair = RepairCorrections.Compute(s_point, s_targetMean, s_targetStd, merged, RepairMode.Repair);
        var rescale = RepairCorrections.Compute(s_point, s_targetMean, s_targetStd, merged, RepairMode.Rescale);
        var loose = RepairCorrections.Compute(s_point, s_targetMean, s_targetStd, merged, RepairMode.Rescale, epsilon: 1e-8);

        // Assert
        AssertClose([2, 1, 1], repair.Scale);
        AssertClose([1, 2, -1.5], repair.Shift);
        AssertClose([2, 1, 1], rescale.Scale);
        AssertClose([0, 0, 0], rescale.Shift);
        Assert.True(loose.Scale[2] > 1e6);
        Assert.All(repair.Scale.Concat(repair.Shift), v => Assert.True(double.IsFinite(v)));
    }

    [Fact]
    public void Compute_LengthsDoNotMatchPoint_ThrowsNamingPoint()
    {
        // Act
        var error = Assert.Throws<ArgumentException>(() => RepairCorrections.Compute(s_point, [1, 2], s_targetStd, s_merged, RepairMode.Repair));

        // Assert
        Assert.Contains("'features.0' has 3 channels", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Compute_BnResetOrBadEpsilonOrEmptyMoments_Throws()
    {
        // Act and Assert
        Assert.Throws<ArgumentException>(() => RepairCorrections.Compute(s_point, s_targetMean, s_targetStd, s_merged, RepairMode.BnReset));
        Assert.Throws<ArgumentOutOfRangeException>(() => RepairCorrections.Compute(s_point, s_targetMean, s_targetStd, s_merged, RepairMode.Repair, -1));
        Assert.Throws<ArgumentException>(() => RepairCorrections.Compute(s_point, s_targetMean, s_targetStd, new ChannelMoments(3), RepairMode.Repair));
    }

    private static void AssertClose(IReadOnlyList<double> expected, IReadOnlyList<double> actual)
    {
        Assert.Equal(expected.Count, actual.Count);
        for (int i = 0; i < expected.Count; i++)
        {
            Assert.True(Math.Abs(expected[i] - actual[i]) < 1e-9, $"index {i}: expected {expected[i]}, got {actual[i]}.");
        }
    }
}
