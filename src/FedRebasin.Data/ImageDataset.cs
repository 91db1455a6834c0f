using System.Globalization;
using System.Numerics;

namespace FedRebasin.Data;

/// <summary>
/// An in-memory labelled image dataset: <see cref="Count"/> uint8 images of shape
/// <see cref="Channels"/> x <see cref="Height"/> x <see cref="Width"/>, stored example after example in NCHW order,
/// with one integer class label in <c>[0, ClassCount)</c> per image.
/// </summary>
/// <remarks>
/// The constructor takes ownership of the arrays it is given (no copy); callers must not modify them afterwards.
/// The properties expose the arrays themselves for zero-copy access and must be treated as read-only.
/// </remarks>
public sealed class ImageDataset
{
    /// <summary>
    /// Creates a dataset and checks that every part is consistent: positive dimensions, at least one class,
    /// <c>pixels.Length == labels.Length * channels * height * width</c>, every label in <c>[0, classCount)</c>,
    /// one finite <paramref name="mean"/> and one finite positive <paramref name="std"/> per channel.
    /// </summary>
    /// <exception cref="ArgumentException">Any of the checks above fails.</exception>
    public ImageDataset(
        string name,
        int channels,
        int height,
        int width,
        int classCount,
        byte[] pixels,
        int[] labels,
        float[] mean,
        float[] std)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(channels);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(height);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(classCount);
        ArgumentNullException.ThrowIfNull(pixels);
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentNullException.ThrowIfNull(mean);
        ArgumentNullException.ThrowIfNull(std);

        long features = (long)channels * height * width;
        if (features > int.MaxValue)
        {
            throw new ArgumentException(
                string.Create(CultureInfo.InvariantCulture, $"Image shape {channels}x{height}x{width} is too large."),
                nameof(channels));
        }

        long expected = features * labels.Length;
        if (pixels.LongLength != expected)
        {
            throw new ArgumentException(
                string.Create(
                    CultureInfo.InvariantCulture,
                    $"Dataset '{name}': pixels has {pixels.LongLength} bytes but {labels.Length} examples of {channels}x{height}x{width} need {expected}."),
                nameof(pixels));
        }

        for (int i = 0; i < labels.Length; i++)
        {
            if ((uint)labels[i] >= (uint)classCount)
            {
                throw new ArgumentException(
                    string.Create(
                        CultureInfo.InvariantCulture,
                        $"Dataset '{name}': label {labels[i]} of example {i} is outside 0..{classCount - 1}."),
                    nameof(labels));
            }
        }

        if (mean.Length != channels || std.Length != channels)
        {
            throw new ArgumentException(
                string.Create(
                    CultureInfo.InvariantCulture,
                    $"Dataset '{name}': mean and std need one value per channel ({channels}), got {mean.Length} and {std.Length}."),
                nameof(mean));
        }

        for (int c = 0; c < channels; c++)
        {
            if (!float.IsFinite(mean[c]) || !float.IsFinite(std[c]) || std[c] <= 0f)
            {
                throw new ArgumentException(
                    string.Create(
                        CultureInfo.InvariantCulture,
                        $"Dataset '{name}': channel {c} has mean {mean[c]} and std {std[c]}; mean must be finite and std finite and positive."),
                    nameof(std));
            }
        }

        Name = name;
        Channels = channels;
        Height = height;
        Width = width;
        ClassCount = classCount;
        Pixels = pixels;
        Labels = labels;
        Mean = mean;
        Std = std;
    }

    /// <summary>Short name of the dataset, e.g. <c>fashion-mnist</c>.</summary>
    public string Name { get; }

    /// <summary>Number of examples.</summary>
    public int Count => Labels.Length;

    /// <summary>Number of colour channels (1 for MNIST, 3 for CIFAR).</summary>
    public int Channels { get; }

    /// <summary>Image height in pixels.</summary>
    public int Height { get; }

    /// <summary>Image width in pixels.</summary>
    public int Width { get; }

    /// <summary>Number of classes; every label is in <c>[0, ClassCount)</c>.</summary>
    public int ClassCount { get; }

    /// <summary>Values per example: <c>Channels * Height * Width</c>.</summary>
    public int FeatureCount => Channels * Height * Width;

    /// <summary>
    /// All pixels, <c>Count * FeatureCount</c> bytes; example <c>i</c> occupies
    /// <c>[i * FeatureCount, (i + 1) * FeatureCount)</c> in channel, row, column order. Read-only by contract.
    /// </summary>
#pragma warning disable CA1819 // Zero-copy access to the pixel buffer is the point of this type.
    public byte[] Pixels { get; }

    /// <summary>One label per example, each in <c>[0, ClassCount)</c>. Read-only by contract.</summary>
    public int[] Labels { get; }

    /// <summary>Per-channel mean of pixel/255 used by <see cref="CopyNormalized"/>. Read-only by contract.</summary>
    public float[] Mean { get; }

    /// <summary>Per-channel standard deviation of pixel/255 used by <see cref="CopyNormalized"/>. Read-only by contract.</summary>
    public float[] Std { get; }
