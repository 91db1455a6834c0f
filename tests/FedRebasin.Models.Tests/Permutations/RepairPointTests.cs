using FedRebasin.Models.Permutations;
using TorchSharp;
using static TorchSharp.torch;

namespace FedRebasin.Models.Tests.Permutations;

public sealed class RepairPointTests
{
    public static TheoryData<string, string, double> Models => TestModels.All;

    [Theory]
    [MemberData(nameof(Models))]
    public void ForwardWithTaps_EveryArchitecture_SameOutputAndOneTapPerPointInOrder(string architecture, string norm, double width)
    {
        // Arrange
        using var scope = NewDisposeScope();
        using var model = TestModels.Create(architecture, norm, width);
        var input = TestModels.Input(3, seed: 5);
        var expected = model.call(input);
        var taps = new List<(int Index, long[] Shape)>();

        // Act
        var actual = model.ForwardWithTaps(input, (i, t) => taps.Add((i, t.shape)));

        // Assert
        Assert.True(TestModels.Same(actual, expected));
        Assert.Equal(Enumerable.Range(0, model.RepairPoints.Count), taps.Select(t => t.Index));
        Assert.All(taps, t =>
        {
            Assert.Equal(3, t.Shape[0]);
            Assert.Equal(model.RepairPoints[t.Index].Channels, t.Shape[1]);
        });
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void RepairPoints_EveryArchitecture_GroupsAndTargetsFitSpecAndState(string architecture, string norm, double width)
    {
        // Arrange
        using var model = TestModels.Create(architecture, norm, width);
        var state = model.state_dict();

        // Act
        var points = model.RepairPoints;
        var spec = PermutationSpecs.For(model);

        // Assert
        Assert.NotEmpty(points);
        Assert.Equal(points.Count, points.Select(p => p.Name).Distinct().Count());
        Assert.All(points, p =>
        {
            Assert.Equal(spec.GroupsByName[p.Group].Size, p.Channels);
            if (p.Target is { } target)
            {
                foreach (string tensor in new[] { target.Weight, target.Bias })
                {
                    Assert.Equal(p.Channels, state[tensor].shape[0]);
                    Assert.Equal(p.Group, spec.GroupAt(tensor, 0));
                }
            }
        });
    }

    [Theory]
    [InlineData("mlp", "none", new[] { "0", "2", "4" })]
    [InlineData("vgg11", "none", new[] { "features.0", "features.3", "features.6", "features.8", "features.11", "features.13", "features.16", "features.18" })]
    [InlineData("vgg11", "layer", new[] { "features.1", "features.5", "features.9", "features.12", "features.16", "features.19", "features.23", "features.26" })]
    public void RepairPoints_PlainNetworks_OnePerHiddenLayerAtTheReluInput(string architecture, string norm, string[] names)
    {
        // Arrange
        using var model = TestModels.Create(architecture, norm, 0.25);

        // Act
        var points = model.RepairPoints;

        // Assert
        Assert.Equal(names, points.Select(p => p.Name));
        Assert.All(points, p => Assert.Equal(new RepairTarget(p.Name + ".weight", p.Name + ".bias"), p.Target));
    }

    [Theory]
    [InlineData("batch", "norm1", "layer2.0.norm1", "layer2.0.shortcut.1")]
    [InlineData("none", "conv1", "layer2.0.conv1", "layer2.0.shortcut.0")]
    public void RepairPoints_ResNet20_StemBranchesAndMeasuredSums(string norm, string stem, string inner, string shortcut)
    {
        // Arrange
        using var model = TestModels.Create("resnet20", norm, 0.25);

        // Act
        var points = model.RepairPoints.ToDictionary(p => p.Name);

        // Assert: stem + 9 blocks x (inner, branch, sum) + 2 shortcuts; only the sums are not foldable.
        Assert.Equal(30, points.Count);
        Assert.Equal(9, points.Values.Count(p => !p.Foldable));
        Assert.Equal("stream1", points[stem].Group);
        Assert.Equal("layer2.0.inner", points[inner].Group);
        Assert.Equal("stream2", points[shortcut].Group);
        Assert.Equal("stream3", points["layer3.2.sum"].Group);
        Assert.Null(points["layer3.2.sum"].Target);
        Assert.Equal(model.RepairPoints[0].Name, stem);
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void RepairFold_EveryFoldablePoint_MapsThePreActivationAffinely(string architecture, string norm, double width)
    {
        // Arrange
        using var scope = NewDisposeScope();
        using var model = TestModels.Create(architecture, norm, width, seed: 1);
        using var edited = TestModels.Create(architecture, norm, width, seed: 1);
        var original = model.state_dict().ToDictionary(p => p.Key, p => p.Value.clone());
        var input = TestModels.Input(2, seed: 9);
        var random = new Random(3);
        var failures = new List<string>();

        foreach (var (point, index) in model.RepairPoints.Select((p, i) => (p, i)).Where(x => x.p.Foldable))
        {
            edited.load_state_dict(original);
            var scale = Enumerable.Range(0, point.Channels).Select(_ => 0.5 + random.NextDouble()).ToArray();
            var shift = Enumerable.Range(0, point.Channels).Select(_ => random.NextDouble() - 0.5).ToArray();
            Tensor? before = null;
            Tensor? after = null;
            model.ForwardWithTaps(input, (i, t) => before = i == index ? t.clone() : before);

            // Act
            RepairFold.Apply(edited.state_dict(), point, scale, shift);
            edited.ForwardWithTaps(input, (i, t) => after = i == index ? t.clone() : after);

            // Assert (collected so that one run reports every point)
            long[] broadcast = [1, point.Channels, .. Enumerable.Repeat(1L, (int)before!.dim() - 2)];
            var expected = before * tensor(scale).to_type(ScalarType.Float32).view(broadcast) + tensor(shift).to_type(ScalarType.Float32).view(broadcast);
            if (TestModels.MaxAbsDifference(after!, expected) > 1e-4)
            {
                failures.Add(point.Name);
            }
        }

        Assert.Empty(failures);
    }

    [Fact]
    public void RepairFold_MeasuredOnlyPoint_Throws()
    {
        // Arrange
        using var model = TestModels.Create("resnet20", "layer", 0.25);
        var sum = model.RepairPoints.First(p => !p.Foldable);

        // Act
        var error = Assert.Throws<ArgumentException>(() => RepairFold.Apply(model.state_dict(), sum, new double[sum.Channels], new double[sum.Channels]));

        // Assert
        Assert.Contains($"'{sum.Name}'", error.Message, StringComparison.Ordinal);
    }
}
