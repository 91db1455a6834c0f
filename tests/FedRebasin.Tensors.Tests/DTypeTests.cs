namespace FedRebasin.Tensors.Tests;

public sealed class DTypeTests
{
    [Theory]
    [InlineData(SafeTensorDType.BOOL, "BOOL", 1)]
    [InlineData(SafeTensorDType.U8, "U8", 1)]
    [InlineData(SafeTensorDType.I8, "I8", 1)]
    [InlineData(SafeTensorDType.U16, "U16", 2)]
    [InlineData(SafeTensorDType.I16, "I16", 2)]
    [InlineData(SafeTensorDType.U32, "U32", 4)]
    [InlineData(SafeTensorDType.I32, "I32", 4)]
    [InlineData(SafeTensorDType.U64, "U64", 8)]
    [InlineData(SafeTensorDType.I64, "I64", 8)]
    [InlineData(SafeTensorDType.F16, "F16", 2)]
    [InlineData(SafeTensorDType.BF16, "BF16", 2)]
    [InlineData(SafeTensorDType.F32, "F32", 4)]
    [InlineData(SafeTensorDType.F64, "F64", 8)]
    [InlineData(SafeTensorDType.F8_E4M3, "F8_E4M3", 1)]
    [InlineData(SafeTensorDType.F8_E5M2, "F8_E5M2", 1)]
    public void SpecStringAndSize_EachDType_MatchSpec(SafeTensorDType dtype, string spec, int size)
    {
        Assert.Equal(spec, SafeTensorDTypes.ToSpecString(dtype));
        Assert.Equal(dtype, SafeTensorDTypes.Parse(spec));
        Assert.Equal(size, SafeTensorDTypes.SizeInBytes(dtype));
    }

    [Fact]
    public void All_ListsEveryEnumMember()
    {
        Assert.Equal(Enum.GetValues<SafeTensorDType>(), SafeTensorDTypes.All);
        Assert.Equal(15, SafeTensorDTypes.All.Count);
    }

    [Theory]
    [InlineData("f32")]
    [InlineData("F33")]
    [InlineData(" F32")]
    [InlineData("")]
    public void Parse_UnknownOrWrongCase_ThrowsFormatException(string text)
    {
        Assert.Throws<FormatException>(() => SafeTensorDTypes.Parse(text));
        Assert.False(SafeTensorDTypes.TryParse(text, out _));
    }

    [Fact]
    public void SizeInBytes_UndefinedValue_Throws()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => SafeTensorDTypes.SizeInBytes((SafeTensorDType)99));
        Assert.Throws<ArgumentOutOfRangeException>(() => SafeTensorDTypes.ToSpecString((SafeTensorDType)99));
    }

    [Fact]
    public void Limits_DefaultsAndValidation()
    {
        var limits = SafeTensorsLimits.Default;
        Assert.Equal(100_000_000, limits.MaxHeaderBytes);
        Assert.Equal(1_000_000, limits.MaxTensorCount);
        Assert.Equal(64L << 30, limits.MaxFileBytes);
        Assert.Equal(16, limits.MaxDimensions);
        Assert.Throws<ArgumentOutOfRangeException>(() => new SafeTensorsLimits { MaxHeaderBytes = 0 });
        Assert.Throws<ArgumentOutOfRangeException>(() => new SafeTensorsLimits { MaxDimensions = -1 });
        Assert.Equal(5, (limits with { MaxTensorCount = 5 }).MaxTensorCount);
    }
}
