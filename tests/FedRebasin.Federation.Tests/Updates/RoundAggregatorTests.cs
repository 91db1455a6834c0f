using FedRebasin.Federation.Strategies;
using FedRebasin.Federation.Updates;
using FedRebasin.Merging.Averaging;
using FedRebasin.Merging.Repair;
using FedRebasin.Models.Permutations;
using TorchSharp;
using static TorchSharp.torch;
using Kit = FedRebasin.Federation.Tests.Updates.UpdateTestKit;

namespace FedRebasin.Federation.Tests.Updates;

public class RoundAggregatorTests
{
    private static ValidatedUpdate Validated(UpdateValidator validator, UpdateSubmission submission)
    {
        var result = validator.Validate(submission);
        Assert.True(result.IsAccepted, result.Refusal?.ToString());
        return result.Update;
    }

    /// <summary>K permuted copies of <paramref name="global"/> as validated updates with the planted permutations.</summary>
    private static (List<ValidatedUpdate> Updates, List<Dictionary<string, long[]>> Planted) PermutedCopies(
        Models.ClassifierModel global, int k, Func<int, IReadOnlyList<ChannelMoments>?>? moments = null)
    {
        var state = Kit.State(global);
        var validator = new UpdateValidator(state, global.RepairPoints);
        var updates = new List<ValidatedUpdate>();
        var planted = new List<Dictionary<string, long[]>>();
        for (int i = 0; i < k; i++)
        {
            var perms = Kit.PermutationSpec.RandomPermutations(new Random(100 + i));
            var permuted = Kit.PermutationSpec.Permute(state, perms);
            byte[] payload = Kit.Payload(permuted);
            StateDicts.DisposeAll([permuted]);
            planted.Add(perms);
            updates.Add(Validated(validator, Kit.Submission($"client-{i}", payload, samples: i + 1, moments?.Invoke(i))));
        }

        return (updates, planted);
    }

    [Fact]
    public void Fold_WeightMatchingOfPermutedCopies_RecoversTheModelWhileFedAvgDoesNot()
    {
        // Arrange
        using var global = Kit.Model(1);
        var (updates, _) = PermutedCopies(global, 3);
        using var wm = new RoundAggregator(1, Kit.State(global), Kit.PermutationSpec, global.RepairPoints, StrategySpec.WeightMatching);

        // Act
        foreach (var update in updates)
        {
            wm.Fold(update);
            update.Dispose();
        }

        using var result = wm.Finish();

        // Assert
        float[] expected = Kit.Outputs(Kit.State(global));
        Assert.True(Kit.MaxDifference(expected, Kit.Outputs(result.State)) < 1e-4);
        Assert.NotNull(result.ShadowFedAvg);
        Assert.True(Kit.MaxDifference(expected, Kit.Outputs(result.ShadowFedAvg)) > 1e-2);
        Assert.Equal(6, result.TotalSamples);
        Assert.All(result.Clients, c => Assert.True(c.Aligned && c.ObjectiveAfter >= c.ObjectiveBefore));
    }

    [Fact]
    public void Fold_FedAvgOfPermutedCopies_DoesNotRecoverTheModel()
    {
        using var global = Kit.Model(1);
        var (updates, _) = PermutedCopies(global, 3);
        using var fedavg = new RoundAggregator(1, Kit.State(global), Kit.PermutationSpec, global.RepairPoints, StrategySpec.FedAvg);

        foreach (var update in updates)
        {
            fedavg.Fold(update);
            update.Dispose();
        }

        using var result = fedavg.Finish();

        Assert.True(Kit.MaxDifference(Kit.Outputs(Kit.State(global)), Kit.Outputs(result.State)) > 1e-2);
        Assert.All(result.Clients, c => Assert.False(c.Aligned));
    }

    [Fact]
    public void Finish_FedAvgWithCountsOneAndThree_IsQuarterThreeQuarterMix()
    {
        // Arrange
        using var global = Kit.Model(1);
        using var a = Kit.Model(2);
        using var b = Kit.Model(3);
        var validator = new UpdateValidator(Kit.State(global), global.RepairPoints);
        using var ua = Validated(validator, Kit.Submission("a", Kit.Payload(Kit.State(a)), samples: 1));
        using var ub = Validated(validator, Kit.Submission("b", Kit.Payload(Kit.State(b)), samples: 3));
        using var aggregator = new RoundAggregator(1, Kit.State(global), Kit.PermutationSpec, global.RepairPoints, StrategySpec.FedAvg);

        // Act
        aggregator.Fold(ua);
        aggregator.Fold(ub);
        using var result = aggregator.Finish();

        // Assert
        using var scope = NewDisposeScope();
        foreach (var (name, ta) in Kit.State(a))
        {
            var expected = ta.mul(0.25).add(Kit.State(b)[name].mul(0.75));
            Assert.True(expected.allclose(result.State[name], rtol: 1e-5, atol: 1e-6), name);
            Assert.True(result.ShadowFedAvg![name].allclose(result.State[name], rtol: 0, atol: 0), name);
        }
    }

