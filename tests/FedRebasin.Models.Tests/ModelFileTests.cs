using FedRebasin.Tensors;
using FedRebasin.Tests.Shared;
using FedRebasin.Torch;
using TorchSharp;
using static TorchSharp.torch;

namespace FedRebasin.Models.Tests;

public sealed class ModelFileTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("fedrebasin-models-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Theory]
    [InlineData("mlp", "none")]
    [InlineData("vgg11", "batch")]
    [InlineData("resnet20", "layer")]
    [InlineData("resnet20", "batch")]
    public void SaveThenLoad_EveryArchitecture_SameSpecAndSameFunction(string architecture, string norm)
    {
        // Arrange
        using var scope = NewDisposeScope();
        var spec = ModelRegistry.DefaultSpec(architecture, 1, 28, 28, 10, widthMultiplier: 0.25, norm: ModelSpec.ParseNorm(norm));
        using var model = ModelRegistry.Create(spec, seed: 1);
        if (spec.Norm == NormKind.Batch)
        {
            // Move the running statistics away from their initial values so the test sees them travel.
            model.train();
            using (no_grad())
            {
                model.call(randn(8, 1, 28, 28) * 3 + 1);
            }
        }

        model.eval();
        var input = randn(4, 1, 28, 28);
        var expected = model.call(input);
        string path = Path.Combine(_directory, "m.safetensors");

        // Act
        ModelFile.Save(model, path);
        using var loaded = ModelFile.Load(path);
        loaded.eval();

        // Assert
        Assert.Equal(spec, loaded.Spec);
        Assert.True(loaded.call(input).allclose(expected, rtol: 0, atol: 1e-6));
    }

    [Theory]
    [InlineData("mlp", "none")]
    [InlineData("resnet20", "batch")]
    public void ToBytes_SameBytesAsTheEntriesRoute_AndLoadsBackBitExact(string architecture, string norm)
    {
        // Arrange (ResNet-20 with batch norm has an int64 buffer, num_batches_tracked, beside the float32 tensors)
        var spec = ModelRegistry.DefaultSpec(architecture, 1, 28, 28, 10, widthMultiplier: 0.25, norm: ModelSpec.ParseNorm(norm));
        using var model = ModelRegistry.Create(spec, seed: 3);
        var extra = new Dictionary<string, string> { ["note"] = "round 4" };

        // Act
        byte[] direct = ModelFile.ToBytes(model, extra);
        using var loaded = ModelFile.FromSafeTensors(SafeTensors.Parse(direct, "direct"), "direct");

        // Assert
        Assert.Equal(SafeTensors.ToBytes(ModelFile.ToSafeTensors(model, extra)), direct);
        Assert.Equal(direct, ModelFile.ToBytes(loaded, extra));
    }

    [Fact]
    public void FromSafeTensors_Float16File_WidenedIntoTheFloat32Model()
    {
        using var model = ModelRegistry.Create(ModelRegistry.DefaultSpec("mlp", 1, 28, 28, 10, hidden: [16]), seed: 2);
        var file = ModelFile.ToSafeTensors(model);
        var half = new SafeTensorsFile(file.Tensors.Select(e => e.ConvertTo(SafeTensorDType.F16)), file.Metadata);

        using var loaded = ModelFile.FromSafeTensors(half, "half.safetensors");

        foreach (var (name, value) in loaded.state_dict())
        {
            Assert.Equal(ScalarType.Float32, value.dtype);
            Assert.True(value.allclose(model.state_dict()[name], rtol: 1e-3, atol: 1e-3), name);
        }
    }

    [Fact]
    public void Load_ShapeMismatch_NamesTheTensor()
    {
        var file = ModelFile.ToSafeTensors(ModelRegistry.Create(ModelRegistry.DefaultSpec("mlp", 1, 28, 28, 10, hidden: [16])));
        var entries = file.Tensors.Select(e => e.Name == "2.weight" ? TensorEntry.FromFloat32("2.weight", [10, 15], new float[150]) : e);
        var broken = new SafeTensorsFile(entries, file.Metadata);

        var error = Assert.Throws<ModelFileException>(() => ModelFile.FromSafeTensors(broken, "broken.safetensors"));

        Assert.Contains("broken.safetensors", error.Message, StringComparison.Ordinal);
        Assert.Contains("'2.weight'", error.Message, StringComparison.Ordinal);
        Assert.Contains("[10,15]", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_MissingTensor_NamesIt()
    {
        var file = ModelFile.ToSafeTensors(ModelRegistry.Create(ModelRegistry.DefaultSpec("mlp", 1, 28, 28, 10, hidden: [16])));
        var broken = new SafeTensorsFile(file.Tensors.Where(e => e.Name != "0.bias"), file.Metadata);

        var error = Assert.Throws<ModelFileException>(() => ModelFile.FromSafeTensors(broken, "m.safetensors"));

        Assert.Contains("'0.bias' is missing", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_UnexpectedTensor_NamesIt()
    {
        var file = ModelFile.ToSafeTensors(ModelRegistry.Create(ModelRegistry.DefaultSpec("mlp", 1, 28, 28, 10, hidden: [16])));
        var broken = new SafeTensorsFile(file.Tensors.Append(TensorEntry.FromFloat32("extra.weight", [1], [0f])), file.Metadata);

        var error = Assert.Throws<ModelFileException>(() => ModelFile.FromSafeTensors(broken, "m.safetensors"));

        Assert.Contains("'extra.weight'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ReadSpec_NoMetadataSequentialMlp_IsInferred()
    {
        var entries = new[]
        {
            TensorEntry.FromFloat32("0.weight", [64, 784], new float[64 * 784]),
            TensorEntry.FromFloat32("0.bias", [64], new float[64]),
            TensorEntry.FromFloat32("2.weight", [10, 64], new float[640]),
            TensorEntry.FromFloat32("2.bias", [10], new float[10]),
        };

        var spec = ModelFile.ReadSpec(new SafeTensorsFile(entries), "pt.safetensors");

        Assert.Equal(ModelRegistry.DefaultSpec("mlp", 1, 28, 28, 10, hidden: [64]), spec);
    }

    [Fact]
    public void ReadSpec_NoMetadataNotAnMlp_SaysWhatIsNeeded()
    {
        var entries = new[] { TensorEntry.FromFloat32("conv1.weight", [4, 1, 3, 3], new float[36]) };

        var error = Assert.Throws<ModelFileException>(() => ModelFile.ReadSpec(new SafeTensorsFile(entries), "x.safetensors"));

        Assert.Contains("fedrebasin.architecture", error.Message, StringComparison.Ordinal);
        Assert.Contains("'conv1.weight'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    [Trait("Category", "Integration")]
    public void PyTorchTrainedMlp_LoadsAndComputesTheSameLogits()
    {
        // Arrange: PyTorch trains an nn.Sequential MLP and saves it without metadata.
        PythonRunner.RequireModule("torch");
        string modelPath = Path.Combine(_directory, "pt.safetensors");
        string ioPath = Path.Combine(_directory, "io.safetensors");
        PythonRunner.RunScript("interop.py", "make-mlp", modelPath, ioPath);
        var io = SafeTensors.Read(ioPath);
        using var scope = NewDisposeScope();

        // Act
        using var model = ModelFile.Load(modelPath);
        model.eval();
        var logits = model.call(TensorConversion.ToTensor(io["input"]));

        // Assert
        Assert.Equal("mlp 784-64-32-10", model.Spec.Describe());
        Assert.True(logits.allclose(TensorConversion.ToTensor(io["logits"]), rtol: 0, atol: 1e-5));
    }

    [Theory]
    [Trait("Category", "Integration")]
    [InlineData("mlp", "none", 1.0)]
    [InlineData("vgg11", "batch", 0.125)]
    [InlineData("vgg16", "layer", 0.125)]
    [InlineData("resnet20", "batch", 0.5)]
    [InlineData("resnet20", "layer", 0.5)]
    [InlineData("resnet20", "none", 0.5)]
    public void OurModels_LoadStrictlyInPyTorch_WithTheSameLogits(string architecture, string norm, double width)
    {
        // Arrange
        PythonRunner.RequireModule("torch");
        using var scope = NewDisposeScope();
        var spec = ModelRegistry.DefaultSpec(architecture, 1, 28, 28, 10, hidden: [48, 24], widthMultiplier: width, norm: ModelSpec.ParseNorm(norm));
        using var model = ModelRegistry.Create(spec, seed: 5);
        model.eval();
        var input = randn(6, 1, 28, 28);
        var logits = model.call(input);
        string modelPath = Path.Combine(_directory, $"{architecture}.safetensors");
        string ioPath = Path.Combine(_directory, $"{architecture}-io.safetensors");
        ModelFile.Save(model, modelPath);
        SafeTensors.Write(ioPath, new SafeTensorsFile([TensorConversion.ToEntry("input", input), TensorConversion.ToEntry("logits", logits)]));

        // Act + Assert: strict load_state_dict and logits within 1e-4
        var (_, output) = PythonRunner.RunScript("interop.py", "check", modelPath, ioPath);
        Assert.Contains("max abs logit difference", output, StringComparison.Ordinal);
    }
}
