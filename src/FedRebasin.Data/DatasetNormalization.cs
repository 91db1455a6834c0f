using System.Diagnostics.CodeAnalysis;

namespace FedRebasin.Data;

/// <summary>Per-channel normalisation constants (mean and standard deviation of pixel/255).</summary>
public static class DatasetNormalization
{
    /// <summary>
    /// Gets the published constants for a catalog dataset name (<c>fashion-mnist</c>, <c>mnist</c>, <c>cifar10</c>,
    /// <c>cifar100</c>; case-insensitive). Returns fresh arrays each call.
    /// </summary>
    /// <returns><see langword="true"/> if the name is known.</returns>
    public static bool TryGetKnown(string name, [NotNullWhen(true)] out float[]? mean, [NotNullWhen(true)] out float[]? std)
    {
        ArgumentNullException.ThrowIfNull(name);
        switch (name.ToUpperInvariant())
        {
            case "FASHION-MNIST":
                mean = [0.2860f];
                std = [0.3530f];
                return true;
            case "MNIST":
                mean = [0.1307f];
                std = [0.3081f];
                return true;
            case "CIFAR10":
                mean = [0.4914f, 0.4822f, 0.4465f];
                std = [0.2470f, 0.2435f, 0.2616f];
                return true;
            case "CIFAR100":
                mean = [0.5071f, 0.4865f, 0.4409f];
                std = [0.2673f, 0.2564f, 0.2762f];
                return true;
            default:
                mean = null;
                std = null;
                return false;
        }
    }

    /// <summary>
    /// Computes the per-channel mean and population standard deviation of pixel/255 over NCHW data
    /// (<paramref name="pixels"/> holds whole examples of <paramref name="channels"/> planes of
    /// <paramref name="planeSize"/> bytes). A zero standard deviation (constant channel) is replaced by 1
    /// so the result is always usable for normalisation; empty data gives mean 0.5 and std 0.25.
    /// </summary>
    public static (float[] Mean, float[] Std) Compute(ReadOnlySpan<byte> pixels, int channels, int planeSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(channels);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(planeSize);
        long exampleSize = (long)channels * planeSize;
        if (pixels.Length % exampleSize != 0)
        {
            throw new ArgumentException("Pixel count is not a whole number of examples.", nameof(pixels));
        }

        var mean = new float[channels];
        var std = new float[channels];
        if (pixels.IsEmpty)
        {
            Array.Fill(mean, 0.5f);
            Array.Fill(std, 0.25f);
            return (mean, std);
        }

        // Exact integer histograms per channel, then closed-form moments: no rounding drift on large datasets.
        var histogram = new long[channels * 256];
        for (long offset = 0; offset < pixels.Length; offset += exampleSize)
        {
            for (int c = 0; c < channels; c++)
            {
                ReadOnlySpan<byte> plane = pixels.Slice((int)(offset + ((long)c * planeSize)), planeSize);
                Span<long> h = histogram.AsSpan(c * 256, 256);
                foreach (byte p in plane)
                {
                    h[p]++;
                }
            }
        }

        for (int c = 0; c < channels; c++)
        {
            double n = 0;
            double sum = 0;
            double sumSquares = 0;
            for (int v = 0; v < 256; v++)
            {
                double count = histogram[(c * 256) + v];
                double x = v / 255.0;
                n += count;
                sum += count * x;
                sumSquares += count * x * x;
            }

            double m = sum / n;
            double variance = Math.Max(0.0, (sumSquares / n) - (m * m));
            double s = Math.Sqrt(variance);
            mean[c] = (float)m;
            std[c] = s > 1e-12 ? (float)s : 1f;
        }

        return (mean, std);
    }
}
