using System.Buffers.Binary;

namespace FedRebasin.Tensors.Tests;

public sealed class TensorEntryTests
{
    [Fact]
    public void FromBytes_WrongByteCount_ThrowsArgumentExceptionNamingSizes()
    {
        var ex = Assert.Throws<ArgumentException>(() => TensorEntry.FromBytes("w", SafeTensorDType.F32, [2, 3], new byte[23]));
        Assert.Contains("shape [2,3] (6 elements of F32 = 24 bytes) but 23 bytes were given", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("")]
    [InlineData("a\0b")]
    [InlineData("__metadata__")]
    public void FromBytes_InvalidName_ThrowsArgumentException(string name)
    {
        Assert.Throws<ArgumentException>(() => TensorEntry.FromBytes(name, SafeTensorDType.U8, [1], [0]));
    }

    [Fact]
    public void FromBytes_NameWithLoneSurrogate_ThrowsArgumentException()
    {
        string name = "lone" + (char)0xD800 + "surrogate";
        var ex = Assert.Throws<ArgumentException>(() => TensorEntry.FromBytes(name, SafeTensorDType.U8, [1], [0]));
        Assert.Contains("lone surrogate", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void FromBytes_NegativeDimension_ThrowsArgumentException()
    {
        Assert.Throws<ArgumentException>(() => TensorEntry.FromBytes("w", SafeTensorDType.U8, [-1], []));
    }

    [Fact]
    public void FromBytes_OverflowingShape_ThrowsArgumentException()
    {
        Assert.Throws<ArgumentException>(() => TensorEntry.FromBytes("w", SafeTensorDType.U8, [long.MaxValue, 2], []));
        Assert.Throws<ArgumentException>(() => TensorEntry.FromBytes("w", SafeTensorDType.F64, [1L << 61], []));
    }

    [Fact]
    public void FromBytes_UndefinedDType_ThrowsArgumentOutOfRange()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => TensorEntry.FromBytes("w", (SafeTensorDType)99, [1], [0]));
    }

    [Fact]
    public void FromBytes_CallerMutatesSource_EntryUnchanged()
    {
        byte[] source = [1, 2, 3];
        long[] shape = [3];
        var entry = TensorEntry.FromBytes("w", SafeTensorDType.U8, shape, source);
        source[0] = 99;
        shape[0] = 1;

        Assert.Equal([1L, 2L, 3L], entry.ToInt64Array());
        Assert.Equal([3L], entry.Shape);
        Assert.IsNotType<long[]>(entry.Shape);
        entry.GetShapeArray()[0] = 5;
        Assert.Equal([3L], entry.Shape);
    }

    [Fact]
    public void FromFloat32_ValueCountMismatch_ThrowsArgumentException()
    {
        var ex = Assert.Throws<ArgumentException>(() => TensorEntry.FromFloat32("w", [2, 2], [1f, 2f, 3f]));
        Assert.Contains("(4 elements) but 3 values were given", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(SafeTensorDType.I32)]
    [InlineData(SafeTensorDType.U8)]
    [InlineData(SafeTensorDType.F8_E4M3)]
    [InlineData(SafeTensorDType.BOOL)]
    public void FromFloat32_NonFloatTarget_ThrowsArgumentException(SafeTensorDType dtype)
    {
        Assert.Throws<ArgumentException>(() => TensorEntry.FromFloat32("w", [1], [1f], dtype));
        Assert.Throws<ArgumentException>(() => TensorEntry.FromFloat64("w", [1], [1d], dtype));
    }

    [Fact]
    public void FromFloat32_StoredLittleEndian()
    {
        var entry = TensorEntry.FromFloat32("w", [2], [1f, -2f]);
        Assert.Equal([0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0xC0], entry.Data.ToArray());
        Assert.Equal(SafeTensorDType.F32, entry.DType);
        Assert.Equal(8, entry.ByteCount);
    }

    [Fact]
    public void FromFloat64_EachTarget_RoundsOnce()
    {
        double[] values = [1.0 + Math.Pow(2, -8) + Math.Pow(2, -30), 0.1];
        Assert.Equal([(float)values[0], 0.1f], TensorEntry.FromFloat64("w", [2], values, SafeTensorDType.F32).ToFloat32Array());
        Assert.Equal(values, TensorEntry.FromFloat64("w", [2], values).ToFloat64Array());
        var bf16 = TensorEntry.FromFloat64("w", [2], values, SafeTensorDType.BF16);
        Assert.Equal(0x3F81, BinaryPrimitives.ReadUInt16LittleEndian(bf16.Data.Span));
        var half = TensorEntry.FromFloat64("w", [2], values, SafeTensorDType.F16);
        Assert.Equal((float)(Half)0.1, half.ToFloat32Array()[1]);
    }

    [Fact]
    public void FromInt64AndFromInt32_StoredLittleEndian()
    {
        var i64 = TensorEntry.FromInt64("w", [1], [0x0102030405060708]);
        var i32 = TensorEntry.FromInt32("w", [1], [-2]);
        Assert.Equal([8, 7, 6, 5, 4, 3, 2, 1], i64.Data.ToArray());
        Assert.Equal([0xFE, 0xFF, 0xFF, 0xFF], i32.Data.ToArray());
    }

    public static TheoryData<SafeTensorDType, byte[], long[]> IntegerCases() => new()
    {
        { SafeTensorDType.BOOL, [0, 1, 7], [0, 1, 1] },
        { SafeTensorDType.U8, [0, 1, 255], [0, 1, 255] },
        { SafeTensorDType.I8, [0, 1, 255, 128], [0, 1, -1, -128] },
        { SafeTensorDType.U16, [0xFF, 0xFF, 0x01, 0x00], [65535, 1] },
        { SafeTensorDType.I16, [0xFF, 0xFF, 0x00, 0x80], [-1, -32768] },
        { SafeTensorDType.U32, [0xFF, 0xFF, 0xFF, 0xFF], [4294967295] },
        { SafeTensorDType.I32, [0xFE, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x80], [-2, int.MinValue] },
        { SafeTensorDType.U64, [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F], [long.MaxValue] },
        { SafeTensorDType.I64, [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF], [-1] },
    };

    [Theory]
    [MemberData(nameof(IntegerCases))]
    public void ToArrays_IntegerAndBoolDTypes_ConvertValues(SafeTensorDType dtype, byte[] data, long[] expected)
    {
        var entry = TensorEntry.FromBytes("w", dtype, [expected.Length], data);
        Assert.Equal(expected, entry.ToInt64Array());
        Assert.Equal(expected.Select(v => (double)v), entry.ToFloat64Array());
        Assert.Equal(expected.Select(v => (float)v), entry.ToFloat32Array());
    }

    [Fact]
    public void ToInt64Array_U64AboveLongMax_ThrowsOverflow()
    {
        var entry = TensorEntry.FromBytes("w", SafeTensorDType.U64, [1], [0, 0, 0, 0, 0, 0, 0, 0x80]);
        Assert.Throws<OverflowException>(() => entry.ToInt64Array());
        Assert.Equal([9223372036854775808d], entry.ToFloat64Array());
    }

    [Fact]
    public void ToInt64Array_FloatTensor_ThrowsNotSupported()
    {
        Assert.Throws<NotSupportedException>(() => TensorEntry.FromFloat32("w", [1], [1f]).ToInt64Array());
    }

    [Fact]
    public void ToFloat32Array_F64_RoundsToNearest()
    {
        var entry = TensorEntry.FromFloat64("w", [3], [0.1, 1e300, -1e-300]);
        float[] result = entry.ToFloat32Array();
        Assert.Equal(0.1f, result[0]);
        Assert.Equal(float.PositiveInfinity, result[1]);
        Assert.Equal(BitConverter.SingleToUInt32Bits(-0f), BitConverter.SingleToUInt32Bits(result[2]));
    }

    [Fact]
    public void ToFloat32Array_F8Types_Decode()
    {
        Assert.Equal([1f, 448f], TensorEntry.FromBytes("w", SafeTensorDType.F8_E4M3, [2], [0x38, 0x7E]).ToFloat32Array());
        Assert.Equal([1f, -2.5f], TensorEntry.FromBytes("w", SafeTensorDType.F8_E5M2, [2], [0x3C, 0xC1]).ToFloat64Array());
    }

    [Fact]
    public void ConvertTo_F32ToF16AndBack_ValuesRoundedOnce()
    {
        var f32 = TensorEntry.FromFloat32("w", [2, 2], [1f, 0.1f, 65504f, 1e6f]);
        var f16 = f32.ConvertTo(SafeTensorDType.F16);

        Assert.Equal(SafeTensorDType.F16, f16.DType);
        Assert.Equal([2L, 2L], f16.Shape);
        Assert.Equal("w", f16.Name);
        Assert.Equal(8, f16.ByteCount);
        Assert.Equal([1f, (float)(Half)0.1f, 65504f, float.PositiveInfinity], f16.ToFloat32Array());
        Assert.Equal(f16.ToFloat32Array(), f16.ConvertTo(SafeTensorDType.F32).ToFloat32Array());
    }

    [Fact]
    public void ConvertTo_SameDType_ReturnsSameInstance()
    {
        var entry = TensorEntry.FromFloat32("w", [1], [1f]);
        Assert.Same(entry, entry.ConvertTo(SafeTensorDType.F32));
    }

    [Fact]
    public void ConvertTo_BF16FromF64_MatchesDirectFactory()
    {
        double[] values = [1.0 + Math.Pow(2, -8) + Math.Pow(2, -30), -3.75, 1e-40];
        var expected = TensorEntry.FromFloat64("w", [3], values, SafeTensorDType.BF16);
        var converted = TensorEntry.FromFloat64("w", [3], values).ConvertTo(SafeTensorDType.BF16);
        Assert.Equal(expected.Data.ToArray(), converted.Data.ToArray());
    }

    [Fact]
    public void ConvertTo_IntegerTargets_RangeChecked()
    {
        var entry = TensorEntry.FromInt64("w", [3], [0, -5, 300]);
        Assert.Equal([0L, -5L, 300L], entry.ConvertTo(SafeTensorDType.I16).ToInt64Array());
        Assert.Equal([0L, 1L, 1L], entry.ConvertTo(SafeTensorDType.BOOL).ToInt64Array());
        Assert.Throws<OverflowException>(() => entry.ConvertTo(SafeTensorDType.I8));
        Assert.Throws<OverflowException>(() => entry.ConvertTo(SafeTensorDType.U32));
        Assert.Equal([0L, 1L], TensorEntry.FromInt32("w", [2], [0, 1]).ConvertTo(SafeTensorDType.U64).ToInt64Array());
        Assert.Equal([-5d, 300d], TensorEntry.FromInt32("w", [2], [-5, 300]).ConvertTo(SafeTensorDType.F64).ToFloat64Array());
    }

    [Fact]
    public void ConvertTo_UnsupportedTargets_ThrowNotSupported()
    {
        var entry = TensorEntry.FromFloat32("w", [1], [1f]);
        Assert.Throws<NotSupportedException>(() => entry.ConvertTo(SafeTensorDType.I32));
        Assert.Throws<NotSupportedException>(() => entry.ConvertTo(SafeTensorDType.F8_E4M3));
    }

    [Fact]
    public void WithName_SharesDataUnderNewName()
    {
        var entry = TensorEntry.FromFloat32("a", [1], [1f]);
        var renamed = entry.WithName("b");
        Assert.Equal("b", renamed.Name);
        Assert.True(entry.Data.Span == renamed.Data.Span);
        Assert.Throws<ArgumentException>(() => entry.WithName(""));
    }

    [Fact]
    public void ToString_ShowsNameDTypeAndShape()
    {
        Assert.Equal("0.weight: F32 [2,3]", TensorEntry.FromFloat32("0.weight", [2, 3], new float[6]).ToString());
    }
}
