using TorchSharp;
using static TorchSharp.torch;

namespace FedRebasin.Merging.Averaging;

/// <summary>Helpers for state dicts (tensor name → tensor) used by the merge engine.</summary>
public static class StateDicts
{
    /// <summary>Detached copies of a module's parameters and buffers (never the live tensors).</summary>
    public static Dictionary<string, Tensor> Clone(IReadOnlyDictionary<string, Tensor> state)
    {
        ArgumentNullException.ThrowIfNull(state);
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        return state.ToDictionary(p => p.Key, p => p.Value.detach().clone().MoveToOuterDisposeScope(), StringComparer.Ordinal);
    }

    /// <summary>
    /// Copies <paramref name="source"/> into the module's own tensors (<paramref name="target"/>, its state dict), in
    /// place: loading a state into a model that is kept costs a copy, where building a module costs its random
    /// initialisation too.
    /// </summary>
    /// <exception cref="ArgumentException">A tensor of the target is missing from the source or has another shape.</exception>
    public static void CopyInto(IReadOnlyDictionary<string, Tensor> target, IReadOnlyDictionary<string, Tensor> source)
    {
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(source);
        foreach (var (name, tensor) in target)
        {
            // All checked before anything is copied, so a refused state leaves the target as it was.
            if (!source.TryGetValue(name, out var value) || !value.shape.SequenceEqual(tensor.shape))
            {
                throw new ArgumentException(value is null
                    ? $"The state has no tensor '{name}'."
                    : $"Tensor '{name}' has shape [{string.Join(',', value.shape)}] but the model's is [{string.Join(',', tensor.shape)}].");
            }
        }

        using var noGrad = no_grad();
        foreach (var (name, tensor) in target)
        {
            tensor.copy_(source[name]);
        }
    }

    /// <summary>Disposes every tensor of a state dict the caller owns.</summary>
    public static void DisposeAll(IEnumerable<IReadOnlyDictionary<string, Tensor>> states)
    {
        ArgumentNullException.ThrowIfNull(states);
        foreach (var state in states)
        {
            foreach (var tensor in state.Values)
            {
                tensor.Dispose();
            }
        }
    }

    /// <summary>Checks that every state has the same tensor names and shapes as the first; names the first difference.</summary>
    /// <exception cref="ArgumentException">Names or shapes differ.</exception>
    public static void RequireSameLayout(IReadOnlyList<IReadOnlyDictionary<string, Tensor>> states, IReadOnlyList<string>? sources = null)
    {
        ArgumentNullException.ThrowIfNull(states);
        if (states.Count == 0)
        {
            throw new ArgumentException("No models to merge.");
        }

        string Source(int i) => sources is not null && i < sources.Count ? sources[i] : $"model {i}";
        var first = states[0];
        for (int i = 1; i < states.Count; i++)
        {
            foreach (var (name, tensor) in first)
            {
                if (!states[i].TryGetValue(name, out var other))
                {
                    throw new ArgumentException($"{Source(i)} has no tensor '{name}' (which {Source(0)} has).");
                }

                if (!tensor.shape.SequenceEqual(other.shape))
                {
                    throw new ArgumentException($"{Source(i)}: tensor '{name}' has shape [{string.Join(',', other.shape)}] but {Source(0)} has [{string.Join(',', tensor.shape)}].");
                }
            }

            foreach (string name in states[i].Keys.Where(n => !first.ContainsKey(n)))
            {
                throw new ArgumentException($"{Source(i)} has tensor '{name}' which {Source(0)} lacks.");
            }
        }
    }

    /// <summary>Whether a tensor holds floating-point values (integer buffers such as num_batches_tracked are not averaged).</summary>
    public static bool IsFloating(Tensor tensor) => IsFloating(tensor.dtype);

    /// <summary>Whether tensors of <paramref name="type"/> hold floating-point values (and are averaged).</summary>
    public static bool IsFloating(ScalarType type) => type is ScalarType.Float32 or ScalarType.Float64 or ScalarType.Float16 or ScalarType.BFloat16;
}
