using FedRebasin.Models.Permutations;
using TorchSharp;
using static TorchSharp.torch;

namespace FedRebasin.Models.Tests.Permutations;

public sealed class PermutationSpecTests
{
    public static TheoryData<string, string, double> Models => TestModels.All;

    [Theory]
    [MemberData(nameof(Models))]
    public void For_EveryArchitecture_CoversExactlyTheStateDict(string architecture, string norm, double width)
    {
        // Arrange
        using var model = TestModels.Create(architecture, norm, width);
        var shapes = TestModels.Shapes(model);

        // Act
        var spec = PermutationSpecs.For(model);

        // Assert
        spec.Validate(shapes);
        Assert.Equal(shapes.Keys.Order(StringComparer.Ordinal), spec.Tensors.Order(StringComparer.Ordinal));
        Assert.All(spec.Groups, g =>
        {
            Assert.Contains(g.Axes, a => a.Axis == 0);
            Assert.Contains(g.Axes, a => a.Axis == 1);
        });
        Assert.All(spec.Unpermuted, t => Assert.Empty(spec.AxesToGroups[t]));
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void Permute_RandomPermutations_PreservesFunction(string architecture, string norm, double width)
    {
        // Arrange
        using var scope = NewDisposeScope();
        using var model = TestModels.Create(architecture, norm, width, seed: 1);
        using var other = TestModels.Create(architecture, norm, width, seed: 2);
        var spec = PermutationSpecs.For(model);
        var permutations = spec.RandomPermutations(new Random(7));
        var input = TestModels.Input(6, seed: 3);
        var expected = model.call(input);

        // Act
        var permuted = spec.Permute(model.state_dict(), permutations);
        other.load_state_dict(permuted);
        var actual = other.call(input);

        // Assert
        Assert.True(TestModels.MaxAbsDifference(actual, expected) < 1e-4);
        Assert.Contains(spec.Groups, g => !TestModels.Same(permuted[g.Axes[0].Tensor], model.state_dict()[g.Axes[0].Tensor]));
    }

    [Fact]
    public void Permute_SpecMissingAShortcutInput_ChangesFunction()
    {
        // Arrange: the spec bug of Git Re-Basin issue #3 (a stream reader left out) must be visible to the test above.
        using var scope = NewDisposeScope();
        using var model = TestModels.Create("resnet20", "layer", 0.25, seed: 1);
        using var other = TestModels.Create("resnet20", "layer", 0.25, seed: 2);
        var correct = PermutationSpecs.For(model);
        var broken = new PermutationSpec(
            correct.Groups.Select(g => new PermutationGroup(g.Name, g.Size, g.Axes.Where(a => a != new PermutationAxis("layer2.0.shortcut.0.weight", 1)))),
            correct.Unpermuted);
        var input = TestModels.Input(6, seed: 3);
        var expected = model.call(input);

        // Act
        other.load_state_dict(broken.Permute(model.state_dict(), broken.RandomPermutations(new Random(7))));
        var actual = other.call(input);

        // Assert
        Assert.True(TestModels.MaxAbsDifference(actual, expected) > 1e-3);
    }

    [Theory]
    [InlineData("mlp", "none", 1.0)]
    [InlineData("vgg11", "batch", 0.25)]
    [InlineData("resnet20", "batch", 0.25)]
    public void Permute_ThenInverse_RestoresTheState(string architecture, string norm, double width)
    {
        // Arrange
        using var scope = NewDisposeScope();
        using var model = TestModels.Create(architecture, norm, width);
        var spec = PermutationSpecs.For(model);
        var permutations = spec.RandomPermutations(new Random(11));
        var state = model.state_dict();

        // Act
        var restored = spec.Permute(spec.Permute(state, permutations), PermutationSpec.Invert(permutations));

        // Assert
        Assert.Equal(state.Keys.Order(StringComparer.Ordinal), restored.Keys.Order(StringComparer.Ordinal));
        Assert.All(state, p => Assert.True(TestModels.Same(restored[p.Key], p.Value), p.Key));
    }

    [Fact]
    public void Permute_Twice_EqualsPermutingWithTheComposition()
    {
        // Arrange
        using var scope = NewDisposeScope();
        using var model = TestModels.Create("resnet20", "none", 0.25);
        var spec = PermutationSpecs.For(model);
        var first = spec.RandomPermutations(new Random(1));
        var second = spec.RandomPermutations(new Random(2));
        var state = model.state_dict();

        // Act
        var twice = spec.Permute(spec.Permute(state, first), second);
        var once = spec.Permute(state, PermutationSpec.Compose(first, second));

        // Assert
        Assert.All(state.Keys, k => Assert.True(TestModels.Same(twice[k], once[k]), k));
    }

    [Fact]
    public void Permute_Identity_CopiesWithoutSharingStorage()
    {
        // Arrange
        using var scope = NewDisposeScope();
        using var model = TestModels.Create("mlp", "none", 1.0);
        var spec = PermutationSpecs.For(model);
        var state = model.state_dict();

        // Act
        var copy = spec.Permute(state, spec.Identity());
        copy["6.bias"].add_(1);
        copy["0.weight"].add_(1);

        // Assert
        Assert.False(TestModels.Same(copy["6.bias"], state["6.bias"]));
        Assert.False(TestModels.Same(copy["0.weight"], state["0.weight"]));
        Assert.False(copy["0.weight"].requires_grad);
    }

    [Fact]
    public void Permute_GathersAlongTheAxis()
    {
        // Arrange: a 2-3-1 MLP; P0 acts on rows of 0.weight and columns of 2.weight.
        using var scope = NewDisposeScope();
        var spec = new PermutationSpec(
            [new PermutationGroup("P0", 3, [new("0.weight", 0), new("0.bias", 0), new("2.weight", 1)])],
            ["2.bias"]);
        var state = new Dictionary<string, Tensor>
        {
            ["0.weight"] = tensor(new float[] { 1, 2, 3, 4, 5, 6 }).reshape(3, 2),
            ["0.bias"] = tensor(new float[] { 10, 20, 30 }),
            ["2.weight"] = tensor(new float[] { 7, 8, 9 }).reshape(1, 3),
            ["2.bias"] = tensor(new float[] { 5 }),
        };

        // Act
        var permuted = spec.Permute(state, new Dictionary<string, long[]> { ["P0"] = [2, 0, 1] });

        // Assert: new[i] = old[perm[i]]
        Assert.Equal([5f, 6, 1, 2, 3, 4], permuted["0.weight"].data<float>().ToArray());
        Assert.Equal([30f, 10, 20], permuted["0.bias"].data<float>().ToArray());
        Assert.Equal([9f, 7, 8], permuted["2.weight"].data<float>().ToArray());
        Assert.Equal([5f], permuted["2.bias"].data<float>().ToArray());
    }

    [Fact]
    public void PermuteTensor_EqualsTheTensorOfPermuteForEveryTensor()
    {
        // Arrange: ResNet tensors have one, two or no permuted axes.
        using var scope = NewDisposeScope();
        using var model = TestModels.Create("resnet20", "batch", 0.25);
        var spec = PermutationSpecs.For(model);
        var permutations = spec.RandomPermutations(new Random(3));
        var state = model.state_dict();

        // Act
        var whole = spec.Permute(state, permutations);

        // Assert
        Assert.All(state, p =>
        {
            var one = spec.PermuteTensor(p.Key, p.Value, permutations);
            Assert.True(TestModels.Same(whole[p.Key], one), p.Key);
            Assert.NotEqual(p.Value.Handle, one.Handle);
        });
        var error = Assert.Throws<PermutationSpecException>(() => spec.PermuteTensor("no.such", state.Values.First(), permutations));
        Assert.Contains("no.such", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void For_Mlp_MatchesTheGitReBasinTable()
    {
        // Arrange
        var spec = TestModels.Spec("mlp", "none", 1.0);

        // Act
        var permutationSpec = PermutationSpecs.For(spec);

        // Assert
        Assert.Equal(["P0", "P1", "P2"], permutationSpec.Groups.Select(g => g.Name));
        Assert.Equal([12, 10, 8], permutationSpec.Groups.Select(g => g.Size));
        Assert.Equal(["P1", "P0"], permutationSpec.AxesToGroups["2.weight"]);
        Assert.Equal(["P1"], permutationSpec.AxesToGroups["2.bias"]);
        Assert.Equal([null, "P2"], permutationSpec.AxesToGroups["6.weight"]);
        Assert.Equal(["P0"], permutationSpec.AxesToGroups["0.weight"]);
        Assert.Equal(["6.bias"], permutationSpec.Unpermuted);
    }

    [Fact]
    public void For_ResNet20_HasThreeStreamsAndNineInnerGroups()
    {
        // Arrange
        var spec = TestModels.Spec("resnet20", "batch", 0.5);

        // Act
        var permutationSpec = PermutationSpecs.For(spec);

        // Assert
        var sizes = permutationSpec.Groups.ToDictionary(g => g.Name, g => g.Size);
        Assert.Equal(12, sizes.Count);
        Assert.Equal([8, 16, 32], new[] { sizes["stream1"], sizes["stream2"], sizes["stream3"] });
        Assert.Equal(16, sizes["layer2.1.inner"]);
        Assert.Equal(["stream2", "stream1"], permutationSpec.AxesToGroups["layer2.0.shortcut.0.weight"].Take(2));
        Assert.Equal(["layer2.0.inner", "stream1"], permutationSpec.AxesToGroups["layer2.0.conv1.weight"].Take(2));
        Assert.Equal(["stream2", "layer2.0.inner"], permutationSpec.AxesToGroups["layer2.0.conv2.weight"].Take(2));
        Assert.Equal(["stream3"], permutationSpec.AxesToGroups["layer3.2.norm2.weight"]);
        Assert.Equal([null, "stream3"], permutationSpec.AxesToGroups["linear.weight"]);
        Assert.Contains("layer3.0.shortcut.1.num_batches_tracked", permutationSpec.Unpermuted);
        Assert.Contains("linear.bias", permutationSpec.Unpermuted);
    }

    [Fact]
    public void For_BatchNorm_RunningStatisticsArePermutedButLeftOutOfTheCost()
    {
        // Arrange
        var spec = TestModels.Spec("vgg11", "batch", 0.25);

        // Act
        var group = PermutationSpecs.For(spec).GroupsByName["features.0"];

        // Assert
        Assert.Equal(
            ["features.0.weight", "features.1.weight", "features.1.bias", "features.1.running_mean", "features.1.running_var", "features.4.weight"],
            group.Axes.Select(a => a.Tensor));
        Assert.Equal(["features.0.weight", "features.1.weight", "features.1.bias", "features.4.weight"], group.CostAxes.Select(a => a.Tensor));
        Assert.False(group.EntersCost(new PermutationAxis("features.1.running_var", 0)));
        Assert.True(group.EntersCost(new PermutationAxis("features.1.weight", 0)));
    }

    [Fact]
    public void Validate_TensorNotInSpec_NamesIt()
    {
        // Arrange
        using var model = TestModels.Create("mlp", "none", 1.0);
        var shapes = TestModels.Shapes(model);
        shapes["extra.weight"] = [3, 4];

        // Act
        var error = Assert.Throws<PermutationSpecException>(() => PermutationSpecs.For(model).Validate(shapes));

        // Assert
        Assert.Contains("'extra.weight' [3,4] is not covered", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_SpecNamesATensorTheStateLacks_NamesIt()
    {
        // Arrange
        using var model = TestModels.Create("vgg11", "batch", 0.25);
        var shapes = TestModels.Shapes(model);
        shapes.Remove("features.1.running_var");

        // Act
        var error = Assert.Throws<PermutationSpecException>(() => PermutationSpecs.For(model).Validate(shapes));

        // Assert
        Assert.Contains("names tensor 'features.1.running_var', which the state dict does not have", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_AxisOfTheWrongSize_NamesGroupTensorAxisAndSizes()
    {
        // Arrange
        using var model = TestModels.Create("mlp", "none", 1.0);
        var shapes = TestModels.Shapes(model);
        shapes["2.weight"] = [10, 11];

        // Act
        var error = Assert.Throws<PermutationSpecException>(() => PermutationSpecs.For(model).Validate(shapes));

        // Assert
        Assert.Contains("group 'P0' has size 12 but axis 1 of '2.weight' has size 11 (shape [10,11])", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_AxisBeyondTheRank_NamesIt()
    {
        // Arrange
        var spec = new PermutationSpec([new PermutationGroup("P", 4, [new("w", 0), new("b", 1)])], []);
        var shapes = new Dictionary<string, long[]> { ["w"] = [4, 2], ["b"] = [4] };

        // Act
        var error = Assert.Throws<PermutationSpecException>(() => spec.Validate(shapes));

        // Assert
        Assert.Contains("group 'P' acts on axis 1 of 'b', which has shape [4] (rank 1)", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Constructor_TwoGroupsOnOneAxis_NamesBoth()
    {
        // Arrange
        PermutationGroup[] groups = [new("A", 4, [new("w", 0)]), new("B", 4, [new("w", 0)])];

        // Act
        var error = Assert.Throws<PermutationSpecException>(() => new PermutationSpec(groups, []));

        // Assert
        Assert.Contains("Axis 0 of tensor 'w' is claimed by two permutation groups, 'A' and 'B'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Constructor_GroupTwiceOnOneTensor_Throws()
    {
        // Arrange
        PermutationAxis[] axes = [new("w", 0), new("w", 1)];

        // Act
        var error = Assert.Throws<PermutationSpecException>(() => new PermutationGroup("P", 4, axes));

        // Assert
        Assert.Contains("acts on tensor 'w' twice (axes 0 and 1)", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Constructor_PermutedTensorListedAsUnpermuted_Throws()
    {
        // Arrange
        PermutationGroup[] groups = [new("P", 4, [new("w", 0)])];

        // Act
        var error = Assert.Throws<PermutationSpecException>(() => new PermutationSpec(groups, ["w"]));

        // Assert
        Assert.Contains("'w' is listed as unpermuted but group 'P' acts on it", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Permute_MissingOrInvalidPermutation_NamesTheGroup()
    {
        // Arrange
        var spec = PermutationSpecs.For(TestModels.Spec("mlp", "none", 1.0));
        var missing = spec.Identity();
        missing.Remove("P1");
        var invalid = spec.Identity();
        invalid["P2"][0] = 1;
        var state = new Dictionary<string, Tensor>();

        // Act
        var missingError = Assert.Throws<ArgumentException>(() => spec.Permute(state, missing));
        var invalidError = Assert.Throws<ArgumentException>(() => spec.Permute(state, invalid));

        // Assert
        Assert.Contains("'P1'", missingError.Message, StringComparison.Ordinal);
        Assert.Contains("'P2' is not a permutation", invalidError.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void InvertAndCompose_SmallPermutations_FollowGatherSemantics()
    {
        // Arrange
        long[] perm = [2, 0, 3, 1];

        // Act
        var inverse = PermutationSpec.Invert(perm);
        var roundTrip = PermutationSpec.Compose(perm, inverse);
        var composed = PermutationSpec.Compose(perm, [1, 0, 2, 3]);

        // Assert
        Assert.Equal([1L, 3, 0, 2], inverse);
        Assert.Equal(PermutationSpec.IdentityPermutation(4), roundTrip);
        Assert.Equal([0L, 2, 3, 1], composed);
        Assert.False(PermutationSpec.IsPermutation([0, 0, 1]));
    }
}
