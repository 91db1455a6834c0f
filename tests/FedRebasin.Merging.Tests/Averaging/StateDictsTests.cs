using FedRebasin.Merging.Averaging;
using FedRebasin.Models;
using static TorchSharp.torch;

namespace FedRebasin.Merging.Tests.Averaging;

public sealed class StateDictsTests
{
    [Fact]
    public void CopyInto_AnotherModelsState_TheModelComputesLikeIt()
    {
        using var scope = NewDisposeScope();
        var spec = ModelRegistry.DefaultSpec("mlp", 1, 8, 8, 4, hidden: [16]);
        using var source = ModelRegistry.Create(spec, seed: 1);
        using var target = ModelRegistry.Create(spec, seed: 2);
        var input = randn(5, 1, 8, 8);

        StateDicts.CopyInto(target.state_dict(), source.state_dict());

        var expected = source.call(input);
        Assert.True(target.call(input).allclose(expected, rtol: 0, atol: 0));
        using (no_grad())
        {
            source.state_dict()["0.weight"].add_(1);
        }

        // Copies, not shared storage: the source changing afterwards leaves the target as it was.
        Assert.True(target.call(input).allclose(expected, rtol: 0, atol: 0));
    }

    [Fact]
    public void CopyInto_MissingTensorOrOtherShape_NamesTheTensor_AndLeavesItUnchanged()
    {
        using var scope = NewDisposeScope();
        var target = new Dictionary<string, Tensor> { ["w"] = zeros(2, 3) };

        var missing = Assert.Throws<ArgumentException>(() => StateDicts.CopyInto(target, new Dictionary<string, Tensor> { ["v"] = ones(2, 3) }));
        var shape = Assert.Throws<ArgumentException>(() => StateDicts.CopyInto(target, new Dictionary<string, Tensor> { ["w"] = ones(3, 2) }));

        Assert.Contains("'w'", missing.Message, StringComparison.Ordinal);
        Assert.Contains("[3,2]", shape.Message, StringComparison.Ordinal);
        Assert.Equal(0, target["w"].sum().item<float>());
    }
}
