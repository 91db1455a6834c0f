using System.Globalization;

namespace FedRebasin.Data;

/// <summary>
/// Splits example indices among federated clients according to a <see cref="PartitionSpec"/>.
/// Output depends only on the arguments (own PRNG, portable arithmetic): the same call gives the same
/// partitioning on every machine. Every client's array is sorted ascending; the arrays are disjoint and together
/// cover <c>0 .. labels.Count - 1</c> exactly once.
/// </summary>
public static class Partitioner
{
    /// <summary>
    /// How many complete Dirichlet draws are tried before giving up when some client keeps getting fewer than
    /// <see cref="DirichletPartitionSpec.MinPartitionSize"/> examples.
    /// </summary>
    public const int MaxDirichletAttempts = 1000;

    /// <summary>Partitions the examples of <paramref name="dataset"/>; see <see cref="Partition(IReadOnlyList{int}, int, int, PartitionSpec, int)"/>.</summary>
    public static Partitioning Partition(ImageDataset dataset, int clients, PartitionSpec spec, int seed)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        return Partition(dataset.Labels, dataset.ClassCount, clients, spec, seed);
    }

    /// <summary>
    /// Partitions indices <c>0 .. labels.Count - 1</c> among <paramref name="clients"/> clients.
    /// </summary>
    /// <param name="labels">Class label of every example, each in <c>[0, classCount)</c>.</param>
    /// <param name="classCount">Number of classes.</param>
    /// <param name="clients">Number of clients; at least 1 and at most <c>labels.Count</c>.</param>
    /// <param name="spec">IID, Dirichlet or shards.</param>
    /// <param name="seed">Seed: same inputs and seed give the identical partitioning.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="clients"/> or <paramref name="classCount"/> is not positive.</exception>
    /// <exception cref="ArgumentException">More clients than examples, a label out of range, <c>min * clients</c> above the
    /// example count (Dirichlet), or fewer examples than <c>clients * K</c> shards.</exception>
    /// <exception cref="InvalidOperationException">Dirichlet: no draw in <see cref="MaxDirichletAttempts"/> gave every client its minimum.</exception>
    public static Partitioning Partition(IReadOnlyList<int> labels, int classCount, int clients, PartitionSpec spec, int seed)
    {
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(classCount);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(clients);
        int n = labels.Count;
        if (clients > n)
        {
            throw new ArgumentException(
                string.Create(CultureInfo.InvariantCulture, $"Cannot split {n} examples among {clients} clients: every client needs at least one example."),
                nameof(clients));
        }

        for (int i = 0; i < n; i++)
        {
            if ((uint)labels[i] >= (uint)classCount)
            {
                throw new ArgumentException(
                    string.Create(CultureInfo.InvariantCulture, $"Label {labels[i]} of example {i} is outside 0..{classCount - 1}."),
                    nameof(labels));
            }
        }

        var rng = new DeterministicRandom(seed, stream: spec switch
        {
            IidPartitionSpec => 1,
            DirichletPartitionSpec => 2,
            _ => 3,
        });

        int[][] parts = spec switch
        {
            IidPartitionSpec => Iid(n, clients, rng),
            DirichletPartitionSpec d => Dirichlet(labels, classCount, clients, d, rng),
            ShardsPartitionSpec s => Shards(labels, classCount, clients, s.ShardsPerClient, rng),
            _ => throw new ArgumentException($"Unsupported partition spec '{spec}'.", nameof(spec)),
        };

        foreach (int[] part in parts)
        {
            Array.Sort(part);
        }

        return new Partitioning(parts);
    }

    private static int[][] Iid(int n, int clients, DeterministicRandom rng)
    {
        int[] order = Enumerable.Range(0, n).ToArray();
        rng.Shuffle(order.AsSpan());
        var parts = new int[clients][];
        int start = 0;
        for (int c = 0; c < clients; c++)
        {
            int size = (n / clients) + (c < n % clients ? 1 : 0);
            parts[c] = order.AsSpan(start, size).ToArray();
            start += size;
        }

        return parts;
    }

    private static int[][] Dirichlet(IReadOnlyList<int> labels, int classCount, int clients, DirichletPartitionSpec spec, DeterministicRandom rng)
    {
        int n = labels.Count;
        int min = spec.MinPartitionSize;
        if ((long)min * clients > n)
        {
            throw new ArgumentException(
                string.Create(CultureInfo.InvariantCulture, $"{spec}: {clients} clients with at least {min} examples each need {(long)min * clients} examples, but there are only {n}; lower min (e.g. 'dirichlet:{spec.Alpha:R},min={n / clients}') or use fewer clients."),
                nameof(spec));
        }

        int[][] byClass = GroupByClass(labels, classCount);
        var lists = new List<int>[clients];
        for (int c = 0; c < clients; c++)
        {
            lists[c] = new List<int>(n / clients + 16);
        }

        var proportions = new double[clients];
        var cuts = new int[clients + 1];
        int[] scratch = new int[byClass.Length == 0 ? 0 : byClass.Max(a => a.Length)];
        double balanceLimit = (double)n / clients;
        for (int attempt = 0; attempt < MaxDirichletAttempts; attempt++)
        {
            foreach (List<int> list in lists)
            {
                list.Clear();
            }

            for (int k = 0; k < classCount; k++)
            {
                Span<int> members = scratch.AsSpan(0, byClass[k].Length);
                byClass[k].CopyTo(members);
                rng.Shuffle(members);
                rng.NextDirichlet(spec.Alpha, proportions);

                // NIID-Bench / FedLab balancing: a client already holding n / clients examples gets no more.
                double sum = 0;
                for (int c = 0; c < clients; c++)
                {
                    if (lists[c].Count >= balanceLimit)
                    {
                        proportions[c] = 0;
                    }

                    sum += proportions[c];
                }

                if (sum <= 0)
                {
                    // Every eligible client drew an underflowed share: fall back to the raw draw.
                    rng.NextDirichlet(spec.Alpha, proportions);
                    sum = 0;
                    foreach (double p in proportions)
                    {
                        sum += p;
                    }
                }

                // Cut points floor(len * cumulative share), as numpy's (cumsum(p) * len).astype(int)[:-1].
                int length = members.Length;
                double cumulative = 0;
                cuts[0] = 0;
                for (int c = 0; c < clients - 1; c++)
                {
                    cumulative += proportions[c] / sum;
                    int cut = (int)Math.Floor(cumulative * length);
                    cuts[c + 1] = Math.Clamp(cut, cuts[c], length);
                }

                cuts[clients] = length;
                for (int c = 0; c < clients; c++)
                {
                    for (int i = cuts[c]; i < cuts[c + 1]; i++)
                    {
                        lists[c].Add(members[i]);
                    }
                }
            }

            if (lists.Min(l => l.Count) >= min)
            {
                return lists.Select(l => l.ToArray()).ToArray();
            }
        }

        throw new InvalidOperationException(
            string.Create(CultureInfo.InvariantCulture, $"{spec}: after {MaxDirichletAttempts} draws some of the {clients} clients still had fewer than {min} of the {n} examples; use a larger alpha, a smaller min (',min=M'), or fewer clients."));
    }

    private static int[][] Shards(IReadOnlyList<int> labels, int classCount, int clients, int shardsPerClient, DeterministicRandom rng)
    {
        int n = labels.Count;
        long shardCount = (long)clients * shardsPerClient;
        if (shardCount > n)
        {
            throw new ArgumentException(
                string.Create(CultureInfo.InvariantCulture, $"shards:{shardsPerClient} with {clients} clients cuts {shardCount} shards, but there are only {n} examples; use fewer shards per client or fewer clients."),
                nameof(shardsPerClient));
        }

        // Sort by label (stable, so ties stay in index order), then cut into equal contiguous shards.
        int[][] byClass = GroupByClass(labels, classCount);
        int[] sorted = byClass.SelectMany(a => a).ToArray();
        int shards = (int)shardCount;
        int shardSize = n / shards;
        int[] shardOrder = Enumerable.Range(0, shards).ToArray();
        rng.Shuffle(shardOrder.AsSpan());

        var lists = new List<int>[clients];
        for (int c = 0; c < clients; c++)
        {
            var list = new List<int>((shardsPerClient * shardSize) + (n % shards / clients) + 1);
            for (int j = 0; j < shardsPerClient; j++)
            {
                int shard = shardOrder[(c * shardsPerClient) + j];
                list.AddRange(sorted.AsSpan(shard * shardSize, shardSize));
            }

            lists[c] = list;
        }

        // Leftover examples (the tail of the label order) are dealt round-robin from a random client.
        int first = rng.NextInt(clients);
        for (int i = shards * shardSize, t = 0; i < n; i++, t++)
        {
            lists[(first + t) % clients].Add(sorted[i]);
        }

        return lists.Select(l => l.ToArray()).ToArray();
    }

    private static int[][] GroupByClass(IReadOnlyList<int> labels, int classCount)
    {
        var counts = new int[classCount];
        for (int i = 0; i < labels.Count; i++)
        {
            counts[labels[i]]++;
        }

        var groups = new int[classCount][];
        for (int k = 0; k < classCount; k++)
        {
            groups[k] = new int[counts[k]];
        }

        Array.Clear(counts);
        for (int i = 0; i < labels.Count; i++)
        {
            int k = labels[i];
            groups[k][counts[k]++] = i;
        }

        return groups;
    }
}
