using FedRebasin.Merging.Interpolation;

namespace FedRebasin.Merging.Tests.Interpolation;

public sealed class BarriersTests
{
    [Fact]
    public void Loss_BumpInTheMiddle_IsPeakMinusEndpointMean()
    {
        // Act
        double barrier = Barriers.Loss([0, 0.25, 0.5, 0.75, 1], [1.0, 2.0, 3.0, 2.5, 2.0]);

        // Assert: max 3 − (1 + 2)/2.
        Assert.Equal(1.5, barrier, 12);
    }

    [Fact]
    public void Loss_MonotoneCurve_IsHalfTheEndpointGap()
    {
        // Act
        double barrier = Barriers.Loss([0, 0.5, 1], [1.0, 1.5, 2.0]);

        // Assert: the maximum is the endpoint 2; 2 − 1.5.
        Assert.Equal(0.5, barrier, 12);
    }

    [Fact]
    public void Accuracy_DipInTheMiddle_IsEndpointMeanMinusMinimum()
    {
        // Act
        double barrier = Barriers.Accuracy([0, 0.5, 1], [0.9, 0.5, 0.8]);

        // Assert
        Assert.Equal(0.35, barrier, 12);
    }

    [Fact]
    public void Accuracy_BetterInTheMiddle_IsHalfTheEndpointGap()
    {
        // Act
        double barrier = Barriers.Accuracy([0, 0.5, 1], [0.9, 0.95, 0.8]);

        // Assert: the minimum is the endpoint 0.8.
        Assert.Equal(0.05, barrier, 12);
    }

    [Fact]
    public void Loss_LengthMismatch_Throws()
    {
        // Act and Assert
        Assert.Throws<ArgumentException>(() => Barriers.Loss([0, 1], [1.0, 2.0, 3.0]));
    }

    [Fact]
    public void Linspace_FiveSteps_EvenlySpacedFromExactlyZeroToExactlyOne()
    {
        // Act
        double[] alphas = Alphas.Linspace(5);

        // Assert
        Assert.Equal([0.0, 0.25, 0.5, 0.75, 1.0], alphas);
        Assert.Equal(1.0, Alphas.Linspace(25)[^1]);
        Assert.Throws<ArgumentOutOfRangeException>(() => Alphas.Linspace(1));
    }

    public static TheoryData<double[], string> BadAlphas => new()
    {
        { [0.0], "at least" },
        { [0.1, 1.0], "start at 0" },
        { [0.0, 0.9], "end at 1" },
        { [0.0, 0.6, 0.4, 1.0], "strictly increasing" },
        { [0.0, 0.5, 0.5, 1.0], "strictly increasing" },
        { [0.0, 1.5, 1.0], "not in [0, 1]" },
        { [-0.5, 0.0, 1.0], "not in [0, 1]" },
        { [0.0, double.NaN, 1.0], "not in [0, 1]" },
    };

    [Theory]
    [MemberData(nameof(BadAlphas))]
    public void Validate_BadAlphas_ThrowsSayingWhy(double[] alphas, string reason)
    {
        // Act
        var error = Assert.Throws<ArgumentException>(() => Alphas.Validate(alphas));

        // Assert
        Assert.Contains(reason, error.Message, StringComparison.Ordinal);
    }
}
