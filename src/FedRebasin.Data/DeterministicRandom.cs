namespace FedRebasin.Data;

/// <summary>
/// A small pseudo-random generator whose output is identical on every machine, runtime and .NET version:
/// xoshiro256** seeded through SplitMix64, with integer, uniform, normal, gamma and Dirichlet draws built only
/// from IEEE-754 basic arithmetic and <see cref="Math.Sqrt"/> (logarithms and exponentials are computed by
/// <see cref="PortableMath"/>, not the platform C library). Not thread-safe; not cryptographic.
/// </summary>
public sealed class DeterministicRandom
{
    private ulong _s0;
    private ulong _s1;
    private ulong _s2;
    private ulong _s3;

    /// <summary>Creates a generator whose whole sequence is determined by <paramref name="seed"/>.</summary>
    public DeterministicRandom(long seed)
    {
        ulong sm = unchecked((ulong)seed);
        _s0 = SplitMix64(ref sm);
        _s1 = SplitMix64(ref sm);
        _s2 = SplitMix64(ref sm);
        _s3 = SplitMix64(ref sm);
    }

    /// <summary>Creates a generator for sub-stream <paramref name="stream"/> of <paramref name="seed"/>; different streams are independent.</summary>
    public DeterministicRandom(long seed, long stream)
        : this(unchecked((long)Mix(Mix((ulong)seed) ^ (0xD1B54A32D192ED03UL * (ulong)(stream + 1)))))
    {
    }

    /// <summary>One step of SplitMix64: advances <paramref name="state"/> and returns the next output.</summary>
    public static ulong SplitMix64(ref ulong state)
    {
        state = unchecked(state + 0x9E3779B97F4A7C15UL);
        return Mix(state);
    }

    /// <summary>Next 64 uniformly distributed bits (xoshiro256**).</summary>
    public ulong NextUInt64()
    {
        ulong result = unchecked(ulong.RotateLeft(_s1 * 5, 7) * 9);
        ulong t = _s1 << 17;
        _s2 ^= _s0;
        _s3 ^= _s1;
        _s1 ^= _s2;
        _s0 ^= _s3;
        _s2 ^= t;
        _s3 = ulong.RotateLeft(_s3, 45);
        return result;
    }

    /// <summary>Uniform integer in <c>[0, maxExclusive)</c>, without modulo bias (Lemire's method).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxExclusive"/> is not positive.</exception>
    public int NextInt(int maxExclusive)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxExclusive);
        ulong n = (ulong)maxExclusive;
        ulong high = Math.BigMul(NextUInt64(), n, out ulong low);
        if (low < n)
        {
            ulong threshold = unchecked(0UL - n) % n;
            while (low < threshold)
            {
                high = Math.BigMul(NextUInt64(), n, out low);
            }
        }

        return (int)high;
    }

    /// <summary>Uniform double in <c>[0, 1)</c> with 53 random bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Uniform double in <c>(0, 1]</c> (never zero, so its logarithm is finite).</summary>
    public double NextDoubleNonZero() => ((NextUInt64() >> 11) + 1) * (1.0 / (1UL << 53));

    /// <summary>Standard normal draw (Marsaglia's polar method).</summary>
    public double NextNormal()
    {
        while (true)
        {
            double u = (2.0 * NextDouble()) - 1.0;
            double v = (2.0 * NextDouble()) - 1.0;
            double s = (u * u) + (v * v);
            if (s > 0.0 && s < 1.0)
            {
                return u * Math.Sqrt(-2.0 * PortableMath.Log(s) / s);
            }
        }
    }

    /// <summary>
    /// Natural logarithm of a Gamma(<paramref name="shape"/>, 1) draw, by Marsaglia and Tsang's method, with the
    /// <c>Gamma(a) = Gamma(a + 1) * U^(1/a)</c> boost for shapes below 1. Working in log space keeps tiny shapes
    /// (where the draw itself underflows to 0) usable.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="shape"/> is not finite and positive.</exception>
    public double NextLogGamma(double shape)
    {
        if (!double.IsFinite(shape) || shape <= 0.0)
        {
            throw new ArgumentOutOfRangeException(nameof(shape), shape, "Gamma shape must be finite and positive.");
        }

        if (shape < 1.0)
        {
            double boosted = NextLogGamma(shape + 1.0);
            return boosted + (PortableMath.Log(NextDoubleNonZero()) / shape);
        }

        double d = shape - (1.0 / 3.0);
        double c = 1.0 / Math.Sqrt(9.0 * d);
        while (true)
        {
            double x;
            double v;
            do
            {
                x = NextNormal();
                v = 1.0 + (c * x);
            }
            while (v <= 0.0);

            v = v * v * v;
            double u = NextDoubleNonZero();
            double x2 = x * x;
            if (u < 1.0 - (0.0331 * x2 * x2)
                || PortableMath.Log(u) < (0.5 * x2) + (d * (1.0 - v + PortableMath.Log(v))))
            {
                return PortableMath.Log(d) + PortableMath.Log(v);
            }
        }
    }

    /// <summary>A Gamma(<paramref name="shape"/>, 1) draw (may underflow to 0 for very small shapes; see <see cref="NextLogGamma"/>).</summary>
    public double NextGamma(double shape) => PortableMath.Exp(NextLogGamma(shape));

    /// <summary>
    /// Fills <paramref name="destination"/> with a draw from the symmetric Dirichlet(<paramref name="alpha"/>, ..., <paramref name="alpha"/>)
    /// distribution: non-negative values summing to 1 (up to rounding), at least one of them positive.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="alpha"/> is not finite and positive.</exception>
    public void NextDirichlet(double alpha, Span<double> destination)
    {
        if (destination.IsEmpty)
        {
            return;
        }

        double max = double.NegativeInfinity;
        for (int i = 0; i < destination.Length; i++)
        {
            destination[i] = NextLogGamma(alpha);
            max = Math.Max(max, destination[i]);
        }

        double sum = 0.0;
        for (int i = 0; i < destination.Length; i++)
        {
            destination[i] = PortableMath.Exp(destination[i] - max);
            sum += destination[i];
        }

        for (int i = 0; i < destination.Length; i++)
        {
            destination[i] /= sum;
        }
    }

    /// <summary>Shuffles <paramref name="items"/> in place (Fisher–Yates); every permutation is equally likely.</summary>
    public void Shuffle<T>(Span<T> items)
    {
        for (int i = items.Length - 1; i > 0; i--)
        {
            int j = NextInt(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }

    private static ulong Mix(ulong z)
    {
        unchecked
        {
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            return z ^ (z >> 31);
        }
    }
}
