using System.Runtime.InteropServices;
using FedRebasin.Tensors;
using FedRebasin.Torch;
using TorchSharp;
using static TorchSharp.torch;

namespace FedRebasin.Merging.Averaging;

/// <summary>
/// A weighted mean built one model at a time, so memory stays at one float64 accumulator per tensor however many
/// models are folded in (the coordinator folds each client update as it arrives). Integer tensors
/// (e.g. BatchNorm's num_batches_tracked) are not averaged: the value of the first model is kept.
/// </summary>
/// <remarks>
/// The accumulators are host memory (native, freed at once), not tensors, and a fold is one vectorised pass (<see cref="WeightedFold"/>) that
/// reads each float32 value where it lies: in a CPU tensor's memory or in the raw bytes of a received safetensors
/// payload (<see cref="Add(IReadOnlyList{TensorEntry}, double)"/>), so an upload is folded without first becoming a
/// model of tensors. The LibTorch route it replaces widened every tensor to a fresh float64 copy; on the machines
/// measured that allocation (fresh pages) and torch's mixed-dtype add cost 10–20 times the arithmetic
/// (docs/BENCHMARKS.md). Tensors on an accelerator are copied to the host one at a time.
/// </remarks>
public sealed class RunningWeightedSum : IDisposable
{
    private readonly Dictionary<string, Accumulator> _sums = new(StringComparer.Ordinal);
    private Device? _device;
    private bool _disposed;
    private bool _taken;
    private bool _faulted;

    /// <summary>Number of models folded in.</summary>
    public int Count { get; private set; }

    /// <summary>Sum of the weights folded in.</summary>
    public double TotalWeight { get; private set; }

    /// <summary>Adds <paramref name="weight"/> · <paramref name="state"/> (the state is not kept or modified).</summary>
    /// <exception cref="ArgumentException">The weight is not positive and finite, or the layout differs from the first model's.</exception>
    public void Add(IReadOnlyDictionary<string, Tensor> state, double weight) => AddMapped(state, weight, map: null);

    /// <summary>
    /// Adds <paramref name="weight"/> · map(<paramref name="state"/>) one tensor at a time: each mapped tensor lives
    /// only while it is folded, so a transformed model (e.g. a client's update permuted into the reference's frame) is
    /// never held whole. The map must keep each tensor's shape; what it returns is disposed after the fold.
    /// </summary>
    /// <exception cref="ArgumentException">The weight is not positive and finite, the layout differs from the first
    /// model's, or the map changed a shape.</exception>
    /// <remarks>A map that throws or changes a shape leaves part of the model added: the sum is then faulted and
    /// refuses every later call (callers check what the map needs before, as the coordinator does).</remarks>
    public void Add(IReadOnlyDictionary<string, Tensor> state, double weight, Func<string, Tensor, Tensor> map)
    {
        ArgumentNullException.ThrowIfNull(map);
        AddMapped(state, weight, map);
    }

    private void AddMapped(IReadOnlyDictionary<string, Tensor> state, double weight, Func<string, Tensor, Tensor>? map)
    {
        ArgumentNullException.ThrowIfNull(state);
        BeginAdd(state.Count, state.Keys, name => state[name].shape, weight);
        _device ??= state.Values.FirstOrDefault()?.device;
        using var noGrad = no_grad();
        foreach (var (name, given) in state)
        {
            // One scope per tensor: the mapped tensor and a host or float32 copy (accelerator tensors, 16-bit floats)
            // live for one tensor only.
            using var scope = NewDisposeScope();
            var tensor = map is null ? given : Map(map, name, given);

            var accumulator = Accumulator(name, tensor.shape, tensor.dtype);
            if (!StateDicts.IsFloating(tensor))
            {
                accumulator.First ??= tensor.detach().clone().DetachFromDisposeScope();
                continue;
            }

            var host = tensor.detach().cpu();
            if (host.dtype is not (ScalarType.Float32 or ScalarType.Float64))
            {
                host = host.to_type(ScalarType.Float32);
            }

            host = host.contiguous();
            if (host.dtype == ScalarType.Float32)
            {
                WeightedFold.Add(accumulator.Sum, MemoryMarshal.Cast<byte, float>(host.bytes), weight, Count == 0);
            }
            else
            {
                WeightedFold.Add(accumulator.Sum, MemoryMarshal.Cast<byte, double>(host.bytes), weight, Count == 0);
            }
        }

        Count++;
        TotalWeight += weight;
    }

