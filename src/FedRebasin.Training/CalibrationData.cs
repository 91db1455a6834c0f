using System.Globalization;
using FedRebasin.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace FedRebasin.Training;

/// <summary>A seeded sample of a data set (usually its training split), served as input batches (for moments and repair).</summary>
public sealed class CalibrationData : IDisposable
{
    private readonly TensorData _data;
    private readonly int _batchSize;

    private CalibrationData(TensorData data, int batchSize)
    {
        _data = data;
        _batchSize = batchSize;
    }

    /// <summary>Number of examples held.</summary>
    public int Count => _data.Count;

    /// <summary>The examples as tensors (features and labels).</summary>
    public TensorData Data => _data;

    /// <summary>Takes <paramref name="examples"/> examples of <paramref name="train"/> (all when it has fewer), chosen by <paramref name="seed"/>.</summary>
    /// <exception cref="ArgumentException"><paramref name="examples"/> or <paramref name="batchSize"/> is below 1.</exception>
    public static CalibrationData Create(ImageDataset train, int examples, int seed, Device device, int batchSize = 200)
    {
        ArgumentNullException.ThrowIfNull(train);
        if (examples < 1)
        {
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"The calibration sample must hold at least 1 example, not {examples}."), nameof(examples));
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);

        return new CalibrationData(TensorData.Sample(train, examples, seed, device), batchSize);
    }

    /// <summary>The same batches, in the same order, every time it is enumerated.</summary>
    public IEnumerable<Tensor> Batches()
    {
        for (int start = 0; start < _data.Count; start += _batchSize)
        {
            yield return _data.Features.narrow(0, start, Math.Min(_batchSize, _data.Count - start));
        }
    }

    /// <inheritdoc />
    public void Dispose() => _data.Dispose();
}
