using TorchSharp;
using static TorchSharp.torch;

namespace FedRebasin.Merging.Averaging;

/// <summary>
/// A weighted mean built one model at a time, so memory stays at one float64 accumulator per tensor however many
/// models are folded in (the coordinator folds each client update as it arrives). Integer tensors
/// (e.g. BatchNorm's num_batches_tracked) are not averaged: the value of the first model is kept.
/// </summary>
public sealed class RunningWeightedSum : IDisposable
{
    private readonly Dictionary<string, Tensor> _sums = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ScalarType> _types = new(StringComparer.Ordinal);
    private bool _disposed;

    /// <summary>Number of models folded in.</summary>
    public int Count { get; private set; }

    /// <summary>Sum of the weights folded in.</summary>
    public double TotalWeight { get; private set; }

    /// <summary>Adds <paramref name="weight"/> · <paramref name="state"/> (the state is not kept or modified).</summary>
    /// <exception cref="ArgumentException">The weight is not positive and finite, or the layout differs from the first model's.</exception>
    public void Add(IReadOnlyDictionary<string, Tensor> state, double weight)
    {
        ArgumentNullException.ThrowIfNull(state);
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (!(weight > 0) || double.IsInfinity(weight))
        {
            throw new ArgumentException($"Averaging weights must be positive and finite, not {weight}.", nameof(weight));
        }

        if (Count > 0)
        {
            StateDicts.RequireSameLayout([_sums, state], ["the running sum", "the added model"]);
        }

        using var noGrad = no_grad();
        foreach (var (name, tensor) in state)
        {
            // One scope per tensor: its temporaries (detached view, widened float64 copy) are freed before the next
            // tensor is widened, so the extra memory is one tensor, not a second float64 model.
            using var scope = NewDisposeScope();
            if (!_sums.TryGetValue(name, out var sum))
            {
                _types[name] = tensor.dtype;
                var first = StateDicts.IsFloating(tensor)
                    ? tensor.detach().to_type(ScalarType.Float64, copy: true).mul_(weight)
                    : tensor.detach().clone();
                _sums[name] = first.DetachFromDisposeScope();
                continue;
            }

            if (StateDicts.IsFloating(tensor))
            {
                sum.add_(tensor.detach().to_type(ScalarType.Float64), alpha: weight);
            }
        }

        Count++;
        TotalWeight += weight;
    }

    /// <summary>The weighted mean as new tensors of the original types. The caller owns them.</summary>
    /// <exception cref="InvalidOperationException">Nothing was added.</exception>
    public Dictionary<string, Tensor> Mean()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (Count == 0)
        {
            throw new InvalidOperationException("No model was added to the running sum.");
        }

        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        return _sums.ToDictionary(
            p => p.Key,
            p => (StateDicts.IsFloating(p.Value) ? p.Value.div(TotalWeight).to_type(_types[p.Key]) : p.Value.clone()).MoveToOuterDisposeScope(),
            StringComparer.Ordinal);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        foreach (var sum in _sums.Values)
        {
            sum.Dispose();
        }

        _sums.Clear();
        _disposed = true;
    }
}
