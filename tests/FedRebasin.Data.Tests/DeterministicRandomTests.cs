namespace FedRebasin.Data.Tests;

public sealed class DeterministicRandomTests
{
    [Fact]
    public void SplitMix64_Seed1234567_MatchesReferenceOutputs()
    {
        // Reference values of Vigna's splitmix64.c seeded with 1234567.
        ulong state = 1234567;
        ulong[] expected = [6457827717110365317UL, 3203168211198807973UL, 9817491932198370423UL, 4593380528125082431UL, 16408922859458223821UL];

        ulong[] actual = expected.Select(_ => DeterministicRandom.SplitMix64(ref state)).ToArray();

        Assert.Equal(expected, actual);
    }

    [Fact]
    public void NextUInt64_Seed42_MatchesXoshiro256StarStarReference()
    {
        // xoshiro256** seeded with four SplitMix64(42) outputs, computed with an independent Python port.
        var rng = new DeterministicRandom(42);
        ulong[] expected = [1546998764402558742UL, 6990951692964543102UL, 12544586762248559009UL, 17057574109182124193UL, 18295552978065317476UL];

        ulong[] actual = expected.Select(_ => rng.NextUInt64()).ToArray();

        Assert.Equal(expected, actual);
    }

    [Fact]
    public void Constructor_DifferentStreams_GiveDifferentSequences()
    {
        var a = new DeterministicRandom(5, stream: 1);
        var b = new DeterministicRandom(5, stream: 2);
        var c = new DeterministicRandom(5, stream: 1);

        ulong a1 = a.NextUInt64();
        Assert.NotEqual(a1, b.NextUInt64());
        Assert.Equal(a1, c.NextUInt64());
    }

    [Fact]
    public void NextInt_SmallRange_IsRoughlyUniformAndInRange()
    {
        var rng = new DeterministicRandom(9);
        var counts = new int[7];
        for (int i = 0; i < 70000; i++)
        {
            counts[rng.NextInt(7)]++;
        }

        // Each bucket expects 10000 with sd ~93; 6 sd is a safe bound.
        Assert.All(counts, c => Assert.InRange(c, 9440, 10560));
        Assert.Throws<ArgumentOutOfRangeException>(() => rng.NextInt(0));
    }

    [Fact]
    public void NextDouble_ManyDraws_StayInRange()
    {
        var rng = new DeterministicRandom(3);
        for (int i = 0; i < 10000; i++)
        {
            Assert.InRange(rng.NextDouble(), 0.0, Math.BitDecrement(1.0));
            Assert.InRange(rng.NextDoubleNonZero(), double.Epsilon, 1.0);
        }
    }

    [Theory]
    [InlineData(0.1)]
    [InlineData(0.5)]
    [InlineData(1.0)]
    [InlineData(3.0)]
    [InlineData(50.0)]
    public void NextGamma_Shape_HasMeanAndVarianceEqualToShape(double shape)
    {
        var rng = new DeterministicRandom(123);
        const int n = 40000;
        double sum = 0;
        double sumSquares = 0;
        for (int i = 0; i < n; i++)
        {
            double x = rng.NextGamma(shape);
            Assert.True(x >= 0);
            sum += x;
            sumSquares += x * x;
        }

        double mean = sum / n;
        double variance = (sumSquares / n) - (mean * mean);

        // Standard error of the mean is sqrt(shape / n); allow 5 of them. Variance within 10 %.
        Assert.InRange(mean, shape - (5 * Math.Sqrt(shape / n)), shape + (5 * Math.Sqrt(shape / n)));
        Assert.InRange(variance, 0.9 * shape, 1.1 * shape);
    }

