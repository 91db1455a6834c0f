using FedRebasin.Merging.Interpolation;
using TorchSharp;
using static TorchSharp.torch;

namespace FedRebasin.Merging.Tests.Interpolation;

public sealed class StateBlendTests
{
    [Fact]
    public void Lerp_AlphaHalf_EqualsAverageAndTakesIntegersFromA()
    {
        // Arrange
        using var scope = NewDisposeScope();
        var (a, b) = States();

        // Act
        var blended = StateBlend.Lerp(a, b, 0.5);

        // Assert
        Assert.Equal(a.Keys, blended.Keys);
        Assert.True(blended["w"].allclose(a["w"].add(b["w"]).div(2), rtol: 0, atol: 1e-6));
        Assert.True(blended["b"].allclose(a["b"].add(b["b"]).div(2), rtol: 0, atol: 1e-6));
        Assert.Equal(ScalarType.Int64, blended["n"].dtype);
        Assert.Equal(7L, blended["n"].item<long>());
    }

    [Fact]
    public void Lerp_Endpoints_AreExactCopies()
    {
        // Arrange
        using var scope = NewDisposeScope();
        var (a, b) = States();

        // Act
        var atZero = StateBlend.Lerp(a, b, 0);
        var atOne = StateBlend.Lerp(a, b, 1);

        // Assert
        Assert.True(atZero["w"].equal(a["w"]).all().item<bool>());
        Assert.True(atOne["w"].equal(b["w"]).all().item<bool>());
        Assert.Equal(7L, atOne["n"].item<long>());
    }

    [Fact]
    public void Lerp_Result_IsNewTensorsWithoutGradients()
    {
        // Arrange
        using var scope = NewDisposeScope();
        var (a, b) = States();
        a["w"] = a["w"].requires_grad_(true);
        var original = a["w"].detach().clone();

        // Act
        var blended = StateBlend.Lerp(a, b, 0);
        blended["w"].add_(100);

        // Assert
        Assert.False(blended["w"].requires_grad);
        Assert.True(a["w"].detach().equal(original).all().item<bool>());
    }

    [Fact]
    public void Lerp_MismatchedShape_ThrowsNamingTensor()
    {
        // Arrange
        using var scope = NewDisposeScope();
        var (a, b) = States();
        b["b"] = zeros(4);

        // Act
        var error = Assert.Throws<ArgumentException>(() => StateBlend.Lerp(a, b, 0.5));

        // Assert
        Assert.Contains("'b' has shape [3]", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Lerp_MissingOrExtraOrRetypedTensor_ThrowsNamingTensor()
    {
        // Arrange
        using var scope = NewDisposeScope();
        var (a, b) = States();
        var missing = new Dictionary<string, Tensor>(b);
        missing.Remove("w");
        var extra = new Dictionary<string, Tensor>(b) { ["extra"] = zeros(1) };
        var retyped = new Dictionary<string, Tensor>(b) { ["b"] = zeros(3, ScalarType.Float64) };

        // Act and Assert
        Assert.Contains("'w'", Assert.Throws<ArgumentException>(() => StateBlend.Lerp(a, missing, 0.5)).Message, StringComparison.Ordinal);
        Assert.Contains("'extra'", Assert.Throws<ArgumentException>(() => StateBlend.Lerp(a, extra, 0.5)).Message, StringComparison.Ordinal);
        Assert.Contains("'b' is Float32", Assert.Throws<ArgumentException>(() => StateBlend.Lerp(a, retyped, 0.5)).Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentOutOfRangeException>(() => StateBlend.Lerp(a, b, double.NaN));
    }

    private static (Dictionary<string, Tensor> A, Dictionary<string, Tensor> B) States() =>
        (new Dictionary<string, Tensor>
        {
            ["w"] = tensor(new float[] { 1, 2, 3, 4, 5, 6 }).reshape(2, 3),
            ["b"] = tensor(new float[] { 0.1f, -0.2f, 0.3f }),
            ["n"] = tensor(7L),
        },
        new Dictionary<string, Tensor>
        {
            ["w"] = tensor(new float[] { -1, 0, 5, 2, 2, 2 }).reshape(2, 3),
            ["b"] = tensor(new float[] { 1, 1, 1 }),
            ["n"] = tensor(3L),
        });
}
