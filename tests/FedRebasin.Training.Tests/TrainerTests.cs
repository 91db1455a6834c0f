using FedRebasin.Data;
using FedRebasin.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace FedRebasin.Training.Tests;

[Collection("Sequential")]
public class TrainerTests
{
    private static readonly ImageDataset s_train = SyntheticData.Create(count: 600, channels: 1, height: 8, width: 8, classCount: 4, seed: 11);
    private static readonly ImageDataset s_test = SyntheticData.Create(count: 200, channels: 1, height: 8, width: 8, classCount: 4, seed: 11, split: DataSplit.Test);

    private static ModelSpec SmallMlp => ModelRegistry.DefaultSpec("mlp", 1, 8, 8, 4, hidden: [32, 32]);

    [Theory]
    [InlineData(OptimizerKind.Adam, 1e-2, ScheduleKind.Constant)]
    [InlineData(OptimizerKind.Sgd, 5e-2, ScheduleKind.Cosine)]
    [InlineData(OptimizerKind.Sgd, 5e-2, ScheduleKind.Step)]
    public void Train_SyntheticData_LearnsFarAboveChance(OptimizerKind optimizer, double lr, ScheduleKind schedule)
    {
        // Arrange
        using var model = ModelRegistry.Create(SmallMlp, seed: 1);
        using var train = TensorData.From(s_train);
        using var test = TensorData.From(s_test);
        var before = Evaluator.Evaluate(model, test);
        var options = new TrainingOptions { Optimizer = optimizer, LearningRate = lr, Schedule = schedule, Epochs = 5, BatchSize = 32, Seed = 3, WeightDecay = 1e-4 };

        // Act
        var report = Trainer.Train(model, train, options, cancellationToken: TestContext.Current.CancellationToken);
        var after = Evaluator.Evaluate(model, test);

        // Assert
        Assert.Equal(5, report.Epochs.Count);
        Assert.True(report.Epochs[^1].Loss < report.Epochs[0].Loss, $"training loss {report.Epochs[0].Loss} -> {report.Epochs[^1].Loss}");
        Assert.True(after.Loss < before.Loss, $"test loss {before.Loss} -> {after.Loss}");
        Assert.True(after.Accuracy > 0.8, $"test accuracy {before.Accuracy} -> {after.Accuracy}");
        Assert.Equal(200, after.Count);
    }

    [Fact]
    public void Train_SameSeed_GivesIdenticalWeights()
    {
        var options = new TrainingOptions { Epochs = 2, BatchSize = 50, Seed = 9 };
        using var train = TensorData.From(s_train);

        float[] Run()
        {
            using var model = ModelRegistry.Create(SmallMlp, seed: 2);
            Trainer.Train(model, train, options, cancellationToken: TestContext.Current.CancellationToken);
            return model.state_dict()["2.weight"].data<float>().ToArray();
        }

        float[] first = Run();
        float[] second = Run();
        Assert.Equal(first, second);
    }

    [Theory]
    [InlineData(0.9, 0.0, ScheduleKind.Constant)]
    [InlineData(0.9, 1e-3, ScheduleKind.Cosine)]
    [InlineData(0.0, 1e-3, ScheduleKind.Step)]
    public void Train_Sgd_SameWeightsBitForBitAsTorchSharpsSgd(double momentum, double weightDecay, ScheduleKind schedule)
    {
        var options = new TrainingOptions { Optimizer = OptimizerKind.Sgd, LearningRate = 0.05, Momentum = momentum, WeightDecay = weightDecay, Schedule = schedule, Epochs = 2, BatchSize = 64, Seed = 4 };

        AssertSameWeightsAsTorchSharp(options, parameters => optim.SGD(parameters, options.LearningRate, momentum, weight_decay: weightDecay));
    }

    [Theory]
    [InlineData(0.0, ScheduleKind.Constant)]
    [InlineData(1e-3, ScheduleKind.Cosine)]
    public void Train_Adam_SameWeightsBitForBitAsTorchSharpsAdam(double weightDecay, ScheduleKind schedule)
    {
        var options = new TrainingOptions { Optimizer = OptimizerKind.Adam, LearningRate = 3e-3, WeightDecay = weightDecay, Schedule = schedule, Epochs = 2, BatchSize = 64, Seed = 4 };

        AssertSameWeightsAsTorchSharp(options, parameters => optim.Adam(parameters, options.LearningRate, weight_decay: weightDecay));
    }

