namespace FedRebasin.Tensors;

/// <summary>
/// Bit-level conversions between <see cref="float"/>/<see cref="double"/> and the reduced-precision formats that
/// safetensors stores (F16, BF16, F8). Narrowing conversions round to nearest, ties to even; NaN stays NaN
/// (sign kept, made quiet) and infinities stay infinite.
/// </summary>
public static class FloatConversions
{
    /// <summary>Rounds <paramref name="value"/> to bfloat16 (round to nearest, ties to even) and returns its bits.</summary>
    public static ushort SingleToBFloat16Bits(float value)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        if (float.IsNaN(value))
        {
            // Keep sign and the top mantissa bits; force the quiet bit so the result cannot become an infinity.
            return (ushort)((bits >> 16) | 0x0040);
        }

        uint roundingBias = 0x7FFFu + ((bits >> 16) & 1u);
        return (ushort)((bits + roundingBias) >> 16);
    }

    /// <summary>
    /// Rounds <paramref name="value"/> directly to bfloat16 (round to nearest, ties to even, no double rounding
    /// through <see cref="float"/>) and returns its bits.
    /// </summary>
    public static ushort DoubleToBFloat16Bits(double value)
    {
        if (double.IsNaN(value))
        {
            return SingleToBFloat16Bits((float)value);
        }

        float nearest = (float)value;
        if (float.IsInfinity(nearest))
        {
            // Finite doubles past float.MaxValue are far beyond the bfloat16 overflow threshold too.
            return (ushort)(double.IsNegative(value) ? 0xFF80 : 0x7F80);
        }

        double back = nearest;
        if (back != value)
        {
            // Round to odd in float (truncate toward zero, then set the sticky low bit), which makes the second
            // rounding to bfloat16's 8-bit significand exact: float keeps 16 more bits than bfloat16.
            uint bits = BitConverter.SingleToUInt32Bits(nearest);
            if (Math.Abs(back) > Math.Abs(value))
            {
                bits -= 1;
            }

            nearest = BitConverter.UInt32BitsToSingle(bits | 1u);
        }

        return SingleToBFloat16Bits(nearest);
    }

    /// <summary>Widens bfloat16 bits to <see cref="float"/> (exact).</summary>
    public static float BFloat16BitsToSingle(ushort bits) => BitConverter.UInt32BitsToSingle((uint)bits << 16);

    /// <summary>Rounds <paramref name="value"/> to IEEE binary16 (round to nearest, ties to even) and returns its bits.</summary>
    public static ushort SingleToHalfBits(float value) => BitConverter.HalfToUInt16Bits((Half)value);

    /// <summary>Rounds <paramref name="value"/> directly to IEEE binary16 (round to nearest, ties to even) and returns its bits.</summary>
    public static ushort DoubleToHalfBits(double value) => BitConverter.HalfToUInt16Bits((Half)value);

    /// <summary>Widens IEEE binary16 bits to <see cref="float"/> (exact).</summary>
    public static float HalfBitsToSingle(ushort bits) => (float)BitConverter.UInt16BitsToHalf(bits);

    /// <summary>
    /// Decodes an F8_E4M3 (<c>float8_e4m3fn</c>) byte: bias 7, subnormals when the exponent field is 0,
    /// no infinities, NaN when exponent and mantissa bits are all ones. Exact.
    /// </summary>
    public static float Float8E4M3ToSingle(byte bits)
    {
        int exponent = (bits >> 3) & 0xF;
        int mantissa = bits & 0x7;
        bool negative = (bits & 0x80) != 0;
        if (exponent == 0xF && mantissa == 0x7)
        {
            return negative ? -float.NaN : float.NaN;
        }

        float magnitude = exponent == 0
            ? float.ScaleB(mantissa, -9)
            : float.ScaleB(8 + mantissa, exponent - 10);
        return negative ? -magnitude : magnitude;
    }

    /// <summary>Decodes an F8_E5M2 byte, which is the upper byte of an IEEE binary16. Exact.</summary>
    public static float Float8E5M2ToSingle(byte bits) => HalfBitsToSingle((ushort)(bits << 8));
}
