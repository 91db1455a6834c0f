using FedRebasin.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace FedRebasin.Training;

/// <summary>Loss and accuracy of a model on a data set.</summary>
/// <param name="Loss">Mean cross-entropy (nats per example).</param>
/// <param name="Accuracy">Fraction of examples whose arg-max logit is the label, in [0, 1].</param>
/// <param name="Count">Number of examples evaluated.</param>
public sealed record Evaluation(double Loss, double Accuracy, int Count);

/// <summary>Evaluates classifiers in eval mode without gradients.</summary>
public static class Evaluator
{
    /// <summary>Default evaluation batch size.</summary>
    // TorchSharp keeps every intermediate of a batch alive until the batch's dispose scope ends, so the peak
    // memory of a forward pass grows with the batch: 256 keeps a ResNet-20 under half a gigabyte.
    public const int DefaultBatchSize = 256;

    /// <summary>Mean loss and accuracy of <paramref name="model"/> on <paramref name="data"/>. Restores the model's train/eval mode.</summary>
    public static Evaluation Evaluate(ClassifierModel model, TensorData data, int batchSize = DefaultBatchSize)
    {
        ArgumentNullException.ThrowIfNull(model);
        return Score([model], data, batchSize, x => nn.functional.log_softmax(model.call(x), 1));
    }

    /// <summary>
    /// Loss and accuracy of the ensemble of <paramref name="models"/>: the mean of their softmax probabilities
    /// (the usual upper bar for a merge of independently trained models; it costs N forward passes per example).
    /// The loss is the cross-entropy of the averaged probabilities. Restores each model's train/eval mode.
    /// </summary>
    /// <exception cref="ArgumentException">No models.</exception>
    public static Evaluation EvaluateEnsemble(IReadOnlyList<ClassifierModel> models, TensorData data, int batchSize = DefaultBatchSize)
    {
        ArgumentNullException.ThrowIfNull(models);
        if (models.Count == 0)
        {
            throw new ArgumentException("An ensemble needs at least one model.", nameof(models));
        }

        // log of the mean probability = logsumexp over models of log-softmax, minus log N (stable). The scalar is held
        // for the whole evaluation: an implicit one per batch could be finalized during the native call (HeldScalars).
        using Scalar logCount = Math.Log(models.Count).ToScalar();
        return Score(models, data, batchSize, x => stack([.. models.Select(m => nn.functional.log_softmax(m.call(x), 1))]).logsumexp(0).sub(logCount));
    }

    /// <summary>Mean negative log-likelihood and arg-max accuracy of <paramref name="logProbabilities"/> over <paramref name="data"/>, in eval mode without gradients.</summary>
    private static Evaluation Score(IReadOnlyList<ClassifierModel> models, TensorData data, int batchSize, Func<Tensor, Tensor> logProbabilities)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        bool[] wasTraining = [.. models.Select(m => m.training)];
        try
        {
            foreach (var model in models)
            {
                model.eval();
            }

            using var noGrad = no_grad();
            double lossSum = 0;
            long correct = 0;
            int n = data.Count;
            for (int start = 0; start < n; start += batchSize)
            {
                using var scope = NewDisposeScope();
                int length = Math.Min(batchSize, n - start);
                var x = data.Features.narrow(0, start, length);
                var y = data.Labels.narrow(0, start, length);
                var scores = logProbabilities(x);
                lossSum += nn.functional.nll_loss(scores, y, reduction: nn.Reduction.Sum).item<float>();
                correct += scores.argmax(1).eq(y).sum().item<long>();
            }

            return n == 0 ? new Evaluation(double.NaN, double.NaN, 0) : new Evaluation(lossSum / n, (double)correct / n, n);
        }
        finally
        {
            for (int i = 0; i < models.Count; i++)
            {
                models[i].train(wasTraining[i]);
            }
        }
    }
}
