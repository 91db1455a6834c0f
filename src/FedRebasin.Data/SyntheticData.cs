namespace FedRebasin.Data;

/// <summary>
/// Generated image datasets for fast tests: every class has a random prototype image and each example is its class's
/// prototype plus Gaussian noise, clamped to 0..255, so labels are learnable from pixels. Output depends only on
/// the arguments (portable PRNG).
/// </summary>
public static class SyntheticData
{
    /// <summary>Standard deviation of the per-pixel noise, in pixel units (0..255).</summary>
    public const double NoiseStd = 48.0;

    /// <summary>Seed used by <see cref="CreateDefault"/>.</summary>
    public const int DefaultSeed = 20240601;

    /// <summary>Training examples in the catalog's <c>synthetic</c> dataset.</summary>
    public const int DefaultTrainCount = 2000;

    /// <summary>Test examples in the catalog's <c>synthetic</c> dataset.</summary>
    public const int DefaultTestCount = 500;

    /// <summary>
    /// Creates <paramref name="count"/> examples of shape <paramref name="channels"/> x <paramref name="height"/> x
    /// <paramref name="width"/> over <paramref name="classCount"/> classes. Class prototypes depend only on
    /// <paramref name="seed"/> (and the shape), so the <see cref="DataSplit.Train"/> and <see cref="DataSplit.Test"/>
    /// splits of one seed share them while drawing different examples. Labels are balanced (class sizes differ by at
    /// most one) in random order. Normalisation constants are computed from the generated pixels. Name: <c>synthetic</c>.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">A size is not positive (count may be 0).</exception>
    public static ImageDataset Create(int count, int channels, int height, int width, int classCount, int seed, DataSplit split = DataSplit.Train)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(channels);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(height);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(classCount);
        long featuresLong = (long)channels * height * width;
        if (featuresLong * Math.Max(count, classCount) > Array.MaxLength)
        {
            throw new ArgumentOutOfRangeException(nameof(count), count, "Synthetic dataset would exceed the largest array size.");
        }

        int features = (int)featuresLong;
        var prototypeRng = new DeterministicRandom(seed, stream: 0);
        byte[] prototypes = new byte[classCount * features];
        for (int i = 0; i < prototypes.Length; i++)
        {
            prototypes[i] = (byte)prototypeRng.NextInt(256);
        }

        var rng = new DeterministicRandom(seed, stream: split == DataSplit.Train ? 1 : 2);
        int[] labels = new int[count];
        for (int i = 0; i < count; i++)
        {
            labels[i] = i % classCount;
        }

        rng.Shuffle(labels.AsSpan());
        byte[] pixels = new byte[(long)count * features];
        for (int i = 0; i < count; i++)
        {
            int prototype = labels[i] * features;
            int target = i * features;
            for (int f = 0; f < features; f++)
            {
                double value = prototypes[prototype + f] + (NoiseStd * rng.NextNormal());
                pixels[target + f] = (byte)Math.Clamp(Math.Round(value, MidpointRounding.ToEven), 0.0, 255.0);
            }
        }

        (float[] mean, float[] std) = DatasetNormalization.Compute(pixels, channels, height * width);
        return new ImageDataset("synthetic", channels, height, width, classCount, pixels, labels, mean, std);
    }

    /// <summary>
    /// The catalog's <c>synthetic</c> dataset: 1x28x28 images, 10 classes, <see cref="DefaultTrainCount"/> training or
    /// <see cref="DefaultTestCount"/> test examples, seed <see cref="DefaultSeed"/>.
    /// </summary>
    public static ImageDataset CreateDefault(DataSplit split) =>
        Create(split == DataSplit.Train ? DefaultTrainCount : DefaultTestCount, 1, 28, 28, 10, DefaultSeed, split);
}