#pragma warning restore CA1819

    /// <summary>
    /// Returns a new dataset holding copies of the examples at <paramref name="indices"/>, in that order
    /// (repeats allowed), with the same name, shape, class count and normalisation constants.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">An index is outside <c>[0, Count)</c>.</exception>
    public ImageDataset Subset(IReadOnlyList<int> indices)
    {
        ArgumentNullException.ThrowIfNull(indices);
        int features = FeatureCount;
        byte[] pixels = new byte[(long)indices.Count * features];
        int[] labels = new int[indices.Count];
        for (int n = 0; n < indices.Count; n++)
        {
            int index = indices[n];
            CheckIndex(index, n);
            Array.Copy(Pixels, (long)index * features, pixels, (long)n * features, features);
            labels[n] = Labels[index];
        }

        return new ImageDataset(Name, Channels, Height, Width, ClassCount, pixels, labels, (float[])Mean.Clone(), (float[])Std.Clone());
    }

    /// <summary>
    /// Writes the examples at <paramref name="indices"/> into <paramref name="destination"/> as floats in NCHW order,
    /// each value being <c>(pixel / 255 - Mean[c]) / Std[c]</c> (up to float rounding). Example <c>n</c> goes to
    /// <c>destination[n * FeatureCount ..]</c>; anything past <c>indices.Length * FeatureCount</c> is left untouched.
    /// Allocation-free; intended for building training batches.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than <c>indices.Length * FeatureCount</c>.</exception>
    /// <exception cref="ArgumentOutOfRangeException">An index is outside <c>[0, Count)</c>.</exception>
    public void CopyNormalized(ReadOnlySpan<int> indices, Span<float> destination)
    {
        int features = FeatureCount;
        int plane = Height * Width;
        long needed = (long)indices.Length * features;
        if (destination.Length < needed)
        {
            throw new ArgumentException(
                string.Create(
                    CultureInfo.InvariantCulture,
                    $"Destination holds {destination.Length} floats but {indices.Length} examples of {features} values need {needed}."),
                nameof(destination));
        }

        ReadOnlySpan<byte> pixels = Pixels;
        for (int n = 0; n < indices.Length; n++)
        {
            int index = indices[n];
            CheckIndex(index, n);
            int source = index * features;
            int target = n * features;
            for (int c = 0; c < Channels; c++)
            {
                float scale = 1f / (255f * Std[c]);
                float bias = -Mean[c] / Std[c];
                NormalizePlane(
                    pixels.Slice(source + (c * plane), plane),
                    destination.Slice(target + (c * plane), plane),
                    scale,
                    bias);
            }
        }
    }

    /// <summary>Writes the labels of the examples at <paramref name="indices"/> into <paramref name="destination"/> as <see cref="long"/> (the dtype cross-entropy losses expect).</summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than <paramref name="indices"/>.</exception>
    /// <exception cref="ArgumentOutOfRangeException">An index is outside <c>[0, Count)</c>.</exception>
    public void CopyLabels(ReadOnlySpan<int> indices, Span<long> destination)
    {
        if (destination.Length < indices.Length)
        {
            throw new ArgumentException(
                string.Create(CultureInfo.InvariantCulture, $"Destination holds {destination.Length} labels but {indices.Length} are needed."),
                nameof(destination));
        }

        int[] labels = Labels;
        for (int n = 0; n < indices.Length; n++)
        {
            int index = indices[n];
            CheckIndex(index, n);
            destination[n] = labels[index];
        }
    }

    /// <inheritdoc/>
    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"{Name}: {Count} x {Channels}x{Height}x{Width}, {ClassCount} classes");

    private void CheckIndex(int index, int position)
    {
        if ((uint)index >= (uint)Count)
        {
            throw new ArgumentOutOfRangeException(
                nameof(index),
                index,
                string.Create(CultureInfo.InvariantCulture, $"Index {index} at position {position} is outside 0..{Count - 1} of dataset '{Name}'."));
        }
    }

    private static void NormalizePlane(ReadOnlySpan<byte> source, Span<float> destination, float scale, float bias)
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated && source.Length >= Vector<byte>.Count)
        {
            var vScale = new Vector<float>(scale);
            var vBias = new Vector<float>(bias);
            int floats = Vector<float>.Count;
            int step = Vector<byte>.Count;
            for (; i <= source.Length - step; i += step)
            {
                var bytes = new Vector<byte>(source.Slice(i));
                Vector.Widen(bytes, out Vector<ushort> low16, out Vector<ushort> high16);
                Vector.Widen(low16, out Vector<uint> q0, out Vector<uint> q1);
                Vector.Widen(high16, out Vector<uint> q2, out Vector<uint> q3);
                ((Vector.ConvertToSingle(Vector.AsVectorInt32(q0)) * vScale) + vBias).CopyTo(destination.Slice(i));
                ((Vector.ConvertToSingle(Vector.AsVectorInt32(q1)) * vScale) + vBias).CopyTo(destination.Slice(i + floats));
                ((Vector.ConvertToSingle(Vector.AsVectorInt32(q2)) * vScale) + vBias).CopyTo(destination.Slice(i + (2 * floats)));
                ((Vector.ConvertToSingle(Vector.AsVectorInt32(q3)) * vScale) + vBias).CopyTo(destination.Slice(i + (3 * floats)));
            }
        }

        for (; i < source.Length; i++)
        {
            destination[i] = (source[i] * scale) + bias;
        }
    }
}