    [Fact]
    public void Finish_Median_EqualsCoordinateMedianOfTheUpdates()
    {
        // Arrange
        using var global = Kit.Model(1);
        var models = new[] { Kit.Model(2), Kit.Model(3), Kit.Model(4) };
        var validator = new UpdateValidator(Kit.State(global), global.RepairPoints);
        using var aggregator = new RoundAggregator(1, Kit.State(global), Kit.PermutationSpec, global.RepairPoints, StrategySpec.Parse("median"));

        // Act
        for (int i = 0; i < models.Length; i++)
        {
            using var update = Validated(validator, Kit.Submission($"c{i}", Kit.Payload(Kit.State(models[i])), samples: 5));
            aggregator.Fold(update);
        }

        using var result = aggregator.Finish();

        // Assert
        using var scope = NewDisposeScope();
        var expected = Aggregation.Robust(models.Select(m => (IReadOnlyDictionary<string, Tensor>)Kit.State(m)).ToList(), AggregationKind.Median);
        foreach (var (name, tensor) in expected)
        {
            Assert.True(tensor.allclose(result.State[name], rtol: 0, atol: 0), name);
        }

        foreach (var model in models)
        {
            model.Dispose();
        }
    }

    [Fact]
    public void Finish_WeightMatchingMedianOfPermutedCopies_RecoversTheModel()
    {
        using var global = Kit.Model(1);
        var (updates, _) = PermutedCopies(global, 3);
        using var aggregator = new RoundAggregator(1, Kit.State(global), Kit.PermutationSpec, global.RepairPoints, StrategySpec.Parse("wm+median"));

        foreach (var update in updates)
        {
            aggregator.Fold(update);
            update.Dispose();
        }

        using var result = aggregator.Finish();

        Assert.True(Kit.MaxDifference(Kit.Outputs(Kit.State(global)), Kit.Outputs(result.State)) < 1e-4);
    }

    [Theory]
    [InlineData(RepairTargetRule.Pool)]
    [InlineData(RepairTargetRule.Mix)]
    public void Finish_Moments_TargetsCombineTheAlignedClientMomentsByTheRule(RepairTargetRule rule)
    {
        // Arrange: client i's moments are measured in the global frame, then carried into its permuted frame.
        using var global = Kit.Model(1);
        var points = global.RepairPoints;
        var inGlobalFrame = Enumerable.Range(0, 3).Select(i => Kit.Moments(points, i, shift: i)).ToList();
        var planted = Enumerable.Range(0, 3).Select(i => Kit.PermutationSpec.RandomPermutations(new Random(100 + i))).ToList();
        var (updates, _) = PermutedCopies(global, 3, i => inGlobalFrame[i].Select((m, p) => m.Permute(planted[i][points[p].Group])).ToList());
        using var aggregator = new RoundAggregator(1, Kit.State(global), Kit.PermutationSpec, points, StrategySpec.Parse("wm+repair"), new RoundAggregatorOptions { TargetRule = rule });

        // Act
        foreach (var update in updates)
        {
            aggregator.Fold(update);
            update.Dispose();
        }

        using var result = aggregator.Finish();

        // Assert: weights are the sample counts 1, 2, 3; the moments come back in the global frame.
        var weighted = inGlobalFrame.Select((m, i) => (m, (double)(i + 1))).ToList();
        var expected = rule == RepairTargetRule.Pool ? RepairTargets.Pool(weighted) : RepairTargets.Mix(weighted);
        Assert.NotNull(result.RepairTargets);
        for (int p = 0; p < points.Count; p++)
        {
            for (int c = 0; c < points[p].Channels; c++)
            {
                Assert.Equal(expected.Means[p][c], result.RepairTargets.Means[p][c], 9);
                Assert.Equal(expected.Stds[p][c], result.RepairTargets.Stds[p][c], 9);
            }
        }
    }

