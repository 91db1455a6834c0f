using TorchSharp;
using static TorchSharp.torch;

namespace FedRebasin.Models.Tests;

public class ModelNamingTests
{
    [Fact]
    public void Mlp_DefaultSpec_HasSequentialKeysAndShapes()
    {
        // Arrange
        var spec = ModelRegistry.DefaultSpec("mlp", 1, 28, 28, 10);

        // Act
        using var model = ModelRegistry.Create(spec);
        var state = model.state_dict().ToDictionary(p => p.Key, p => p.Value.shape);

        // Assert
        Assert.Equal(
            new Dictionary<string, long[]>
            {
                ["0.weight"] = [512, 784], ["0.bias"] = [512],
                ["2.weight"] = [512, 512], ["2.bias"] = [512],
                ["4.weight"] = [512, 512], ["4.bias"] = [512],
                ["6.weight"] = [10, 512], ["6.bias"] = [10],
            },
            state);
        Assert.Equal("mlp 784-512-512-512-10", spec.Describe());
    }

    [Fact]
    public void ResNet20_BatchNorm_HasBlockNamesAndBuffers()
    {
        using var model = ModelRegistry.Create(ModelRegistry.DefaultSpec("resnet20", 3, 32, 32, 10, norm: NormKind.Batch));
        var names = model.state_dict().Keys.ToHashSet();

        Assert.Contains("conv1.weight", names);
        Assert.Contains("norm1.running_var", names);
        Assert.Contains("layer1.2.conv2.weight", names);
        Assert.Contains("layer2.0.shortcut.0.weight", names);
        Assert.Contains("layer3.0.shortcut.1.num_batches_tracked", names);
        Assert.Contains("linear.bias", names);
        Assert.DoesNotContain("layer1.0.shortcut.0.weight", names);
        Assert.Equal(19, names.Count(n => n.EndsWith(".weight", StringComparison.Ordinal) && model.state_dict()[n].dim() == 4) - 2);
    }

    [Fact]
    public void ResNet20_NoNorm_ConvolutionsHaveBiases()
    {
        using var model = ModelRegistry.Create(ModelRegistry.DefaultSpec("resnet20", 1, 28, 28, 10, norm: NormKind.None));
        var names = model.state_dict().Keys.ToHashSet();

        Assert.Contains("conv1.bias", names);
        Assert.Contains("layer2.0.shortcut.0.bias", names);
        Assert.DoesNotContain(names, n => n.Contains("norm", StringComparison.Ordinal));
    }

    [Fact]
    public void Vgg11_SmallInput_SkipsPoolsBelowTwoPixels()
    {
        using var model = ModelRegistry.Create(ModelRegistry.DefaultSpec("vgg11", 1, 28, 28, 10, widthMultiplier: 0.25, norm: NormKind.Layer));
        var convs = model.state_dict().Where(p => p.Value.dim() == 4).Select(p => p.Key).ToList();

        // 8 convolutions; 28 -> 14 -> 7 -> 3 -> 1: the fifth pool is left out.
        Assert.Equal(8, convs.Count);
        Assert.Equal("features.0.weight", convs[0]);
        Assert.Equal([10L, 128], model.state_dict()["classifier.weight"].shape);
    }

    [Theory]
    [InlineData("mlp", "none", 1.0)]
    [InlineData("vgg11", "batch", 0.25)]
    [InlineData("vgg16", "layer", 0.125)]
    [InlineData("resnet20", "batch", 1.0)]
    [InlineData("resnet20", "layer", 0.5)]
    [InlineData("resnet20", "none", 0.5)]
    public void Forward_EveryArchitecture_GivesLogitsPerExample(string architecture, string norm, double width)
    {
        using var scope = NewDisposeScope();
        using var model = ModelRegistry.Create(ModelRegistry.DefaultSpec(architecture, 1, 28, 28, 10, widthMultiplier: width, norm: ModelSpec.ParseNorm(norm)));
        model.eval();

        var logits = model.call(randn(3, 1, 28, 28));

        Assert.Equal([3L, 10], logits.shape);
        Assert.True(logits.isfinite().all().item<bool>());
    }

    [Fact]
    public void Create_SameSeed_SameWeights_DifferentSeed_Different()
    {
        var spec = ModelRegistry.DefaultSpec("mlp", 1, 28, 28, 10, hidden: [32]);
        using var a = ModelRegistry.Create(spec, seed: 3);
        using var b = ModelRegistry.Create(spec, seed: 3);
        using var c = ModelRegistry.Create(spec, seed: 4);

        Assert.True(a.state_dict()["0.weight"].equal(b.state_dict()["0.weight"]).all().item<bool>());
        Assert.False(a.state_dict()["0.weight"].equal(c.state_dict()["0.weight"]).all().item<bool>());
    }

    [Theory]
    [InlineData("transformer", "unknown architecture")]
    public void DefaultSpec_BadArchitecture_NamesTheKnownOnes(string name, string expected)
    {
        var error = Assert.Throws<ArgumentException>(() => ModelRegistry.DefaultSpec(name, 1, 28, 28, 10));

        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
        Assert.Contains("resnet20", error.Message, StringComparison.Ordinal);
    }
}

public class NormInitialisationTests
{
    [Theory]
    [InlineData("layer")]
    [InlineData("batch")]
    public void Create_NormLayers_StartAtPyTorchDefaults(string norm)
    {
        using var model = ModelRegistry.Create(ModelRegistry.DefaultSpec("resnet20", 1, 28, 28, 10, widthMultiplier: 0.25, norm: ModelSpec.ParseNorm(norm)));

        foreach (var (name, value) in model.state_dict().Where(p => p.Key.Contains("norm", StringComparison.Ordinal) || p.Key.Contains("shortcut.1", StringComparison.Ordinal)))
        {
            float expected = name.EndsWith(".weight", StringComparison.Ordinal) || name.EndsWith(".running_var", StringComparison.Ordinal) ? 1f : 0f;
            if (name.EndsWith("num_batches_tracked", StringComparison.Ordinal))
            {
                continue;
            }

            Assert.All(value.data<float>().ToArray(), v => Assert.Equal(expected, v));
        }
    }
}
