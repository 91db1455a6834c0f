using FedRebasin.Tensors;

namespace FedRebasin.Tensors.Tests;

public sealed class NonFiniteScanTests
{
    private static float[] Values(int length)
    {
        var random = new Random(5);
        return [.. Enumerable.Range(0, length).Select(_ => (float)(random.NextDouble() * 2e6 - 1e6))];
    }

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(64)]
    [InlineData(1003)]
    public void Count_Float32_CountsNaNAndInfinitiesAnywhere(int length)
    {
        float[] values = Values(length);
        values[0] = float.MaxValue;
        var positions = new[] { length - 1, length / 2, length / 3 }.Distinct().Where(p => p > 0).ToArray();
        float[] specials = [float.NaN, float.PositiveInfinity, float.NegativeInfinity];
        for (int i = 0; i < positions.Length; i++)
        {
            values[positions[i]] = specials[i];
        }

        var entry = TensorEntry.FromFloat32("w", [length], values);

        Assert.Equal(positions.Length, NonFiniteScan.Count(entry));
    }

    [Theory]
    [InlineData(SafeTensorDType.F64)]
    [InlineData(SafeTensorDType.F16)]
    [InlineData(SafeTensorDType.BF16)]
    public void Count_OtherFloatTypes_CountsNaNAndInfinity(SafeTensorDType dtype)
    {
        float[] values = [1, -2, float.NaN, 3, float.PositiveInfinity, 1e-20f, 0, -0f, 5, 6, 7, 8, 9, 10, 11, 12, 13];
        var entry = dtype == SafeTensorDType.F64
            ? TensorEntry.FromFloat64("w", [values.Length], [.. values.Select(v => (double)v)])
            : TensorEntry.FromFloat32("w", [values.Length], values, dtype);

        Assert.Equal(2, NonFiniteScan.Count(entry));
    }

    [Fact]
    public void Count_FiniteAndIntegerData_Zero()
    {
        Assert.Equal(0, NonFiniteScan.Count(TensorEntry.FromFloat32("w", [100], Values(100))));
        Assert.Equal(0, NonFiniteScan.Count(TensorEntry.FromInt64("n", [3], [-1, long.MaxValue, 0])));
    }
}