    [Fact]
    public void Fold_SameClientTwice_ThrowsAndCountsOnce()
    {
        using var global = Kit.Model(1);
        var validator = new UpdateValidator(Kit.State(global), global.RepairPoints);
        byte[] payload = Kit.Payload(Kit.State(global));
        using var first = Validated(validator, Kit.Submission("alice", payload));
        using var again = Validated(validator, Kit.Submission("alice", payload));
        using var aggregator = new RoundAggregator(1, Kit.State(global), Kit.PermutationSpec, global.RepairPoints, StrategySpec.WeightMatching);
        aggregator.Fold(first);

        var error = Assert.Throws<InvalidOperationException>(() => aggregator.Fold(again));

        Assert.Contains("alice", error.Message, StringComparison.Ordinal);
        Assert.Equal(1, aggregator.Count);
    }

    [Fact]
    public void Fold_WrongRound_ThrowsAndLeavesNoTrace()
    {
        using var global = Kit.Model(1);
        var validator = new UpdateValidator(Kit.State(global), global.RepairPoints);
        using var update = Validated(validator, Kit.Submission("alice", Kit.Payload(Kit.State(global)), round: 2));
        using var aggregator = new RoundAggregator(1, Kit.State(global), Kit.PermutationSpec, global.RepairPoints, StrategySpec.WeightMatching);

        Assert.Throws<ArgumentException>(() => aggregator.Fold(update));

        Assert.Equal(0, aggregator.Count);
        Assert.Throws<InvalidOperationException>(aggregator.Finish);
    }

    [Fact]
    public void Fold_ShadowDisabled_NoShadowState()
    {
        using var global = Kit.Model(1);
        var validator = new UpdateValidator(Kit.State(global), global.RepairPoints);
        using var update = Validated(validator, Kit.Submission("alice", Kit.Payload(Kit.State(global))));
        using var aggregator = new RoundAggregator(
            1, Kit.State(global), Kit.PermutationSpec, global.RepairPoints, StrategySpec.WeightMatching, new RoundAggregatorOptions { ShadowFedAvg = false });

        aggregator.Fold(update);
        using var result = aggregator.Finish();

        Assert.Null(result.ShadowFedAvg);
        Assert.Null(result.RepairTargets);
    }

    [Fact]
    public void SeedFor_SameInputs_Stable()
    {
        long a = RoundAggregator.SeedFor(3, "alice");

        Assert.Equal(a, RoundAggregator.SeedFor(3, "alice"));
        Assert.NotEqual(a, RoundAggregator.SeedFor(3, "bob"));
        Assert.NotEqual(a, RoundAggregator.SeedFor(4, "alice"));
    }

    [Theory]
    [InlineData("wm+repair")]
    [InlineData("wm+median")]
    [InlineData("fedavg")]
    public void Round_ValidateFoldFinish_LiveTensorCountBackToBaseline(string strategy)
    {
        // Arrange
        using var global = Kit.Model(1);
        using var other = Kit.Model(2);
        var points = global.RepairPoints;
        byte[] first = Kit.Payload(Kit.State(other));
        byte[] second = Kit.Payload(Kit.State(global));
        var moments = Kit.Moments(points, 1, 0);
        var reference = Kit.State(global);
        long baseline = DisposeScopeManager.Statistics.ThreadTotalLiveCount;

        // Act
        var validator = new UpdateValidator(reference, points);
        using (var aggregator = new RoundAggregator(1, reference, Kit.PermutationSpec, points, StrategySpec.Parse(strategy)))
        {
            using (var a = Validated(validator, Kit.Submission("a", first, 2, moments)))
            using (var b = Validated(validator, Kit.Submission("b", second, 3, moments)))
            {
                aggregator.Fold(a);
                aggregator.Fold(b);
            }

            using var result = aggregator.Finish();
        }

        // Assert
        Assert.Equal(baseline, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
    }

    [Fact]
    public void Fold_PlainMean_FoldsThePayloadWithoutMakingTensors()
    {
        // Arrange: the MLP has float tensors only, so the running sum holds no tensor either.
        using var global = Kit.Model(1);
        using var other = Kit.Model(2);
        var reference = Kit.State(global);
        var validator = new UpdateValidator(reference, global.RepairPoints);
        using var update = Validated(validator, Kit.Submission("a", Kit.Payload(Kit.State(other)), 2));
        using var aggregator = new RoundAggregator(1, reference, Kit.PermutationSpec, global.RepairPoints, StrategySpec.FedAvg);
        long before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;

        // Act
        aggregator.Fold(update);
        long afterFold = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        _ = update.State;
        long afterState = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        using var result = aggregator.Finish();

        // Assert: no tensor was made by the fold; reading State makes them on demand; the mean is the one update.
        Assert.Equal(before, afterFold);
        Assert.Equal(reference.Count, afterState - afterFold);
        foreach (var (name, tensor) in Kit.State(other))
        {
            Assert.True(tensor.allclose(result.State[name], rtol: 0, atol: 0), name);
        }
    }
}
