using FedRebasin.Data;
using FedRebasin.Merging;
using FedRebasin.Merging.Repair;
using FedRebasin.Models;
using FedRebasin.Training;
using TorchSharp;

namespace FedRebasin.Simulation.Tests;

public sealed class MatchingSeedSearchTests : IDisposable
{
    private static readonly ImageDataset s_train = SyntheticData.Create(count: 600, channels: 1, height: 4, width: 4, classCount: 10, seed: 21);

    private readonly List<ClassifierModel> _models = [];

    public MatchingSeedSearchTests()
    {
        // Three MLPs from different initialisations, each on its own third of the data: their hidden units are in
        // unrelated orders, so weight matching has something to find and the visiting order (the seed) can matter.
        var spec = ModelRegistry.DefaultSpec("mlp", 1, 4, 4, 10, hidden: [24, 24, 24]);
        for (int i = 0; i < 3; i++)
        {
            var model = ModelRegistry.Create(spec, seed: 100 + i);
            using var data = TensorData.From(s_train, [.. Enumerable.Range(0, 600).Where(k => k % 3 == i)]);
            Trainer.Train(model, data, new TrainingOptions { Epochs = 1, BatchSize = 32, LearningRate = 3e-3, Seed = i }, cancellationToken: TestContext.Current.CancellationToken);
            _models.Add(model);
        }
    }

    public void Dispose()
    {
        foreach (var model in _models)
        {
            model.Dispose();
        }
    }

    [Fact]
    public void Run_FourSeeds_KeepsTheMostAccurateOnValidation_AndItIsThatSeedsOwnMerge()
    {
        // Arrange
        using var validation = TensorData.Sample(s_train, 300, 5);
        double[] weights = [1, 2, 3];
        var options = new MergeOptions { Method = MergeMethod.WeightMatching, ReferenceIndex = 0 };

        // Act
        var result = MatchingSeedSearch.Run(_models, weights, options, RepairMode.None, null, validation, firstSeed: 10, trials: 4);
        using var kept = result.Best.Model;

        // Assert: every seed ran once, in order, and the seeds drew merges that score differently (so the choice is a real one).
        Assert.Equal([10L, 11, 12, 13], result.Trials.Select(t => t.Seed));
        Assert.True(result.Trials.Select(t => t.ValidationAccuracy).Distinct().Count() > 1, string.Join("; ", result.Trials));
        var expected = result.Trials.OrderByDescending(t => t.ValidationAccuracy).ThenBy(t => t.ValidationLoss).First();
        Assert.Equal(expected.Seed, result.BestSeed);

        // The kept model is the merge of that seed: made again alone, the same tensors and the same score.
        using var again = ModelMerging.Merge(_models, weights, options with { Matching = options.Matching with { Seed = result.BestSeed } }).Model;
        foreach (var (name, tensor) in kept.state_dict())
        {
            Assert.True(tensor.allclose(again.state_dict()[name], rtol: 0, atol: 0), name);
        }

        var score = Evaluator.Evaluate(kept, validation);
        Assert.Equal(expected.ValidationAccuracy, score.Accuracy, 12);
        Assert.Equal(expected.ValidationLoss, score.Loss, 12);
        foreach (var trial in result.Trials)
        {
            Assert.True(trial.Objective > 0 && trial.Seconds >= 0);
        }
    }

    [Fact]
    public void Run_OneTrial_IsThePlainMergeWithTheFirstSeed()
    {
        using var validation = TensorData.Sample(s_train, 100, 5);
        var options = new MergeOptions { Method = MergeMethod.MergeMany, Matching = new() { Seed = 99 } };

        var result = MatchingSeedSearch.Run(_models, [1, 1, 1], options, RepairMode.None, null, validation, firstSeed: 4, trials: 1);
        using var kept = result.Best.Model;
        using var plain = ModelMerging.Merge(_models, [1, 1, 1], options with { Matching = new() { Seed = 4 } }).Model;

        Assert.Equal(4, result.BestSeed);
        Assert.Single(result.Trials);
        foreach (var (name, tensor) in kept.state_dict())
        {
            Assert.True(tensor.allclose(plain.state_dict()[name], rtol: 0, atol: 0), name);
        }
    }

    [Theory]
    [InlineData(MergeMethod.WeightMatching, 0, "at least 1 trial")]
    [InlineData(MergeMethod.Naive, 2, "no matching seed")]
    public void Run_BadSettings_Refused(MergeMethod method, int trials, string expected)
    {
        using var validation = TensorData.Sample(s_train, 10, 5);

        var error = Assert.Throws<ArgumentException>(() => MatchingSeedSearch.Run(_models, [1, 1, 1], new MergeOptions { Method = method }, RepairMode.None, null, validation, 0, trials));

        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }
}
