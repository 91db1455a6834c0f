using FedRebasin.Merging.Repair;
using FedRebasin.Models.Permutations;

namespace FedRebasin.Merging.Tests.Repair;

public sealed class RepairTargetsTests
{
    // Moments of n values per channel with the given means and population stds (values μ ± σ, half each).
    internal static ChannelMoments Moments(double[] mean, double[] std, double count = 4)
    {
        var sum = mean.Select(m => m * count).ToArray();
        var squares = mean.Select((m, c) => count * (m * m + std[c] * std[c])).ToArray();
        return new ChannelMoments(count, sum, squares);
    }

    [Fact]
    public void Mix_TwoWeightedEndpoints_MixesMeansAndStdsWithNormalisedWeights()
    {
        // Arrange
        IReadOnlyList<ChannelMoments> a = [Moments([1, -2], [1, 4])];
        IReadOnlyList<ChannelMoments> b = [Moments([5, 2], [3, 0])];

        // Act: weights 1 and 3 (sample counts) normalise to 0.25 and 0.75.
        var targets = RepairTargets.Mix([(a, 1.0), (b, 3.0)]);

        // Assert
        Assert.Equal(1, targets.Count);
        Assert.Equal([4.0, 1.0], targets.Means[0].Select(v => Math.Round(v, 12)));
        // The std is mixed (0.25·1 + 0.75·3 = 2.5), not the variance (sqrt(0.25·1 + 0.75·9) ≈ 2.65).
        Assert.Equal([2.5, 1.0], targets.Stds[0].Select(v => Math.Round(v, 12)));
    }

    [Fact]
    public void Pool_TwoClientsOnDifferentData_EqualsTheStatisticsOfTheirUnion()
    {
        // Arrange: client a sees values {0, 2} (mean 1, std 1) three times as often as client b sees {9, 11} (mean 10, std 1).
        double[] aValues = [0, 2, 0, 2, 0, 2];
        double[] bValues = [9, 11];
        IReadOnlyList<ChannelMoments> a = [Moments([1], [1], count: aValues.Length)];
        IReadOnlyList<ChannelMoments> b = [Moments([10], [1], count: bValues.Length)];
        double[] union = [.. aValues, .. bValues];
        double mean = union.Average();
        double std = Math.Sqrt(union.Average(v => (v - mean) * (v - mean)));

        // Act: weights are the sample counts (3 : 1).
        var pooled = RepairTargets.Pool([(a, 3.0), (b, 1.0)]);
        var mixed = RepairTargets.Mix([(a, 3.0), (b, 1.0)]);

        // Assert: pooling keeps the spread between the clients' means (std 3.99), mixing loses it (std 1).
        Assert.Equal(mean, pooled.Means[0][0], 12);
        Assert.Equal(std, pooled.Stds[0][0], 12);
        Assert.Equal(1.0, mixed.Stds[0][0], 12);
        Assert.True(pooled.Stds[0][0] > 3.9);
    }

    [Fact]
    public void Pool_BadWeight_Throws()
    {
        IReadOnlyList<ChannelMoments> a = [Moments([1], [1])];

        Assert.Throws<ArgumentException>(() => RepairTargets.Pool([(a, 0.0)]));
    }

    [Fact]
    public void Interpolate_Alpha_GivesOneMinusAlphaTimesAPlusAlphaTimesB()
    {
        // Arrange
        IReadOnlyList<ChannelMoments> a = [Moments([0], [1]), Moments([2, 2], [2, 2])];
        IReadOnlyList<ChannelMoments> b = [Moments([4], [3]), Moments([6, -2], [4, 0])];

        // Act
        var atZero = RepairTargets.Interpolate(a, b, 0);
        var quarter = RepairTargets.Interpolate(a, b, 0.25);

        // Assert
        Assert.Equal([0.0], atZero.Means[0]);
        Assert.Equal([1.0], atZero.Stds[0]);
        Assert.Equal([1.0], quarter.Means[0].Select(v => Math.Round(v, 12)));
        Assert.Equal([3.0, 1.0], quarter.Means[1].Select(v => Math.Round(v, 12)));
        Assert.Equal([2.5, 1.5], quarter.Stds[1].Select(v => Math.Round(v, 12)));
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(-1.0)]
    [InlineData(double.NaN)]
    [InlineData(double.PositiveInfinity)]
    public void Mix_NonPositiveOrNonFiniteWeight_ThrowsNamingEndpoint(double weight)
    {
        // Arrange
        IReadOnlyList<ChannelMoments> a = [Moments([1], [1])];

        // Act
        var error = Assert.Throws<ArgumentException>(() => RepairTargets.Mix([(a, 1.0), (a, weight)]));

        // Assert
        Assert.Contains("Endpoint 1", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Mix_DifferentPointCounts_Throws()
    {
        // Arrange
        IReadOnlyList<ChannelMoments> a = [Moments([1], [1])];
        IReadOnlyList<ChannelMoments> b = [Moments([1], [1]), Moments([1], [1])];

        // Act
        var error = Assert.Throws<ArgumentException>(() => RepairTargets.Mix([(a, 1.0), (b, 1.0)]));

        // Assert
        Assert.Contains("2 repair points", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Mix_DifferentChannelCounts_ThrowsNamingPoint()
    {
        // Arrange
        IReadOnlyList<ChannelMoments> a = [Moments([1], [1]), Moments([1, 2], [1, 1])];
        IReadOnlyList<ChannelMoments> b = [Moments([1], [1]), Moments([1, 2, 3], [1, 1, 1])];

        // Act
        var error = Assert.Throws<ArgumentException>(() => RepairTargets.Mix([(a, 1.0), (b, 1.0)]));

        // Assert
        Assert.Contains("Endpoint 1, point 1: 3 channels", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Mix_EmptyMomentsOrNoEndpoints_Throws()
    {
        // Arrange
        IReadOnlyList<ChannelMoments> empty = [new ChannelMoments(2)];

        // Act and Assert
        Assert.Contains("empty", Assert.Throws<ArgumentException>(() => RepairTargets.Mix([(empty, 1.0)])).Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => RepairTargets.Mix([]));
    }

    [Fact]
    public void Validate_TargetsOfAnotherModel_ThrowsNamingPoint()
    {
        // Arrange
        var targets = RepairTargets.FromMoments([Moments([1, 2], [1, 1])]);
        RepairPoint[] points = [new("0", "P0", 3, new RepairTarget("0.weight", "0.bias"))];

        // Act
        var error = Assert.Throws<ArgumentException>(() => targets.Validate(points));

        // Assert
        Assert.Contains("'0' has 3 channels", error.Message, StringComparison.Ordinal);
    }
}
