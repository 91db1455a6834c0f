using System.Collections.ObjectModel;
using System.Diagnostics.CodeAnalysis;

namespace FedRebasin.Tensors;

/// <summary>
/// The contents of one safetensors file: string metadata plus named tensors. Immutable.
/// </summary>
/// <remarks>
/// <see cref="Tensors"/> keeps the order given to the constructor; <see cref="SafeTensors"/> writes tensors in
/// that order with contiguous data offsets, and the reader returns them in data-offset order, so the two agree.
/// <see cref="Metadata"/> enumerates in ordinal key order (the file format does not preserve key order, and a fixed
/// order keeps written bytes deterministic).
/// </remarks>
public sealed class SafeTensorsFile
{
    private readonly Dictionary<string, TensorEntry> _byName;

    /// <summary>Creates a file from <paramref name="tensors"/> (kept in the given order) and optional metadata.</summary>
    /// <exception cref="ArgumentException">Two tensors share a name, a tensor is null, or a metadata key or value
    /// is null or not well-formed UTF-16.</exception>
    public SafeTensorsFile(IEnumerable<TensorEntry> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        var list = new List<TensorEntry>();
        _byName = new Dictionary<string, TensorEntry>(StringComparer.Ordinal);
        long totalBytes = 0;
        foreach (var tensor in tensors)
        {
            if (tensor is null)
            {
                throw new ArgumentException("Tensor list contains null.", nameof(tensors));
            }

            if (!_byName.TryAdd(tensor.Name, tensor))
            {
                throw new ArgumentException($"Duplicate tensor name {TensorNames.Quote(tensor.Name)}.", nameof(tensors));
            }

            list.Add(tensor);
            totalBytes = checked(totalBytes + tensor.ByteCount);
        }

        var sorted = new SortedDictionary<string, string>(StringComparer.Ordinal);
        if (metadata is not null)
        {
            foreach (var (key, value) in metadata)
            {
                if (key is null || value is null || !TensorNames.IsWellFormedUtf16(key) || !TensorNames.IsWellFormedUtf16(value))
                {
                    throw new ArgumentException(
                        "Metadata keys and values must be non-null, well-formed UTF-16 strings.", nameof(metadata));
                }

                sorted.Add(key, value);
            }
        }

        Tensors = list.AsReadOnly();
        Names = list.ConvertAll(t => t.Name).AsReadOnly();
        Metadata = new ReadOnlyDictionary<string, string>(sorted);
        TotalDataBytes = totalBytes;
    }

    /// <summary>A file with no tensors and no metadata.</summary>
    public static SafeTensorsFile Empty { get; } = new([]);

    /// <summary>The <c>__metadata__</c> string map, in ordinal key order; empty when the file has none.</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Tensors in data-offset order (for a constructed file: the order given).</summary>
    public IReadOnlyList<TensorEntry> Tensors { get; }

    /// <summary>Tensor names, in the same order as <see cref="Tensors"/>.</summary>
    public IReadOnlyCollection<string> Names { get; }

    /// <summary>Number of tensors.</summary>
    public int Count => Tensors.Count;

    /// <summary>Sum of the tensors' <see cref="TensorEntry.ByteCount"/>: the size of the data buffer in bytes.</summary>
    public long TotalDataBytes { get; }

    /// <summary>The tensor called <paramref name="name"/> (ordinal comparison).</summary>
    /// <exception cref="KeyNotFoundException">No tensor has that name.</exception>
    public TensorEntry this[string name] => TryGet(name, out var entry)
        ? entry
        : throw new KeyNotFoundException($"No tensor named {TensorNames.Quote(name)}.");

    /// <summary>Looks up a tensor by name (ordinal comparison).</summary>
    public bool TryGet(string name, [MaybeNullWhen(false)] out TensorEntry entry)
    {
        ArgumentNullException.ThrowIfNull(name);
        return _byName.TryGetValue(name, out entry);
    }

    /// <summary>True when a tensor called <paramref name="name"/> exists.</summary>
    public bool Contains(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return _byName.ContainsKey(name);
    }
}
