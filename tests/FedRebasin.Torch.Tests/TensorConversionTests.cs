using FedRebasin.Tensors;
using TorchSharp;
using static TorchSharp.torch;

namespace FedRebasin.Torch.Tests;

public class TensorConversionTests
{
    [Theory]
    [InlineData(ScalarType.Float32)]
    [InlineData(ScalarType.Float64)]
    [InlineData(ScalarType.Float16)]
    [InlineData(ScalarType.BFloat16)]
    [InlineData(ScalarType.Int64)]
    [InlineData(ScalarType.Int32)]
    [InlineData(ScalarType.Byte)]
    [InlineData(ScalarType.Bool)]
    public void ToEntryThenToTensor_EveryDType_RoundTripsExactly(ScalarType type)
    {
        // Arrange
        using var scope = NewDisposeScope();
        var source = (randn(3, 4, 5) * 7).to_type(type);

        // Act
        var entry = TensorConversion.ToEntry("t", source);
        var back = TensorConversion.ToTensor(entry);

        // Assert
        Assert.Equal(TensorConversion.ToSafeTensorDType(type), entry.DType);
        Assert.Equal([3L, 4, 5], entry.Shape);
        Assert.Equal(type, back.dtype);
        Assert.True(back.equal(source).all().item<bool>());
    }

    [Fact]
    public void ToEntry_NonContiguousTensor_StoresLogicalOrder()
    {
        using var scope = NewDisposeScope();
        var source = arange(6, ScalarType.Float32).reshape(2, 3).t();

        var entry = TensorConversion.ToEntry("t", source);

        Assert.Equal([0f, 3, 1, 4, 2, 5], entry.ToFloat32Array());
    }

    [Fact]
    public void ToTensor_HalfEntryIntoFloatModel_Converts()
    {
        using var scope = NewDisposeScope();
        var entry = TensorEntry.FromFloat32("w", [2], [1.5f, -2.25f], SafeTensorDType.F16);

        var tensor = TensorConversion.ToTensor(entry, ScalarType.Float32);

        Assert.Equal(ScalarType.Float32, tensor.dtype);
        Assert.Equal([1.5f, -2.25f], tensor.data<float>().ToArray());
    }

    [Fact]
    public void ToEntry_ScalarTensor_HasEmptyShape()
    {
        using var scope = NewDisposeScope();
        var entry = TensorConversion.ToEntry("n", tensor(42L));

        Assert.Empty(entry.Shape);
        Assert.Equal([42L], entry.ToInt64Array());
    }
}
