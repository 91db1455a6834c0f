using FedRebasin.Data;
using FedRebasin.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace FedRebasin.Cli;

/// <summary>A seeded sample of a data set's training split, served as input batches (for moments and repair).</summary>
internal sealed class CalibrationData : IDisposable
{
    private readonly TensorData _data;
    private readonly int _batchSize;

    private CalibrationData(TensorData data, int batchSize)
    {
        _data = data;
        _batchSize = batchSize;
    }

    public int Count => _data.Count;

    public static CalibrationData Create(ImageDataset train, int examples, int seed, Device device, int batchSize = 200)
    {
        if (examples < 1)
        {
            throw new ArgumentException($"--calibration must be at least 1, not {examples}.");
        }

        var random = new Random(seed);
        int[] order = Enumerable.Range(0, train.Count).ToArray();
        random.Shuffle(order);
        int[] chosen = order.Take(Math.Min(examples, train.Count)).Order().ToArray();
        return new CalibrationData(TensorData.From(train, chosen, device), batchSize);
    }

    /// <summary>The same batches, in the same order, every time it is enumerated.</summary>
    public IEnumerable<Tensor> Batches()
    {
        for (int start = 0; start < _data.Count; start += _batchSize)
        {
            yield return _data.Features.narrow(0, start, Math.Min(_batchSize, _data.Count - start));
        }
    }

    public void Dispose() => _data.Dispose();
}
