namespace FedRebasin.Data.Tests;

public sealed class ImageDatasetTests
{
    private static ImageDataset Make(int count, int channels, int height, int width, int classCount = 4, int salt = 0)
    {
        byte[] pixels = TestFiles.Pattern(count * channels * height * width, salt);
        int[] labels = Enumerable.Range(0, count).Select(i => i % classCount).ToArray();
        float[] mean = Enumerable.Range(0, channels).Select(c => 0.3f + (0.1f * c)).ToArray();
        float[] std = Enumerable.Range(0, channels).Select(c => 0.2f + (0.05f * c)).ToArray();
        return new ImageDataset("test", channels, height, width, classCount, pixels, labels, mean, std);
    }

    [Fact]
    public void Constructor_ConsistentParts_ExposesShape()
    {
        ImageDataset ds = Make(6, 3, 4, 5);

        Assert.Equal((6, 3, 4, 5, 4, 60), (ds.Count, ds.Channels, ds.Height, ds.Width, ds.ClassCount, ds.FeatureCount));
        Assert.Equal(360, ds.Pixels.Length);
    }

    [Fact]
    public void Constructor_PixelCountMismatch_Throws()
    {
        var ex = Assert.Throws<ArgumentException>(() =>
            new ImageDataset("d", 1, 2, 2, 2, new byte[7], [0, 1], [0.5f], [0.5f]));

        Assert.Contains("need 8", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Constructor_LabelOutOfRange_Throws()
    {
        var ex = Assert.Throws<ArgumentException>(() =>
            new ImageDataset("d", 1, 1, 1, 2, new byte[2], [0, 2], [0.5f], [0.5f]));

        Assert.Contains("label 2 of example 1", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(new float[] { 0.5f, 0.5f }, new float[] { 0.5f })]
    [InlineData(new float[] { 0.5f }, new float[] { 0f })]
    [InlineData(new float[] { float.NaN }, new float[] { 0.5f })]
    [InlineData(new float[] { 0.5f }, new float[] { float.PositiveInfinity })]
    public void Constructor_BadNormalisation_Throws(float[] mean, float[] std)
    {
        Assert.Throws<ArgumentException>(() => new ImageDataset("d", 1, 1, 1, 2, new byte[1], [0], mean, std));
    }

    [Theory]
    [InlineData(0, 1, 1, 1)]
    [InlineData(1, 0, 1, 1)]
    [InlineData(1, 1, -1, 1)]
    [InlineData(1, 1, 1, 0)]
    public void Constructor_NonPositiveShape_Throws(int channels, int height, int width, int classCount)
    {
        Assert.ThrowsAny<ArgumentException>(() => new ImageDataset("d", channels, height, width, classCount, [], [], [0.5f], [0.5f]));
    }

    [Fact]
    public void Subset_Indices_CopiesExamplesInOrder()
    {
        ImageDataset ds = Make(5, 2, 3, 3);

        ImageDataset sub = ds.Subset([4, 1, 4]);

        Assert.Equal(3, sub.Count);
        Assert.Equal([0, 1, 0], sub.Labels);
        Assert.Equal(ds.Pixels.AsSpan(4 * 18, 18).ToArray(), sub.Pixels.AsSpan(0, 18).ToArray());
        Assert.Equal(ds.Pixels.AsSpan(1 * 18, 18).ToArray(), sub.Pixels.AsSpan(18, 18).ToArray());
        Assert.Equal(ds.Mean, sub.Mean);
        Assert.NotSame(ds.Mean, sub.Mean);
    }

    [Fact]
    public void Subset_IndexOutOfRange_Throws()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Make(3, 1, 2, 2).Subset([0, 3]));
    }

    [Theory]
    [InlineData(1, 28, 28)]
    [InlineData(3, 32, 32)]
    [InlineData(3, 5, 7)]
    [InlineData(2, 1, 1)]
    public void CopyNormalized_Indices_MatchesNaiveComputation(int channels, int height, int width)
    {
        ImageDataset ds = Make(9, channels, height, width, salt: 5);
        int[] indices = [8, 0, 3, 3, 7];
        int features = ds.FeatureCount;
        var destination = new float[(indices.Length * features) + 3];
        destination.AsSpan(indices.Length * features).Fill(-42f);

        ds.CopyNormalized(indices, destination);

        for (int n = 0; n < indices.Length; n++)
        {
            for (int c = 0; c < channels; c++)
            {
                for (int p = 0; p < height * width; p++)
                {
                    int offset = (c * height * width) + p;
                    byte pixel = ds.Pixels[(indices[n] * features) + offset];
                    double expected = ((pixel / 255.0) - ds.Mean[c]) / ds.Std[c];
                    Assert.Equal(expected, destination[(n * features) + offset], tolerance: 1e-5);
                }
            }
        }

        Assert.All(destination[(indices.Length * features)..], v => Assert.Equal(-42f, v));
    }

    [Fact]
    public void CopyNormalized_ExtremePixels_MapToExpectedRange()
    {
        var ds = new ImageDataset("x", 1, 1, 40, 1, [.. Enumerable.Repeat((byte)0, 20), .. Enumerable.Repeat((byte)255, 20)], [0], [0.5f], [0.25f]);
        var destination = new float[40];

        ds.CopyNormalized([0], destination);

        Assert.All(destination[..20], v => Assert.Equal(-2.0, v, tolerance: 1e-5));
        Assert.All(destination[20..], v => Assert.Equal(2.0, v, tolerance: 1e-5));
    }

    [Fact]
    public void CopyNormalized_WarmedUp_AllocatesNothing()
    {
        ImageDataset ds = Make(64, 3, 32, 32);
        int[] indices = Enumerable.Range(0, 64).Reverse().ToArray();
        var destination = new float[64 * ds.FeatureCount];
        var labels = new long[64];
        ds.CopyNormalized(indices, destination);
        ds.CopyLabels(indices, labels);

        long before = GC.GetAllocatedBytesForCurrentThread();
        ds.CopyNormalized(indices, destination);
        ds.CopyLabels(indices, labels);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(0, allocated);
    }

    [Fact]
    public void CopyNormalized_DestinationTooShort_Throws()
    {
        ImageDataset ds = Make(3, 1, 2, 2);

        Assert.Throws<ArgumentException>(() => ds.CopyNormalized([0, 1], new float[7]));
    }

    [Fact]
    public void CopyNormalized_IndexOutOfRange_Throws()
    {
        ImageDataset ds = Make(3, 1, 2, 2);

        Assert.Throws<ArgumentOutOfRangeException>(() => ds.CopyNormalized([0, -1], new float[8]));
    }

    [Fact]
    public void CopyLabels_Indices_WritesLongLabels()
    {
        ImageDataset ds = Make(6, 1, 1, 1, classCount: 4);
        var destination = new long[4];

        ds.CopyLabels([5, 0, 3], destination);

        Assert.Equal([1L, 0L, 3L, 0L], destination);
        Assert.Throws<ArgumentException>(() => ds.CopyLabels([1, 2], new long[1]));
        Assert.Throws<ArgumentOutOfRangeException>(() => ds.CopyLabels([6], new long[1]));
    }

    [Fact]
    public void Compute_KnownPixels_GivesMeanAndPopulationStd()
    {
        // Two examples, two channels of two pixels: channel 0 = {0, 255, 0, 255}, channel 1 = all 51.
        byte[] pixels = [0, 255, 51, 51, 0, 255, 51, 51];

        (float[] mean, float[] std) = DatasetNormalization.Compute(pixels, 2, 2);

        Assert.Equal(0.5f, mean[0], 6);
        Assert.Equal(0.5f, std[0], 6);
        Assert.Equal(0.2f, mean[1], 6);
        Assert.Equal(1f, std[1]);
    }

    [Theory]
    [InlineData("fashion-mnist", 1)]
    [InlineData("MNIST", 1)]
    [InlineData("cifar10", 3)]
    [InlineData("cifar100", 3)]
    public void TryGetKnown_CatalogNames_ReturnsPerChannelConstants(string name, int channels)
    {
        Assert.True(DatasetNormalization.TryGetKnown(name, out float[]? mean, out float[]? std));
        Assert.Equal(channels, mean.Length);
        Assert.Equal(channels, std.Length);
        Assert.False(DatasetNormalization.TryGetKnown("synthetic", out _, out _));
    }
}