    /// <summary>
    /// Trains one model with <see cref="Trainer"/> and a twin from the same seed with the same batches through
    /// TorchSharp's own optimiser, then compares every weight bit for bit.
    /// </summary>
    private static void AssertSameWeightsAsTorchSharp(TrainingOptions options, Func<IEnumerable<TorchSharp.Modules.Parameter>, optim.Optimizer> createReference)
    {
        using var train = TensorData.From(s_train);
        using var ours = ModelRegistry.Create(SmallMlp, seed: 5);
        using var reference = ModelRegistry.Create(SmallMlp, seed: 5);

        Trainer.Train(ours, train, options, cancellationToken: TestContext.Current.CancellationToken);
        using (var optimizer = createReference(reference.parameters()))
        using (var generator = new Generator((ulong)options.Seed, CPU))
        {
            int n = train.Count, batches = (n + options.BatchSize - 1) / options.BatchSize;
            long step = 0;
            reference.train();
            for (int epoch = 0; epoch < options.Epochs; epoch++)
            {
                using var order = randperm(n, generator: generator);
                for (int b = 0; b < batches; b++, step++)
                {
                    using var scope = NewDisposeScope();
                    foreach (var group in optimizer.ParamGroups)
                    {
                        group.LearningRate = options.LearningRateAt(step, (long)batches * options.Epochs, batches);
                    }

                    var index = order.narrow(0, b * options.BatchSize, Math.Min(options.BatchSize, n - (b * options.BatchSize)));
                    optimizer.zero_grad();
                    nn.functional.cross_entropy(reference.call(train.Features.index_select(0, index)), train.Labels.index_select(0, index)).backward();
                    optimizer.step();
                }
            }
        }

        var expected = reference.state_dict();
        Assert.All(ours.state_dict(), entry => Assert.Equal(expected[entry.Key].data<float>().ToArray(), entry.Value.data<float>().ToArray()));
    }

