namespace FedRebasin.Tensors.Tests;

public sealed class FloatConversionTests
{
    [Theory]
    [InlineData(1.0f, 0x3C00)]
    [InlineData(-2.5f, 0xC100)]
    [InlineData(65504f, 0x7BFF)]
    [InlineData(0f, 0x0000)]
    [InlineData(-0f, 0x8000)]
    [InlineData(5.9604645e-8f, 0x0001)] // 2^-24, smallest subnormal
    [InlineData(6.0975552e-5f, 0x03FF)] // largest subnormal
    [InlineData(6.1035156e-5f, 0x0400)] // 2^-14, smallest normal
    [InlineData(float.PositiveInfinity, 0x7C00)]
    [InlineData(float.NegativeInfinity, 0xFC00)]
    public void Half_KnownValues_ExactBothWays(float value, int bits)
    {
        Assert.Equal((ushort)bits, FloatConversions.SingleToHalfBits(value));
        Assert.Equal(BitConverter.SingleToUInt32Bits(value), BitConverter.SingleToUInt32Bits(FloatConversions.HalfBitsToSingle((ushort)bits)));
    }

    [Theory]
    [InlineData(65520f, 0x7C00)] // halfway between 65504 and 65536: ties to even overflow to infinity
    [InlineData(65519f, 0x7BFF)]
    [InlineData(2.9802322e-8f, 0x0000)] // 2^-25: halfway between 0 and the smallest subnormal, ties to even
    [InlineData(1.00048828125f, 0x3C00)] // 1 + 2^-11: halfway, ties to even (down)
    [InlineData(1.00146484375f, 0x3C02)] // 1 + 3 * 2^-11: halfway, ties to even (up)
    public void Half_RoundingCases_RoundToNearestEven(float value, int bits)
    {
        Assert.Equal((ushort)bits, FloatConversions.SingleToHalfBits(value));
    }

    [Theory]
    [InlineData(1.0f, 0x3F80)]
    [InlineData(-2.5f, 0xC020)]
    [InlineData(0f, 0x0000)]
    [InlineData(-0f, 0x8000)]
    [InlineData(float.PositiveInfinity, 0x7F80)]
    [InlineData(float.NegativeInfinity, 0xFF80)]
    [InlineData(9.1835496e-41f, 0x0001)] // 2^-133, smallest bfloat16 subnormal
    [InlineData(1.1754944e-38f, 0x0080)] // 2^-126, smallest normal
    [InlineData(3.3895314e38f, 0x7F7F)] // largest finite bfloat16
    public void BFloat16_KnownValues_ExactBothWays(float value, int bits)
    {
        Assert.Equal((ushort)bits, FloatConversions.SingleToBFloat16Bits(value));
        Assert.Equal(BitConverter.SingleToUInt32Bits(value), BitConverter.SingleToUInt32Bits(FloatConversions.BFloat16BitsToSingle((ushort)bits)));
    }

    [Theory]
    [InlineData(0x3F808000u, 0x3F80)] // 1 + 2^-8: exactly halfway, ties to even (down)
    [InlineData(0x3F818000u, 0x3F82)] // 1 + 3 * 2^-8: exactly halfway, ties to even (up)
    [InlineData(0x3F808001u, 0x3F81)] // just above halfway: up
    [InlineData(0x3F807FFFu, 0x3F80)] // just below halfway: down
    [InlineData(0xBF818000u, 0xBF82)] // negative halfway, ties to even
    [InlineData(0x7F7FFFFFu, 0x7F80)] // float.MaxValue rounds up to infinity
    [InlineData(0x7F7F7FFFu, 0x7F7F)] // just below the overflow threshold
    [InlineData(0x00008000u, 0x0000)] // subnormal halfway, ties to even (down)
    [InlineData(0x00018000u, 0x0002)] // subnormal halfway, ties to even (up)
    public void BFloat16_FromSingleBits_RoundsToNearestEven(uint singleBits, int expected)
    {
        Assert.Equal((ushort)expected, FloatConversions.SingleToBFloat16Bits(BitConverter.UInt32BitsToSingle(singleBits)));
    }

    [Fact]
    public void BFloat16_FromDouble_AvoidsDoubleRounding()
    {
        // 1 + 2^-8 + 2^-30 rounds to 1 + 2^-8 in float (a bfloat16 tie), but the true value is above the tie.
        double value = 1.0 + Math.Pow(2, -8) + Math.Pow(2, -30);
        Assert.Equal(0x3F80, FloatConversions.SingleToBFloat16Bits((float)value));
        Assert.Equal(0x3F81, FloatConversions.DoubleToBFloat16Bits(value));
        Assert.Equal(0x3F80, FloatConversions.DoubleToBFloat16Bits(1.0 + Math.Pow(2, -8)));
        Assert.Equal(0xBF81, FloatConversions.DoubleToBFloat16Bits(-value));
        Assert.Equal(0x7F80, FloatConversions.DoubleToBFloat16Bits(1e300));
        Assert.Equal(0xFF80, FloatConversions.DoubleToBFloat16Bits(-1e300));
        Assert.Equal(0x0000, FloatConversions.DoubleToBFloat16Bits(1e-300));
        Assert.Equal(0x8000, FloatConversions.DoubleToBFloat16Bits(-1e-300));
        Assert.True(float.IsNaN(FloatConversions.BFloat16BitsToSingle(FloatConversions.DoubleToBFloat16Bits(double.NaN))));
    }