    /// <summary>
    /// Adds <paramref name="weight"/> times the model stored in <paramref name="entries"/> (e.g. a received payload,
    /// read in place: nothing is copied but 16-bit floats, which are widened one tensor at a time). The entries must
    /// be in the dtypes the mean should have: the first model's dtypes are the result's.
    /// </summary>
    /// <exception cref="ArgumentException">The weight is not positive and finite, or the layout differs from the first model's.</exception>
    public void Add(IReadOnlyList<TensorEntry> entries, double weight)
    {
        ArgumentNullException.ThrowIfNull(entries);
        var byName = entries.ToDictionary(e => e.Name, StringComparer.Ordinal);
        BeginAdd(byName.Count, byName.Keys, name => byName[name].GetShapeArray(), weight);
        foreach (var entry in entries)
        {
            var accumulator = Accumulator(entry.Name, entry.GetShapeArray(), TensorConversion.ToScalarType(entry.DType));
            if (!accumulator.HasSum)
            {
                accumulator.First ??= TensorConversion.ToTensor(entry).DetachFromDisposeScope();
                continue;
            }

            switch (entry.DType)
            {
                case SafeTensorDType.F32:
                    WeightedFold.Add(accumulator.Sum, MemoryMarshal.Cast<byte, float>(entry.Data.Span), weight, Count == 0);
                    break;
                case SafeTensorDType.F64:
                    WeightedFold.Add(accumulator.Sum, MemoryMarshal.Cast<byte, double>(entry.Data.Span), weight, Count == 0);
                    break;
                default:
                    WeightedFold.Add(accumulator.Sum, entry.ToFloat32Array(), weight, Count == 0);
                    break;
            }
        }

        Count++;
        TotalWeight += weight;
    }

    /// <summary>
    /// The weighted mean as new tensors of the original types, on the first added model's device (CPU when it came as
    /// entries, unless <paramref name="device"/> says otherwise). The caller owns them.
    /// </summary>
    /// <exception cref="InvalidOperationException">Nothing was added, or the mean was taken (<see cref="TakeMean"/>).</exception>
    public Dictionary<string, Tensor> Mean(Device? device = null) => MeanCore(device, release: false);

    /// <summary>
    /// <see cref="Mean"/>, releasing each tensor's float64 accumulator as soon as its mean is made, so the mean and the
    /// sums never exist whole side by side (about one model size less at the peak). The sum can be neither added to nor
    /// read afterwards.
    /// </summary>
    /// <exception cref="InvalidOperationException">Nothing was added, or the mean was already taken.</exception>
    public Dictionary<string, Tensor> TakeMean(Device? device = null) => MeanCore(device, release: true);

    private Dictionary<string, Tensor> MeanCore(Device? device, bool release)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ThrowIfTaken();
        if (Count == 0)
        {
            throw new InvalidOperationException("No model was added to the running sum.");
        }

        var target = device ?? _device;
        using var noGrad = no_grad();
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        _taken = release;
        try
        {
            foreach (var (name, accumulator) in _sums)
            {
                result[name] = MeanOf(accumulator, target);
                if (release)
                {
                    accumulator.Dispose();
                }
            }
        }
        catch
        {
            StateDicts.DisposeAll([result]);
            throw;
        }

        return result;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        foreach (var accumulator in _sums.Values)
        {
            accumulator.Dispose();
        }

