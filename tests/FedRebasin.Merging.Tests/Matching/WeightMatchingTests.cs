using FedRebasin.Merging.Averaging;
using FedRebasin.Merging.Matching;
using FedRebasin.Models;
using FedRebasin.Models.Permutations;
using TorchSharp;
using static TorchSharp.torch;

namespace FedRebasin.Merging.Tests.Matching;

public class WeightMatchingTests
{
    private static ModelSpec Mlp => ModelRegistry.DefaultSpec("mlp", 1, 8, 8, 10, hidden: [64, 48, 32]);

    [Theory]
    [InlineData("mlp", "none")]
    [InlineData("vgg11", "layer")]
    [InlineData("vgg11", "batch")]
    public void Match_PlantedPermutation_IsRecoveredExactly(string architecture, string norm)
    {
        // Arrange: B = π(A) for a random π.
        using var scope = NewDisposeScope();
        var spec = architecture == "mlp" ? Mlp : ModelRegistry.DefaultSpec(architecture, 1, 8, 8, 10, widthMultiplier: 0.25, norm: ModelSpec.ParseNorm(norm));
        using var model = ModelRegistry.Create(spec, seed: 1);
        var permutationSpec = PermutationSpecs.For(model);
        var a = StateDicts.Clone(model.state_dict());
        var planted = permutationSpec.RandomPermutations(new Random(5));
        var b = permutationSpec.Permute(a, planted);

        // Act
        var result = WeightMatching.Match(permutationSpec, a, b, new WeightMatchingOptions { Seed = 3 });

        // Assert: σ(π(A)) = A, so σ = π⁻¹.
        var expected = PermutationSpec.Invert(planted);
        foreach (var group in permutationSpec.Groups)
        {
            Assert.Equal(expected[group.Name], result.Permutations[group.Name]);
        }

        Assert.True(result.ObjectiveAfter > result.ObjectiveBefore);
        Assert.InRange(result.Sweeps, 2, 10);
        Assert.All(result.Groups, g => Assert.True(g.Gain >= 0));
    }

    [Fact]
    public void Match_ObjectiveNeverDecreasesWithMoreSweeps()
    {
        using var scope = NewDisposeScope();
        using var a = ModelRegistry.Create(Mlp, seed: 1);
        using var b = ModelRegistry.Create(Mlp, seed: 2);
        var spec = PermutationSpecs.For(a);
        var previous = double.NegativeInfinity;
        for (int sweeps = 1; sweeps <= 6; sweeps++)
        {
            var result = WeightMatching.Match(spec, a.state_dict(), b.state_dict(), new WeightMatchingOptions { Seed = 7, MaxSweeps = sweeps });
            Assert.True(result.ObjectiveAfter >= previous - 1e-9, $"sweep {sweeps}: {result.ObjectiveAfter} < {previous}");
            Assert.True(result.ObjectiveAfter >= result.ObjectiveBefore);
            previous = result.ObjectiveAfter;
        }
    }

    [Fact]
    public void Match_SameSeed_SamePermutations()
    {
        using var a = ModelRegistry.Create(Mlp, seed: 1);
        using var b = ModelRegistry.Create(Mlp, seed: 2);
        var spec = PermutationSpecs.For(a);

        var first = WeightMatching.Match(spec, a.state_dict(), b.state_dict(), new WeightMatchingOptions { Seed = 11 });
        var second = WeightMatching.Match(spec, a.state_dict(), b.state_dict(), new WeightMatchingOptions { Seed = 11 });

        Assert.Equal(first.ObjectiveAfter, second.ObjectiveAfter);
        foreach (var group in spec.Groups)
        {
            Assert.Equal(first.Permutations[group.Name], second.Permutations[group.Name]);
        }
    }

    [Fact]
    public void Match_Restarts_NeverWorseThanOneStart()
    {
        using var a = ModelRegistry.Create(ModelRegistry.DefaultSpec("resnet20", 1, 8, 8, 10, widthMultiplier: 0.5, norm: NormKind.Layer), seed: 1);
        using var b = ModelRegistry.Create(a.Spec, seed: 2);
        var spec = PermutationSpecs.For(a);

        var one = WeightMatching.Match(spec, a.state_dict(), b.state_dict(), new WeightMatchingOptions { Seed = 4 });
        var four = WeightMatching.Match(spec, a.state_dict(), b.state_dict(), new WeightMatchingOptions { Seed = 4, Restarts = 4 });

        Assert.True(four.ObjectiveAfter >= one.ObjectiveAfter - 1e-9);
    }

    [Fact]
    public void Match_WarmStartAtTheOptimum_StopsAfterOneSweep()
    {
        using var a = ModelRegistry.Create(Mlp, seed: 1);
        using var b = ModelRegistry.Create(Mlp, seed: 2);
        var spec = PermutationSpecs.For(a);
        var cold = WeightMatching.Match(spec, a.state_dict(), b.state_dict(), new WeightMatchingOptions { Seed = 1 });

        var warm = WeightMatching.Match(spec, a.state_dict(), b.state_dict(), new WeightMatchingOptions { Seed = 1, InitialPermutations = cold.Permutations });

        Assert.Equal(1, warm.Sweeps);
        Assert.Equal(cold.ObjectiveAfter, warm.ObjectiveAfter, 9);
    }

    [Fact]
    public void Match_ObjectiveAfter_EqualsInnerProductOfAlignedTensors()
    {
        using var scope = NewDisposeScope();
        using var a = ModelRegistry.Create(Mlp, seed: 1);
        using var b = ModelRegistry.Create(Mlp, seed: 2);
        var spec = PermutationSpecs.For(a);

        var result = WeightMatching.Match(spec, a.state_dict(), b.state_dict());
        var aligned = spec.Permute(b.state_dict(), result.Permutations);

        // "Matched tensors": those some group's cost reads (the unpermuted last bias is not one).
        var matched = spec.Groups.SelectMany(g => g.CostAxes).Select(x => x.Tensor).Distinct().ToList();
        Assert.DoesNotContain("6.bias", matched);
        double expected = matched.Sum(name => a.state_dict()[name].to_type(ScalarType.Float64).mul(aligned[name].to_type(ScalarType.Float64)).sum().item<double>());
        Assert.Equal(expected, result.ObjectiveAfter, 6);
        Assert.All(result.Groups, g => Assert.InRange(g.IdentityFraction, 0, 1));
    }

    [Fact]
    public void Match_DoesNotLeakTensors()
    {
        using var a = ModelRegistry.Create(Mlp, seed: 1);
        using var b = ModelRegistry.Create(Mlp, seed: 2);
        var spec = PermutationSpecs.For(a);
        long before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;

        WeightMatching.Match(spec, a.state_dict(), b.state_dict(), new WeightMatchingOptions { Restarts = 2 });

        Assert.Equal(before, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
    }

    [Fact]
    public void Match_DifferentShapes_NamesTheTensor()
    {
        using var a = ModelRegistry.Create(Mlp, seed: 1);
        using var b = ModelRegistry.Create(ModelRegistry.DefaultSpec("mlp", 1, 8, 8, 10, hidden: [64, 48, 31]), seed: 2);

        var error = Assert.ThrowsAny<Exception>(() => WeightMatching.Match(PermutationSpecs.For(a), a.state_dict(), b.state_dict()));

        Assert.Contains("4.weight", error.Message, StringComparison.Ordinal);
    }
}
