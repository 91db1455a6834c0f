using FedRebasin.Models.Permutations;
using TorchSharp;
using static TorchSharp.torch;

namespace FedRebasin.Models.Tests.Permutations;

public sealed class ChannelMomentsTests
{
    public static TheoryData<string, string, double> Models => TestModels.All;

    [Fact]
    public void Add_SmallMatrix_ExactSums()
    {
        // Arrange
        using var scope = NewDisposeScope();
        var moments = new ChannelMoments(2);

        // Act
        moments.Add(tensor(new float[] { 1, 2, 3, 4 }).reshape(2, 2));

        // Assert
        Assert.Equal(2, moments.Count);
        Assert.Equal([4.0, 6.0], moments.Sum);
        Assert.Equal([10.0, 20.0], moments.SumSquares);
        Assert.Equal([2.0, 3.0], moments.Mean());
        Assert.Equal([1.0, 1.0], moments.Std());
    }

    [Theory]
    [InlineData("mlp", "none", 1.0)]
    [InlineData("vgg11", "batch", 0.25)]
    [InlineData("resnet20", "layer", 0.25)]
    public void Collect_EveryPoint_MatchesTorchOnTheConcatenatedPreActivations(string architecture, string norm, double width)
    {
        // Arrange
        using var scope = NewDisposeScope();
        using var model = TestModels.Create(architecture, norm, width);
        Tensor[] batches = [TestModels.Input(3, seed: 1), TestModels.Input(5, seed: 2)];
        var tapped = model.RepairPoints.Select(_ => new List<Tensor>()).ToArray();
        using (no_grad())
        {
            foreach (var batch in batches)
            {
                model.ForwardWithTaps(batch, (i, t) => tapped[i].Add(t.to_type(ScalarType.Float64)));
            }
        }

        // Act
        var moments = MomentCollector.Collect(model, batches);

        // Assert
        Assert.Equal(model.RepairPoints.Count, moments.Count);
        for (int i = 0; i < moments.Count; i++)
        {
            var all = cat(tapped[i], 0);
            long[] dims = all.dim() == 2 ? [0] : [0, 2, 3];
            var mean = all.mean(dims).data<double>().ToArray();
            var std = all.std(dims, unbiased: false).data<double>().ToArray();
            Assert.Equal(all.numel() / moments[i].Channels, moments[i].Count);
            AssertClose(mean, moments[i].Mean(), 1e-6);
            AssertClose(std, moments[i].Std(), 1e-6);
        }
    }

    [Fact]
    public void Merge_TwoHalves_EqualsTheWhole()
    {
        // Arrange
        using var scope = NewDisposeScope();
        using var model = TestModels.Create("resnet20", "batch", 0.25);
        var first = TestModels.Input(4, seed: 1);
        var second = TestModels.Input(2, seed: 2);
        var whole = MomentCollector.Collect(model, [first, second]);

        // Act
        var merged = MomentCollector.Collect(model, [first]);
        var rest = MomentCollector.Collect(model, [second]);
        for (int i = 0; i < merged.Count; i++)
        {
            merged[i].Merge(rest[i]);
        }

        // Assert
        for (int i = 0; i < whole.Count; i++)
        {
            Assert.Equal(whole[i].Count, merged[i].Count);
            AssertClose([.. whole[i].Sum], [.. merged[i].Sum], 1e-9);
            AssertClose([.. whole[i].SumSquares], [.. merged[i].SumSquares], 1e-9);
        }
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void Permute_MomentsOfAModel_EqualMomentsOfThePermutedModel(string architecture, string norm, double width)
    {
        // Arrange
        using var scope = NewDisposeScope();
        using var model = TestModels.Create(architecture, norm, width, seed: 1);
        using var permutedModel = TestModels.Create(architecture, norm, width, seed: 2);
        var spec = PermutationSpecs.For(model);
        var permutations = spec.RandomPermutations(new Random(5));
        permutedModel.load_state_dict(spec.Permute(model.state_dict(), permutations));
        Tensor[] batches = [TestModels.Input(4, seed: 3), TestModels.Input(4, seed: 4)];
        var original = MomentCollector.Collect(model, batches);

        // Act
        var measured = MomentCollector.Collect(permutedModel, batches);
        var predicted = original.Select((m, i) => m.Permute(permutations[model.RepairPoints[i].Group])).ToList();

        // Assert
        for (int i = 0; i < measured.Count; i++)
        {
            Assert.Equal(predicted[i].Count, measured[i].Count);
            AssertClose(predicted[i].Mean(), measured[i].Mean(), 1e-5);
            AssertClose(predicted[i].Std(), measured[i].Std(), 1e-5);
        }
    }

    [Fact]
    public void Collect_TrainingModel_RestoresTrainingMode()
    {
        // Arrange
        using var scope = NewDisposeScope();
        using var model = TestModels.Create("vgg11", "batch", 0.25);
        model.train();
        var runningMean = model.state_dict()["features.1.running_mean"].clone();

        // Act
        var moments = MomentCollector.Collect(model, [TestModels.Input(2, seed: 1)]);

        // Assert: evaluated in eval mode (running statistics untouched), then back in training mode.
        Assert.True(model.training);
        Assert.True(TestModels.Same(model.state_dict()["features.1.running_mean"], runningMean));
        Assert.All(moments, m => Assert.True(m.Count > 0));
    }

    [Fact]
    public void Collect_NoBatches_GivesEmptyMoments()
    {
        // Arrange
        using var model = TestModels.Create("mlp", "none", 1.0);

        // Act
        var moments = MomentCollector.Collect(model, []);

        // Assert
        Assert.All(moments, m => Assert.Equal(0, m.Count));
        Assert.Throws<InvalidOperationException>(() => moments[0].Mean());
    }

    [Fact]
    public void Std_RoundOffBelowZero_ClampsToZero()
    {
        // Arrange
        var moments = new ChannelMoments(1, [2.0], [4.0 - 1e-12]);

        // Act
        var std = moments.Std();

        // Assert
        Assert.Equal([0.0], std);
    }

    [Fact]
    public void Permute_Moments_GathersChannels()
    {
        // Arrange
        var moments = new ChannelMoments(2, [1.0, 2.0, 3.0], [10.0, 20.0, 30.0]);

        // Act
        var permuted = moments.Permute([2, 0, 1]);

        // Assert
        Assert.Equal([3.0, 1.0, 2.0], permuted.Sum);
        Assert.Equal([30.0, 10.0, 20.0], permuted.SumSquares);
        Assert.Equal(2, permuted.Count);
        Assert.Throws<ArgumentException>(() => moments.Permute([0, 0, 1]));
    }

    [Fact]
    public void Add_WrongShape_Throws()
    {
        // Arrange
        using var scope = NewDisposeScope();
        var moments = new ChannelMoments(3);

        // Act
        var wrongChannels = Assert.Throws<ArgumentException>(() => moments.Add(zeros(2, 4)));
        var wrongRank = Assert.Throws<ArgumentException>(() => moments.Add(zeros(2, 3, 4)));

        // Assert
        Assert.Contains("expected 3", wrongChannels.Message, StringComparison.Ordinal);
        Assert.Contains("rank 3", wrongRank.Message, StringComparison.Ordinal);
    }

    private static void AssertClose(double[] expected, double[] actual, double tolerance)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int c = 0; c < expected.Length; c++)
        {
            double scale = Math.Max(1, Math.Abs(expected[c]));
            Assert.True(Math.Abs(expected[c] - actual[c]) <= tolerance * scale, $"channel {c}: expected {expected[c]}, got {actual[c]}");
        }
    }
}
