using System.Collections;
using System.Globalization;
using System.Text;

namespace FedRebasin.Data;

/// <summary>
/// The result of partitioning a dataset among clients: one array of example indices per client.
/// Arrays produced by <see cref="Partitioner"/> are sorted ascending, disjoint and together cover every index once.
/// The arrays are shared, not copied: treat them as read-only.
/// </summary>
#pragma warning disable CA1710 // A partitioning is a list of clients, not a "collection" type; the name says what it is.
public sealed class Partitioning : IReadOnlyList<int[]>
#pragma warning restore CA1710
{
    private readonly int[][] _clients;

    /// <summary>Wraps per-client index arrays (not copied). Use <see cref="Validate"/> to check them.</summary>
    public Partitioning(IReadOnlyList<int[]> clients)
    {
        ArgumentNullException.ThrowIfNull(clients);
        _clients = new int[clients.Count][];
        for (int i = 0; i < clients.Count; i++)
        {
            _clients[i] = clients[i] ?? throw new ArgumentException($"Client {i} has a null index array.", nameof(clients));
        }
    }

    /// <summary>Number of clients.</summary>
    public int Count => _clients.Length;

    /// <summary>Total number of indices over all clients.</summary>
    public int TotalCount => _clients.Sum(c => c.Length);

    /// <summary>The indices of client <paramref name="index"/>.</summary>
    public int[] this[int index] => _clients[index];

    /// <summary>Number of examples per client.</summary>
    public int[] Sizes() => _clients.Select(c => c.Length).ToArray();

    /// <inheritdoc/>
    public IEnumerator<int[]> GetEnumerator() => ((IEnumerable<int[]>)_clients).GetEnumerator();

    /// <inheritdoc/>
    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>
    /// Checks that every index is in <c>[0, totalCount)</c> and appears in exactly one client (disjoint and covering).
    /// </summary>
    /// <exception cref="InvalidOperationException">An index is out of range, assigned twice, or not assigned; the message says which.</exception>
    public void Validate(int totalCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(totalCount);
        var owner = new int[totalCount];
        Array.Fill(owner, -1);
        for (int c = 0; c < _clients.Length; c++)
        {
            foreach (int index in _clients[c])
            {
                if ((uint)index >= (uint)totalCount)
                {
                    throw new InvalidOperationException(
                        string.Create(CultureInfo.InvariantCulture, $"Partitioning is invalid: client {c} holds index {index}, outside 0..{totalCount - 1}."));
                }

                if (owner[index] >= 0)
                {
                    throw new InvalidOperationException(
                        string.Create(CultureInfo.InvariantCulture, $"Partitioning is invalid: index {index} is assigned to client {owner[index]} and again to client {c}."));
                }

                owner[index] = c;
            }
        }

        int missing = Array.IndexOf(owner, -1);
        if (missing >= 0)
        {
            int missingCount = owner.Count(o => o < 0);
            throw new InvalidOperationException(
                string.Create(CultureInfo.InvariantCulture, $"Partitioning is invalid: {missingCount} of {totalCount} indices are not assigned to any client (first: {missing})."));
        }
    }

    /// <summary>Per-client class counts: <c>result[client][label]</c>.</summary>
    /// <exception cref="ArgumentException">An index is outside <paramref name="labels"/> or a label outside <c>[0, classCount)</c>.</exception>
    public int[][] LabelHistogram(IReadOnlyList<int> labels, int classCount)
    {
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(classCount);
        var histogram = new int[_clients.Length][];
        for (int c = 0; c < _clients.Length; c++)
        {
            var row = new int[classCount];
            foreach (int index in _clients[c])
            {
                if ((uint)index >= (uint)labels.Count)
                {
                    throw new ArgumentException(
                        string.Create(CultureInfo.InvariantCulture, $"Client {c} holds index {index} but there are only {labels.Count} labels."),
                        nameof(labels));
                }

                int label = labels[index];
                if ((uint)label >= (uint)classCount)
                {
                    throw new ArgumentException(
                        string.Create(CultureInfo.InvariantCulture, $"Label {label} of example {index} is outside 0..{classCount - 1}."),
                        nameof(labels));
                }

                row[label]++;
            }

            histogram[c] = row;
        }

        return histogram;
    }

    /// <summary>A short multi-line summary: client count, total and min/mean/max client size.</summary>
    public string Describe()
    {
        int[] sizes = Sizes();
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"{Count} clients, {TotalCount} examples");
        if (sizes.Length > 0)
        {
            sb.Append(CultureInfo.InvariantCulture, $"; size min {sizes.Min()}, mean {sizes.Average():0.0}, max {sizes.Max()}");
        }

        return sb.ToString();
    }

    /// <summary>
    /// A printable table: one row per client with its size, number of distinct classes, largest class share and,
    /// when <paramref name="classCount"/> is at most <see cref="MaxHistogramColumns"/>, the per-class counts.
    /// </summary>
    public string Describe(IReadOnlyList<int> labels, int classCount)
    {
        int[][] histogram = LabelHistogram(labels, classCount);
        bool columns = classCount <= MaxHistogramColumns;
        var sb = new StringBuilder();
        sb.AppendLine(Describe());
        sb.Append("client    size  classes  max%");
        if (columns)
        {
            sb.Append("  |");
            for (int k = 0; k < classCount; k++)
            {
                sb.Append(CultureInfo.InvariantCulture, $" {k,5}");
            }
        }

        sb.AppendLine();
        for (int c = 0; c < histogram.Length; c++)
        {
            int[] row = histogram[c];
            int size = _clients[c].Length;
            int distinct = row.Count(v => v > 0);
            double maxShare = size == 0 ? 0 : 100.0 * row.Max() / size;
            sb.Append(CultureInfo.InvariantCulture, $"{c,6} {size,7} {distinct,8} {maxShare,5:0.0}");
            if (columns)
            {
                sb.Append("  |");
                foreach (int v in row)
                {
                    sb.Append(CultureInfo.InvariantCulture, $" {v,5}");
                }
            }

            sb.AppendLine();
        }

        return sb.ToString();
    }

    /// <summary>Largest class count for which <see cref="Describe(IReadOnlyList{int}, int)"/> prints per-class columns.</summary>
    public const int MaxHistogramColumns = 20;
}
