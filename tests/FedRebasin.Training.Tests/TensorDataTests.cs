using FedRebasin.Data;

namespace FedRebasin.Training.Tests;

public class TensorDataTests
{
    // 300 examples of 1x1x2 pixels that spell out their own index (low byte, high byte), so a sample names its examples.
    private static readonly ImageDataset s_indexed = new(
        "indexed", 1, 1, 2, 3,
        [.. Enumerable.Range(0, 300).SelectMany(i => new[] { (byte)(i % 256), (byte)(i / 256) })],
        [.. Enumerable.Range(0, 300).Select(i => i % 3)],
        [0f], [1f]);

    private static int[] Indices(TensorData data)
    {
        float[] values = data.Features.data<float>().ToArray();
        return [.. Enumerable.Range(0, data.Count).Select(k => (int)Math.Round(values[2 * k] * 255) + (256 * (int)Math.Round(values[(2 * k) + 1] * 255)))];
    }

    [Fact]
    public void Sample_SameSeedWithSkip_TheNextExamplesOfTheSameOrder_DisjointFromTheFirst()
    {
        using var first = TensorData.Sample(s_indexed, 50, 3);
        using var next = TensorData.Sample(s_indexed, 60, 3, skip: 50);
        using var both = TensorData.Sample(s_indexed, 110, 3);

        int[] a = Indices(first);
        int[] b = Indices(next);
        Assert.Equal(50, a.Length);
        Assert.Equal(60, b.Length);
        Assert.Empty(a.Intersect(b));
        Assert.Equal(Indices(both), a.Concat(b).Order());
        Assert.Equal(b.Order(), b);
        Assert.Equal(s_indexed.Labels.Where((_, i) => b.Contains(i)).Select(l => (long)l), next.Labels.data<long>().ToArray());
    }

    [Fact]
    public void Sample_SkipNearTheEnd_TakesWhatIsLeft()
    {
        using var rest = TensorData.Sample(s_indexed, 100, 3, skip: 250);
        using var first = TensorData.Sample(s_indexed, 250, 3);

        Assert.Equal(50, rest.Count);
        Assert.Equal(Enumerable.Range(0, 300), Indices(first).Concat(Indices(rest)).Order());
    }

    [Theory]
    [InlineData(300)]
    [InlineData(301)]
    public void Sample_NothingLeftAfterSkip_Refused(int skip)
    {
        var error = Assert.Throws<ArgumentException>(() => TensorData.Sample(s_indexed, 10, 3, skip: skip));

        Assert.Contains("has 300 examples", error.Message, StringComparison.Ordinal);
    }
}
