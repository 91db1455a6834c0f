using FedRebasin.Merging.Averaging;
using FedRebasin.Models;
using FedRebasin.Models.Permutations;
using TorchSharp;
using static TorchSharp.torch;

namespace FedRebasin.Merging.Tests.Matching;

public class MergerTests
{
    private static ModelSpec Mlp => ModelRegistry.DefaultSpec("mlp", 1, 8, 8, 10, hidden: [32, 32]);

    [Theory]
    [InlineData(MergeMethod.WeightMatching)]
    [InlineData(MergeMethod.MergeMany)]
    public void Merge_PermutedCopiesOfOneModel_GivesThatModelsFunction(MergeMethod method)
    {
        // Arrange: three differently permuted copies of one network.
        using var scope = NewDisposeScope();
        using var model = ModelRegistry.Create(Mlp, seed: 1);
        model.eval();
        var spec = PermutationSpecs.For(model);
        var original = StateDicts.Clone(model.state_dict());
        var copies = new[] { 3, 4, 5 }.Select(s => (IReadOnlyDictionary<string, Tensor>)spec.Permute(original, spec.RandomPermutations(new Random(s)))).ToList();
        using var generator = new TorchSharp.torch.Generator(6);
        var input = randn([16, 1, 8, 8], generator: generator);
        var expected = model.call(input);

        // Act
        var result = Merger.Merge(spec, copies, [1.0, 2.0, 3.0], new MergeOptions { Method = method });
        using var merged = ModelRegistry.Create(Mlp);
        merged.load_state_dict(result.State);
        merged.eval();

        // Assert: alignment undoes the permutations, so the average is the original network.
        Assert.True(merged.call(input).allclose(expected, rtol: 0, atol: 1e-4));
        Assert.Equal(3, result.Permutations.Count);
    }

    [Fact]
    public void Merge_Naive_IsTheWeightedAverage()
    {
        using var scope = NewDisposeScope();
        using var a = ModelRegistry.Create(Mlp, seed: 1);
        using var b = ModelRegistry.Create(Mlp, seed: 2);

        var result = Merger.Merge(PermutationSpecs.For(a), [a.state_dict(), b.state_dict()], [1.0, 3.0], new MergeOptions { Method = MergeMethod.Naive });

        var expected = a.state_dict()["2.weight"].mul(0.25).add(b.state_dict()["2.weight"].mul(0.75));
        Assert.True(result.State["2.weight"].allclose(expected, rtol: 0, atol: 1e-6));
        Assert.Null(result.ReferenceIndex);
    }

    [Fact]
    public void Merge_WeightMatching_ReferenceDefaultsToTheLargestWeight()
    {
        using var a = ModelRegistry.Create(Mlp, seed: 1);
        using var b = ModelRegistry.Create(Mlp, seed: 2);
        using var c = ModelRegistry.Create(Mlp, seed: 3);
        var spec = PermutationSpecs.For(a);

        var result = Merger.Merge(spec, [a.state_dict(), b.state_dict(), c.state_dict()], [10.0, 30.0, 20.0]);

        Assert.Equal(1, result.ReferenceIndex);
        Assert.Null(result.Matches[1]);
        Assert.NotNull(result.Matches[0]);
        Assert.Equal(spec.Identity()["P0"], result.Permutations[1]["P0"]);
        StateDicts.DisposeAll([result.State]);
    }

    [Fact]
    public void Merge_WeightMatchingOfIndependentModels_IsCloserThanNaive()
    {
        // Aligned models are nearer each other than unaligned ones: the WM objective exceeds the identity's.
        using var a = ModelRegistry.Create(Mlp, seed: 1);
        using var b = ModelRegistry.Create(Mlp, seed: 2);
        var spec = PermutationSpecs.For(a);

        var result = Merger.Merge(spec, [a.state_dict(), b.state_dict()], [1.0, 1.0], new MergeOptions { ReferenceIndex = 0 });

        var match = result.Matches[1]!;
        Assert.True(match.ObjectiveAfter > match.ObjectiveBefore);
        Assert.Contains(match.Groups, g => g.IdentityFraction < 0.5);
        StateDicts.DisposeAll([result.State]);
    }

    [Fact]
    public void Merge_MismatchedModels_NamesTheTensor()
    {
        using var a = ModelRegistry.Create(Mlp, seed: 1);
        using var b = ModelRegistry.Create(ModelRegistry.DefaultSpec("mlp", 1, 8, 8, 10, hidden: [32, 16]), seed: 2);

        var error = Assert.Throws<ArgumentException>(() => Merger.Merge(PermutationSpecs.For(a), [a.state_dict(), b.state_dict()], [1.0, 1.0]));

        Assert.Contains("2.weight", error.Message, StringComparison.Ordinal);
    }
}