        _sums.Clear();
        _disposed = true;
    }

    private Tensor MeanOf(Accumulator accumulator, Device? device)
    {
        using var scope = NewDisposeScope();
        Tensor mean;
        if (!accumulator.HasSum)
        {
            mean = accumulator.First!.clone();
        }
        else if (accumulator.Type is ScalarType.Float32 or ScalarType.Float64)
        {
            mean = empty(accumulator.Shape, accumulator.Type);
            if (accumulator.Type == ScalarType.Float32)
            {
                WeightedFold.Divide(accumulator.Sum, TotalWeight, MemoryMarshal.Cast<byte, float>(mean.bytes));
            }
            else
            {
                WeightedFold.Divide(accumulator.Sum, TotalWeight, MemoryMarshal.Cast<byte, double>(mean.bytes));
            }
        }
        else
        {
            // 16-bit floats: through float64 (exact), then rounded once to the original type.
            var wide = empty(accumulator.Shape, ScalarType.Float64);
            WeightedFold.Divide(accumulator.Sum, TotalWeight, MemoryMarshal.Cast<byte, double>(wide.bytes));
            mean = wide.to_type(accumulator.Type);
        }

        if (device is not null && device.type != DeviceType.CPU && mean.device.type != device.type)
        {
            mean = mean.to(device);
        }

        return mean.MoveToOuterDisposeScope();
    }

    /// <summary>Applies <paramref name="map"/>; when it throws or changes the shape, the sum (possibly half added) is faulted.</summary>
    private Tensor Map(Func<string, Tensor, Tensor> map, string name, Tensor given)
    {
        Tensor mapped;
        try
        {
            mapped = map(name, given);
        }
        catch
        {
            _faulted = true;
            throw;
        }

        if (!mapped.shape.SequenceEqual(given.shape))
        {
            _faulted = true;
            throw new ArgumentException($"The map changed the shape of '{name}' from [{string.Join(',', given.shape)}] to [{string.Join(',', mapped.shape)}].", nameof(map));
        }

        return mapped;
    }

    private void ThrowIfTaken()
    {
        if (_taken)
        {
            throw new InvalidOperationException("The running sum's mean was taken; it holds nothing any more.");
        }

        if (_faulted)
        {
            throw new InvalidOperationException("A map failed in the middle of an Add; the running sum holds part of a model and cannot be used.");
        }
    }

    /// <summary>Checks the weight and, after the first model, that the names and shapes are the first model's.</summary>
    private void BeginAdd(int count, IEnumerable<string> names, Func<string, long[]> shapeOf, double weight)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ThrowIfTaken();
        if (!(weight > 0) || double.IsInfinity(weight))
        {
            throw new ArgumentException($"Averaging weights must be positive and finite, not {weight}.", nameof(weight));
        }

        if (Count == 0)
        {
            return;
        }

        foreach (string name in names)
        {
            if (!_sums.TryGetValue(name, out var accumulator))
            {
                throw new ArgumentException($"The added model has tensor '{name}' which the running sum lacks.");
            }

            long[] shape = shapeOf(name);
            if (!shape.SequenceEqual(accumulator.Shape))
            {
                throw new ArgumentException($"The added model: tensor '{name}' has shape [{string.Join(',', shape)}] but the running sum has [{string.Join(',', accumulator.Shape)}].");
            }
        }

        if (count != _sums.Count)
        {
            string missing = _sums.Keys.First(n => !names.Contains(n, StringComparer.Ordinal));
            throw new ArgumentException($"The added model has no tensor '{missing}' (which the running sum has).");
        }
    }

    private Accumulator Accumulator(string name, long[] shape, ScalarType type)
    {
        if (!_sums.TryGetValue(name, out var accumulator))
        {
            accumulator = new Accumulator(shape, type, StateDicts.IsFloating(type));
            _sums[name] = accumulator;
        }

        return accumulator;
    }
}

/// <summary>
/// One tensor's accumulator: a float64 sum for floating tensors, the first model's tensor for the others. The sum is
/// native memory, freed by <see cref="Dispose"/> at once (a managed array of this size would wait for a full
/// collection, so releasing sums one by one while the mean is built would not lower the peak).
/// </summary>
internal sealed unsafe class Accumulator : IDisposable
{
    private readonly int _length;
    private double* _sum;

    public Accumulator(long[] shape, ScalarType type, bool floating)
    {
        Shape = shape;
        Type = type;
        if (floating)
        {
            _length = checked((int)shape.Aggregate(1L, (a, b) => a * b));
            // Uninitialised: the first fold writes every element (weight · value) instead of adding to zeros.
            _sum = (double*)NativeMemory.AlignedAlloc((nuint)Math.Max(_length, 1) * sizeof(double), 64);
        }
    }

    ~Accumulator() => FreeSum();

    public long[] Shape { get; }

    public ScalarType Type { get; }

    public bool HasSum => _sum != null;

    public Span<double> Sum => _sum != null ? new Span<double>(_sum, _length) : throw new InvalidOperationException("This accumulator holds no sum.");

    public Tensor? First { get; set; }

    /// <summary>Frees the sum and the kept tensor.</summary>
    public void Dispose()
    {
        FreeSum();
        GC.SuppressFinalize(this);
        First?.Dispose();
        First = null;
    }

    private void FreeSum()
    {
        if (_sum != null)
        {
            NativeMemory.AlignedFree(_sum);
            _sum = null;
        }
    }
}
