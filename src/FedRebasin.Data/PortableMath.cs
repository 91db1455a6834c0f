namespace FedRebasin.Data;

/// <summary>
/// Natural logarithm and exponential computed with IEEE-754 basic arithmetic only, so that results are
/// bit-identical on every platform (the C library's <c>log</c>/<c>exp</c> behind <see cref="Math.Log(double)"/>
/// may differ in the last bit between operating systems). Accurate to a few units in the last place.
/// </summary>
public static class PortableMath
{
    private const double Ln2Hi = 6.93147180369123816490e-01;
    private const double Ln2Lo = 1.90821492927058770002e-10;
    private const double InvLn2 = 1.44269504088896338700e+00;
    private const double Sqrt2 = 1.41421356237309504880;
    private const double SmallestNormal = 2.2250738585072014e-308;

    /// <summary>Natural logarithm; NaN for negative or NaN input, -infinity for 0, +infinity for +infinity.</summary>
    public static double Log(double x)
    {
        if (double.IsNaN(x) || x < 0.0)
        {
            return double.NaN;
        }

        if (x == 0.0)
        {
            return double.NegativeInfinity;
        }

        if (double.IsPositiveInfinity(x))
        {
            return x;
        }

        int exponent = 0;
        if (x < SmallestNormal)
        {
            // Subnormal: scale into the normal range first (exact).
            x *= 18014398509481984.0; // 2^54
            exponent = -54;
        }

        long bits = BitConverter.DoubleToInt64Bits(x);
        exponent += (int)((bits >> 52) & 0x7FF) - 1023;
        double m = BitConverter.Int64BitsToDouble((bits & 0x000FFFFFFFFFFFFFL) | 0x3FF0000000000000L);
        if (m > Sqrt2)
        {
            m *= 0.5;
            exponent++;
        }

        // log(m) = 2 atanh(s), s = (m - 1) / (m + 1), |s| <= 0.1716: the odd series converges fast.
        double s = (m - 1.0) / (m + 1.0);
        double s2 = s * s;
        double p = 1.0 / 27.0;
        for (int k = 12; k >= 0; k--)
        {
            p = (1.0 / ((2 * k) + 1)) + (s2 * p);
        }

        double e = exponent;
        return (e * Ln2Hi) + ((2.0 * s * p) + (e * Ln2Lo));
    }

    /// <summary>e raised to <paramref name="x"/>; 0 for large negative, +infinity for large positive input.</summary>
    public static double Exp(double x)
    {
        if (double.IsNaN(x))
        {
            return x;
        }

        if (x > 709.782712893384)
        {
            return double.PositiveInfinity;
        }

        if (x < -745.2)
        {
            return 0.0;
        }

        double kd = Math.Round(x * InvLn2, MidpointRounding.ToEven);
        int k = (int)kd;
        double r = (x - (kd * Ln2Hi)) - (kd * Ln2Lo);

        // Taylor series of e^r for |r| <= 0.35, Horner form; 20 terms is far below double precision.
        double p = 1.0;
        for (int n = 20; n >= 1; n--)
        {
            p = 1.0 + (r * p / n);
        }

        return Math.ScaleB(p, k);
    }
}