    [Fact]
    public void NextNormal_ManyDraws_HasZeroMeanUnitVariance()
    {
        var rng = new DeterministicRandom(77);
        const int n = 40000;
        double sum = 0;
        double sumSquares = 0;
        for (int i = 0; i < n; i++)
        {
            double x = rng.NextNormal();
            sum += x;
            sumSquares += x * x;
        }

        Assert.InRange(sum / n, -0.025, 0.025);
        Assert.InRange(sumSquares / n, 0.97, 1.03);
    }

    [Theory]
    [InlineData(0.001)]
    [InlineData(0.1)]
    [InlineData(1.0)]
    [InlineData(1000.0)]
    public void NextDirichlet_Alpha_SumsToOneWithoutNaN(double alpha)
    {
        var rng = new DeterministicRandom(1);
        var p = new double[50];
        for (int t = 0; t < 100; t++)
        {
            rng.NextDirichlet(alpha, p);
            Assert.All(p, v => Assert.True(v >= 0 && double.IsFinite(v)));
            Assert.Equal(1.0, p.Sum(), 1e-12);
        }
    }

    [Fact]
    public void Shuffle_Items_IsPermutationAndSeedDependent()
    {
        int[] a = Enumerable.Range(0, 100).ToArray();
        int[] b = Enumerable.Range(0, 100).ToArray();
        new DeterministicRandom(1).Shuffle(a.AsSpan());
        new DeterministicRandom(2).Shuffle(b.AsSpan());

        Assert.Equal(Enumerable.Range(0, 100), a.Order());
        Assert.NotEqual(a, b);
    }
}

public sealed class PortableMathTests
{
    [Fact]
    public void Log_ManyValues_MatchesMathLog()
    {
        var rng = new DeterministicRandom(4);
        for (int i = 0; i < 20000; i++)
        {
            // Spread over the whole exponent range, including subnormals.
            double x = BitConverter.Int64BitsToDouble((long)(rng.NextUInt64() >> 2));
            if (!double.IsFinite(x) || x == 0)
            {
                continue;
            }

            double expected = Math.Log(x);
            Assert.Equal(expected, PortableMath.Log(x), Math.Abs(expected) * 1e-15 + 1e-300);
        }

        for (int i = 0; i < 20000; i++)
        {
            double x = rng.NextDoubleNonZero() * 4;
            double expected = Math.Log(x);
            Assert.Equal(expected, PortableMath.Log(x), Math.Max(Math.Abs(expected), 1e-3) * 1e-14);
        }
    }

    [Fact]
    public void Log_SpecialValues_FollowIeeeConventions()
    {
        Assert.Equal(0.0, PortableMath.Log(1.0));
        Assert.Equal(double.NegativeInfinity, PortableMath.Log(0.0));
        Assert.Equal(double.PositiveInfinity, PortableMath.Log(double.PositiveInfinity));
        Assert.True(double.IsNaN(PortableMath.Log(-1.0)));
        Assert.True(double.IsNaN(PortableMath.Log(double.NaN)));
        Assert.Equal(Math.Log(double.Epsilon), PortableMath.Log(double.Epsilon), 1e-12);
    }

    [Fact]
    public void Exp_ManyValues_MatchesMathExp()
    {
        var rng = new DeterministicRandom(5);
        for (int i = 0; i < 40000; i++)
        {
            double x = (rng.NextDouble() * 1400) - 700;
            double expected = Math.Exp(x);
            Assert.Equal(expected, PortableMath.Exp(x), expected * 1e-14);
        }
    }

    [Fact]
    public void Exp_SpecialValues_FollowIeeeConventions()
    {
        Assert.Equal(1.0, PortableMath.Exp(0.0));
        Assert.Equal(0.0, PortableMath.Exp(-1000));
        Assert.Equal(double.PositiveInfinity, PortableMath.Exp(1000));
        Assert.True(double.IsNaN(PortableMath.Exp(double.NaN)));
        Assert.Equal(Math.E, PortableMath.Exp(1.0), 1e-15);
        Assert.InRange(PortableMath.Exp(-740), double.Epsilon, 1e-320);
    }
}