    [Fact]
    public void ThrowIfDiverged_NaNWeight_NamesTheEpochAndTheCure()
    {
        // Arrange: one NaN weight makes every loss NaN, as a diverged run or a broken kernel would.
        using var train = TensorData.From(s_train);
        using var model = ModelRegistry.Create(SmallMlp, seed: 2);
        using (TorchSharp.torch.no_grad())
        {
            model.state_dict()["0.weight"][0, 0] = float.NaN;
        }

        var report = Trainer.Train(model, train, new TrainingOptions { Epochs = 1, BatchSize = 100 }, cancellationToken: TestContext.Current.CancellationToken);

        // Act
        var error = Assert.Throws<TrainingDivergedException>(() => TrainingDivergedException.ThrowIfDiverged(report, model));

        // Assert
        Assert.Contains("epoch 1", error.Message, StringComparison.Ordinal);
        Assert.Contains("--lr", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ThrowIfDiverged_FiniteRun_DoesNothing()
    {
        using var train = TensorData.From(s_train);
        using var model = ModelRegistry.Create(SmallMlp, seed: 2);
        var report = Trainer.Train(model, train, new TrainingOptions { Epochs = 1, BatchSize = 100 }, cancellationToken: TestContext.Current.CancellationToken);

        TrainingDivergedException.ThrowIfDiverged(report, model);

        Assert.True(double.IsFinite(report.Epochs[0].Loss));
    }

    [Fact]
    public void ThrowIfDiverged_FiniteLossButNaNWeightAfterIt_NamesTheTensor()
    {
        // Arrange: every recorded loss is finite, then a weight turns NaN, as when the last step applies a NaN gradient.
        using var train = TensorData.From(s_train);
        using var model = ModelRegistry.Create(SmallMlp, seed: 2);
        var report = Trainer.Train(model, train, new TrainingOptions { Epochs = 1, BatchSize = 100 }, cancellationToken: TestContext.Current.CancellationToken);
        Assert.True(double.IsFinite(report.Epochs[0].Loss));
        using (TorchSharp.torch.no_grad())
        {
            model.state_dict()["2.weight"][1, 3] = float.PositiveInfinity;
            model.state_dict()["2.bias"][0] = float.NaN;
        }

        // Act
        var error = Assert.Throws<TrainingDivergedException>(() => TrainingDivergedException.ThrowIfDiverged(report, model));

        // Assert: the first non-finite tensor in the model's order, with its count.
        Assert.Contains("tensor '2.weight' holds 1 non-finite value;", error.Message, StringComparison.Ordinal);
        Assert.Contains("no model was saved", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Train_DifferentBatchOrderSeed_GivesDifferentWeights()
    {
        using var train = TensorData.From(s_train);
        using var a = ModelRegistry.Create(SmallMlp, seed: 2);
        using var b = ModelRegistry.Create(SmallMlp, seed: 2);

        Trainer.Train(a, train, new TrainingOptions { Seed = 1, BatchSize = 50 }, cancellationToken: TestContext.Current.CancellationToken);
        Trainer.Train(b, train, new TrainingOptions { Seed = 2, BatchSize = 50 }, cancellationToken: TestContext.Current.CancellationToken);

        Assert.False(a.state_dict()["0.weight"].equal(b.state_dict()["0.weight"]).all().item<bool>());
    }

    [Fact]
    public void Train_ManyEpochs_LiveTensorCountDoesNotGrow()
    {
        // Arrange
        using var model = ModelRegistry.Create(ModelRegistry.DefaultSpec("resnet20", 1, 8, 8, 4, widthMultiplier: 0.25, norm: NormKind.Batch), seed: 1);
        using var train = TensorData.From(s_train.Subset(Enumerable.Range(0, 128).ToArray()));
        var liveAtEpochEnd = new List<long>();
        var progress = new InlineProgress(p =>
        {
            if (p.Batch == p.BatchesPerEpoch)
            {
                liveAtEpochEnd.Add(DisposeScopeManager.Statistics.ThreadTotalLiveCount);
            }
        });
        long before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;

        // Act
        Trainer.Train(model, train, new TrainingOptions { Epochs = 4, BatchSize = 32, Optimizer = OptimizerKind.Sgd, LearningRate = 0.05 }, progress, TestContext.Current.CancellationToken);
        long after = DisposeScopeManager.Statistics.ThreadTotalLiveCount;

        // Assert
        Assert.Equal(4, liveAtEpochEnd.Count);
        // The first epoch allocates the optimiser's state once; from then on nothing accumulates.
        Assert.All(liveAtEpochEnd.Skip(2), count => Assert.Equal(liveAtEpochEnd[1], count));
        Assert.Equal(before, after);
    }

    [Fact]
    public void Evaluate_MatchesDirectComputation()
    {
        using var scope = NewDisposeScope();
        using var model = ModelRegistry.Create(SmallMlp, seed: 4);
        using var test = TensorData.From(s_test);

        var result = Evaluator.Evaluate(model, test, batchSize: 64);

        model.eval();
        using var noGrad = no_grad();
        var logits = model.call(test.Features);
        double loss = nn.functional.cross_entropy(logits, test.Labels).item<float>();
        double accuracy = logits.argmax(1).eq(test.Labels).to_type(ScalarType.Float64).mean().item<double>();
        Assert.Equal(loss, result.Loss, 5);
        Assert.Equal(accuracy, result.Accuracy, 10);
    }

    [Fact]
    public void EvaluateEnsemble_AveragesProbabilitiesNotLogits()
    {
        using var scope = NewDisposeScope();
        using var a = ModelRegistry.Create(SmallMlp, seed: 4);
        using var b = ModelRegistry.Create(SmallMlp, seed: 5);
        using var test = TensorData.From(s_test);

        var result = Evaluator.EvaluateEnsemble([a, b], test, batchSize: 64);

        a.eval();
        b.eval();
        using var noGrad = no_grad();
        var probabilities = nn.functional.softmax(a.call(test.Features), 1).add(nn.functional.softmax(b.call(test.Features), 1)).div(2);
        var labelProbability = probabilities.gather(1, test.Labels.unsqueeze(1)).squeeze(1);
        double loss = labelProbability.log().neg().to_type(ScalarType.Float64).mean().item<double>();
        double accuracy = probabilities.argmax(1).eq(test.Labels).to_type(ScalarType.Float64).mean().item<double>();
        Assert.Equal(loss, result.Loss, 5);
        Assert.Equal(accuracy, result.Accuracy, 10);
        // -log of a mean is at most the mean of the -logs: the ensemble's loss never exceeds its members' mean loss.
        Assert.True(result.Loss <= (Evaluator.Evaluate(a, test).Loss + Evaluator.Evaluate(b, test).Loss) / 2 + 1e-6);
    }

    [Fact]
    public void EvaluateEnsemble_OfOneModel_IsTheModel()
    {
        using var model = ModelRegistry.Create(SmallMlp, seed: 6);
        using var test = TensorData.From(s_test);

        var alone = Evaluator.Evaluate(model, test);
        var ensemble = Evaluator.EvaluateEnsemble([model], test);

        Assert.Equal(alone.Loss, ensemble.Loss, 5);
        Assert.Equal(alone.Accuracy, ensemble.Accuracy, 12);
        Assert.Throws<ArgumentException>(() => Evaluator.EvaluateEnsemble([], test));
    }

    [Theory]
    [InlineData(ScheduleKind.Constant, 100, 0.1)]
    [InlineData(ScheduleKind.Cosine, 0, 0.1)]
    [InlineData(ScheduleKind.Cosine, 50, 0.05)]
    [InlineData(ScheduleKind.Cosine, 100, 0.0)]
    [InlineData(ScheduleKind.Step, 9, 0.1)]
    [InlineData(ScheduleKind.Step, 10, 0.01)]
    [InlineData(ScheduleKind.Step, 25, 0.001)]
    public void LearningRateAt_FollowsSchedule(ScheduleKind schedule, long step, double expected)
    {
        var options = new TrainingOptions { LearningRate = 0.1, Schedule = schedule, StepEpochs = 1, StepGamma = 0.1 };

        Assert.Equal(expected, options.LearningRateAt(step, totalSteps: 100, stepsPerEpoch: 10), 12);
    }

    [Theory]
    [InlineData("--lr")]
    [InlineData("--batch-size")]
    [InlineData("--epochs")]
    [InlineData("--momentum")]
    public void Validate_BadSetting_NamesIt(string setting)
    {
        var options = setting switch
        {
            "--lr" => new TrainingOptions { LearningRate = -1 },
            "--batch-size" => new TrainingOptions { BatchSize = 0 },
            "--epochs" => new TrainingOptions { Epochs = 0 },
            _ => new TrainingOptions { Momentum = 1.5 },
        };

        var error = Assert.Throws<ArgumentException>(options.Validate);

        Assert.StartsWith(setting, error.Message, StringComparison.Ordinal);
    }

    private sealed class InlineProgress(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report(value);
    }
}