    [Fact]
    public void BFloat16_FromDouble_MatchesExactRoundingOnRandomInputs()
    {
        var random = new Random(42);
        for (int i = 0; i < 20_000; i++)
        {
            double value = BitConverter.Int64BitsToDouble(random.NextInt64()) is var d && double.IsFinite(d) && Math.Abs(d) < 1e38 && Math.Abs(d) > 1e-37 ? d : 1.0 + random.NextDouble();
            ushort bits = FloatConversions.DoubleToBFloat16Bits(value);

            // The result must be one of the two neighbours and the nearer (ties to even).
            double result = FloatConversions.BFloat16BitsToSingle(bits);
            double other = FloatConversions.BFloat16BitsToSingle((ushort)(Math.Abs(result) > Math.Abs(value) ? bits - 1 : bits + 1));
            double errorResult = Math.Abs(result - value);
            double errorOther = Math.Abs(other - value);
            Assert.True(
                errorResult < errorOther || (errorResult == errorOther && (bits & 1) == 0),
                $"{value:R} -> 0x{bits:X4} ({result:R}), neighbour {other:R}");
        }
    }

    [Fact]
    public void NaN_ThroughHalfAndBFloat16_StaysNaN()
    {
        foreach (uint nanBits in new uint[] { 0x7FC00000, 0xFFC00000, 0x7F800001, 0x7FBFFFFF, 0xFF800001 })
        {
            float nan = BitConverter.UInt32BitsToSingle(nanBits);
            float viaHalf = FloatConversions.HalfBitsToSingle(FloatConversions.SingleToHalfBits(nan));
            float viaBf16 = FloatConversions.BFloat16BitsToSingle(FloatConversions.SingleToBFloat16Bits(nan));
            Assert.True(float.IsNaN(viaHalf), $"0x{nanBits:X8} via F16");
            Assert.True(float.IsNaN(viaBf16), $"0x{nanBits:X8} via BF16");
            Assert.Equal(nanBits >> 31, BitConverter.SingleToUInt32Bits(viaBf16) >> 31);
        }
    }

    [Fact]
    public void HalfAndBFloat16_EveryBitPattern_RoundTripsThroughSingle()
    {
        for (int bits = 0; bits <= ushort.MaxValue; bits++)
        {
            float half = FloatConversions.HalfBitsToSingle((ushort)bits);
            float bf16 = FloatConversions.BFloat16BitsToSingle((ushort)bits);
            if (float.IsNaN(half))
            {
                Assert.True(float.IsNaN(FloatConversions.HalfBitsToSingle(FloatConversions.SingleToHalfBits(half))));
            }
            else
            {
                Assert.Equal((ushort)bits, FloatConversions.SingleToHalfBits(half));
            }

            if (float.IsNaN(bf16))
            {
                Assert.True(float.IsNaN(FloatConversions.BFloat16BitsToSingle(FloatConversions.SingleToBFloat16Bits(bf16))));
            }
            else
            {
                Assert.Equal((ushort)bits, FloatConversions.SingleToBFloat16Bits(bf16));
                Assert.Equal((ushort)bits, FloatConversions.DoubleToBFloat16Bits(bf16));
            }
        }
    }

    [Theory]
    [InlineData(0x38, 1.0f)]
    [InlineData(0xB8, -1.0f)]
    [InlineData(0x7E, 448f)] // largest finite
    [InlineData(0x01, 0.001953125f)] // 2^-9, smallest subnormal
    [InlineData(0x08, 0.015625f)] // 2^-6, smallest normal
    [InlineData(0x00, 0f)]
    [InlineData(0x42, 2.5f)] // exponent 8, mantissa 2: 1.25 * 2
    [InlineData(0x44, 3f)]
    public void Float8E4M3_KnownValues_Decode(int bits, float expected)
    {
        Assert.Equal(expected, FloatConversions.Float8E4M3ToSingle((byte)bits));
    }

    [Fact]
    public void Float8E4M3_AllOnes_IsNaNAndHasNoInfinity()
    {
        Assert.True(float.IsNaN(FloatConversions.Float8E4M3ToSingle(0x7F)));
        Assert.True(float.IsNaN(FloatConversions.Float8E4M3ToSingle(0xFF)));
        for (int bits = 0; bits < 256; bits++)
        {
            Assert.False(float.IsInfinity(FloatConversions.Float8E4M3ToSingle((byte)bits)));
        }
    }

    [Theory]
    [InlineData(0x3C, 1.0f)]
    [InlineData(0xC1, -2.5f)]
    [InlineData(0x7B, 57344f)]
    [InlineData(0x01, 1.5258789e-5f)] // 2^-16
    [InlineData(0x7C, float.PositiveInfinity)]
    public void Float8E5M2_KnownValues_Decode(int bits, float expected)
    {
        Assert.Equal(expected, FloatConversions.Float8E5M2ToSingle((byte)bits));
    }

    [Fact]
    public void TensorEntry_HalfAndBFloat16Storage_RoundTripKnownValues()
    {
        float[] values = [1f, -2.5f, 65504f, 5.9604645e-8f, float.PositiveInfinity, float.NegativeInfinity, float.NaN, -0f];
        var half = TensorEntry.FromFloat32("h", [values.Length], values, SafeTensorDType.F16);
        var bf16 = TensorEntry.FromFloat32("b", [values.Length], values, SafeTensorDType.BF16);

        Assert.Equal(values.Length * 2, half.ByteCount);
        Assert.Equal(values.Length * 2, bf16.ByteCount);
        Assert.Equal(values, half.ToFloat32Array());
        Assert.Equal(BitConverter.SingleToUInt32Bits(-0f), BitConverter.SingleToUInt32Bits(half.ToFloat32Array()[^1]));

        float[] bfExpected = [1f, -2.5f, 65536f, 5.9604645e-8f, float.PositiveInfinity, float.NegativeInfinity, float.NaN, -0f];
        Assert.Equal(bfExpected, bf16.ToFloat32Array());
        Assert.Equal(bfExpected.Select(v => (double)v), bf16.ToFloat64Array());
    }
}
