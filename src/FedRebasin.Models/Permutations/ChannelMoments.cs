using System.Collections.ObjectModel;
using TorchSharp;
using static TorchSharp.torch;

namespace FedRebasin.Models.Permutations;

/// <summary>
/// Per-channel first and second moments of a pre-activation, accumulated exactly in float64: the number of values
/// per channel (<see cref="Count"/>: N for <c>(N, C)</c> tensors, N·H·W for <c>(N, C, H, W)</c>), their sum and their sum
/// of squares. Moments from different batches or clients pool exactly with <see cref="Merge"/>, and follow a model's
/// channel permutation with <see cref="Permute"/>. Not thread-safe.
/// </summary>
public sealed class ChannelMoments
{
    private readonly double[] _sum;
    private readonly double[] _sumSquares;

    /// <summary>Empty moments (count 0) for <paramref name="channels"/> channels.</summary>
    public ChannelMoments(int channels)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(channels);
        _sum = new double[channels];
        _sumSquares = new double[channels];
        Sum = new ReadOnlyCollection<double>(_sum);
        SumSquares = new ReadOnlyCollection<double>(_sumSquares);
    }

    /// <summary>Moments from their parts (e.g. received from a client); the lists are copied.</summary>
    /// <exception cref="ArgumentException">Lengths differ, are zero, or the count is negative or not finite.</exception>
    public ChannelMoments(double count, IReadOnlyList<double> sum, IReadOnlyList<double> sumSquares)
    {
        ArgumentNullException.ThrowIfNull(sum);
        ArgumentNullException.ThrowIfNull(sumSquares);
        if (sum.Count == 0 || sum.Count != sumSquares.Count)
        {
            throw new ArgumentException($"Sum ({sum.Count}) and sum of squares ({sumSquares.Count}) must have the same, positive length.", nameof(sumSquares));
        }

        if (!(count >= 0) || double.IsInfinity(count))
        {
            throw new ArgumentException($"Count must be a finite non-negative number, not {count}.", nameof(count));
        }

        Count = count;
        _sum = [.. sum];
        _sumSquares = [.. sumSquares];
        Sum = new ReadOnlyCollection<double>(_sum);
        SumSquares = new ReadOnlyCollection<double>(_sumSquares);
    }

    /// <summary>Number of channels.</summary>
    public int Channels => _sum.Length;

    /// <summary>Number of values accumulated per channel (the same for every channel).</summary>
    public double Count { get; private set; }

    /// <summary>Per-channel sum of the values.</summary>
    public IReadOnlyList<double> Sum { get; }

    /// <summary>Per-channel sum of the squared values.</summary>
    public IReadOnlyList<double> SumSquares { get; }

    /// <summary>
    /// Accumulates a pre-activation of shape <c>(N, C)</c> (moments over N) or <c>(N, C, H, W)</c> (over N, H, W),
    /// converted to float64 before summing. The tensor is not modified; it may live on any device.
    /// </summary>
    /// <exception cref="ArgumentException">Rank is not 2 or 4, or dimension 1 is not <see cref="Channels"/>.</exception>
    public void Add(Tensor preActivation)
    {
        ArgumentNullException.ThrowIfNull(preActivation);
        using var scope = NewDisposeScope();
        var (count, sum, sumSquares) = Reduce(preActivation, Channels);
        Add(count, ToArray(sum), ToArray(sumSquares));
    }

    /// <summary>Pools <paramref name="other"/> into these moments (counts and sums add: exact pooling).</summary>
    /// <exception cref="ArgumentException">The channel counts differ.</exception>
    public void Merge(ChannelMoments other)
    {
        ArgumentNullException.ThrowIfNull(other);
        if (other.Channels != Channels)
        {
            throw new ArgumentException($"Cannot merge moments of {other.Channels} channels into moments of {Channels}.", nameof(other));
        }

        Add(other.Count, other._sum, other._sumSquares);
    }

    /// <summary>A copy of these moments.</summary>
    public ChannelMoments Clone() => new(Count, _sum, _sumSquares);

    /// <summary>Per-channel mean <c>Sum / Count</c>.</summary>
    /// <exception cref="InvalidOperationException">Nothing has been accumulated.</exception>
    public double[] Mean()
    {
        EnsureNotEmpty();
        return _sum.Select(s => s / Count).ToArray();
    }

    /// <summary>Per-channel population variance <c>max(E[x²] − E[x]², 0)</c>.</summary>
    /// <exception cref="InvalidOperationException">Nothing has been accumulated.</exception>
    public double[] Variance()
    {
        EnsureNotEmpty();
        var variance = new double[Channels];
        for (int c = 0; c < Channels; c++)
        {
            double mean = _sum[c] / Count;
            variance[c] = Math.Max(_sumSquares[c] / Count - mean * mean, 0);
        }

        return variance;
    }

    /// <summary>Per-channel population standard deviation <c>sqrt(max(E[x²] − E[x]², 0))</c>.</summary>
    /// <exception cref="InvalidOperationException">Nothing has been accumulated.</exception>
    public double[] Std() => Variance().Select(Math.Sqrt).ToArray();

    /// <summary>
    /// The moments of the same channels after the model is permuted with <paramref name="perm"/> (the permutation of
    /// this point's group): <c>new[i] = old[perm[i]]</c>, matching <see cref="PermutationSpec.Permute"/>.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="perm"/> is not a permutation of <c>0..Channels-1</c>.</exception>
    public ChannelMoments Permute(long[] perm)
    {
        ArgumentNullException.ThrowIfNull(perm);
        if (perm.Length != Channels || !PermutationSpec.IsPermutation(perm))
        {
            throw new ArgumentException($"Expected a permutation of 0..{Channels - 1}.", nameof(perm));
        }

        var sum = new double[Channels];
        var sumSquares = new double[Channels];
        for (int i = 0; i < Channels; i++)
        {
            sum[i] = _sum[perm[i]];
            sumSquares[i] = _sumSquares[perm[i]];
        }

        return new ChannelMoments(Count, sum, sumSquares);
    }

    /// <summary>
    /// Per-channel float64 sums of a <c>(N, C)</c> or <c>(N, C, H, W)</c> tensor, on its device, and the number of
    /// values per channel. The tensors returned belong to the caller's dispose scope.
    /// </summary>
    internal static (double Count, Tensor Sum, Tensor SumSquares) Reduce(Tensor preActivation, int channels)
    {
        long rank = preActivation.dim();
        if (rank != 2 && rank != 4)
        {
            throw new ArgumentException($"Pre-activations must have shape (N, C) or (N, C, H, W), not rank {rank}.", nameof(preActivation));
        }

        if (preActivation.shape[1] != channels)
        {
            throw new ArgumentException($"Pre-activation has {preActivation.shape[1]} channels; expected {channels}.", nameof(preActivation));
        }

        using var noGrad = no_grad();
        var x = preActivation.detach().to_type(ScalarType.Float64);
        long[] dims = rank == 2 ? [0] : [0, 2, 3];
        var sum = x.sum(dims);
        var sumSquares = x.square().sum(dims);
        return (preActivation.numel() / (double)channels, sum, sumSquares);
    }

    internal static double[] ToArray(Tensor vector)
    {
        using var scope = NewDisposeScope();
        return vector.cpu().data<double>().ToArray();
    }

    internal void Add(double count, double[] sum, double[] sumSquares)
    {
        Count += count;
        for (int c = 0; c < Channels; c++)
        {
            _sum[c] += sum[c];
            _sumSquares[c] += sumSquares[c];
        }
    }

    private void EnsureNotEmpty()
    {
        if (Count <= 0)
        {
            throw new InvalidOperationException("No values have been accumulated.");
        }
    }
}
