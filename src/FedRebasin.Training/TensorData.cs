using System.Globalization;
using FedRebasin.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace FedRebasin.Training;

/// <summary>
/// Examples materialised once as normalised float32 tensors on a device, so that batches are one
/// <c>index_select</c> away (the data pipeline costs almost nothing next to forward and backward).
/// </summary>
public sealed class TensorData : IDisposable
{
    private TensorData(Tensor features, Tensor labels, int classCount)
    {
        Features = features;
        Labels = labels;
        ClassCount = classCount;
    }

    /// <summary>Images, <c>(N, C, H, W)</c> float32, normalised per channel.</summary>
    public Tensor Features { get; }

    /// <summary>Class indices, <c>(N)</c> int64.</summary>
    public Tensor Labels { get; }

    /// <summary>Number of examples.</summary>
    public int Count => (int)Labels.shape[0];

    /// <summary>Number of classes of the data set.</summary>
    public int ClassCount { get; }

    /// <summary>Copies the chosen examples (all when <paramref name="indices"/> is null) to <paramref name="device"/>.</summary>
    public static TensorData From(ImageDataset dataset, IReadOnlyList<int>? indices = null, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        int[] chosen = indices?.ToArray() ?? Enumerable.Range(0, dataset.Count).ToArray();
        var features = new float[(long)chosen.Length * dataset.FeatureCount];
        var labels = new long[chosen.Length];
        dataset.CopyNormalized(chosen, features);
        dataset.CopyLabels(chosen, labels);
        var target = device ?? CPU;
        var featureTensor = tensor(features, [chosen.Length, dataset.Channels, dataset.Height, dataset.Width]);
        var labelTensor = tensor(labels);
        if (target.type != DeviceType.CPU)
        {
            using (featureTensor)
            using (labelTensor)
            {
                return new TensorData(featureTensor.to(target), labelTensor.to(target), dataset.ClassCount);
            }
        }

        return new TensorData(featureTensor, labelTensor, dataset.ClassCount);
    }

    /// <summary>
    /// Copies <paramref name="examples"/> examples of <paramref name="dataset"/> (all when it has fewer) drawn by
    /// <paramref name="seed"/>, kept in the data set's order: the same arguments give the same sample.
    /// </summary>
    /// <param name="dataset">The data set.</param>
    /// <param name="examples">How many to take.</param>
    /// <param name="seed">Seed of the shuffled order the examples are taken from.</param>
    /// <param name="device">Where the tensors go (CPU by default).</param>
    /// <param name="skip">How many examples of the shuffled order to pass over first: samples of one seed taken with
    /// <c>skip</c> = the sizes of those before them are disjoint (a validation sample beside a calibration sample).</param>
    /// <exception cref="ArgumentException">Nothing is left to take after <paramref name="skip"/>.</exception>
    public static TensorData Sample(ImageDataset dataset, int examples, int seed, Device? device = null, int skip = 0)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        ArgumentOutOfRangeException.ThrowIfNegative(skip);
        if (skip >= dataset.Count)
        {
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture,
                $"Nothing is left to sample: the data set has {dataset.Count} examples and the {skip} before this sample are taken."), nameof(skip));
        }

        int[] order = [.. Enumerable.Range(0, dataset.Count)];
        new Random(seed).Shuffle(order);
        return From(dataset, [.. order.Skip(skip).Take(Math.Min(examples, dataset.Count - skip)).Order()], device);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        Features.Dispose();
        Labels.Dispose();
    }
}
