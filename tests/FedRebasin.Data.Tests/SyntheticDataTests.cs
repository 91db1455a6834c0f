namespace FedRebasin.Data.Tests;

public sealed class SyntheticDataTests
{
    [Fact]
    public void Create_SameSeed_IsIdentical()
    {
        ImageDataset a = SyntheticData.Create(50, 3, 8, 8, 5, seed: 7);
        ImageDataset b = SyntheticData.Create(50, 3, 8, 8, 5, seed: 7);

        Assert.Equal(a.Pixels, b.Pixels);
        Assert.Equal(a.Labels, b.Labels);
        Assert.Equal(a.Mean, b.Mean);
        Assert.Equal(a.Std, b.Std);
    }

    [Fact]
    public void Create_DifferentSeed_Differs()
    {
        ImageDataset a = SyntheticData.Create(50, 1, 8, 8, 5, seed: 7);
        ImageDataset b = SyntheticData.Create(50, 1, 8, 8, 5, seed: 8);

        Assert.NotEqual(a.Pixels, b.Pixels);
    }

    [Fact]
    public void Create_Seed_GivesKnownFirstPixelsOnEveryMachine()
    {
        // Regression guard for cross-platform determinism: these values were produced by this implementation.
        ImageDataset ds = SyntheticData.Create(4, 1, 2, 2, 2, seed: 1);

        Assert.Equal(GoldenSyntheticLabels, ds.Labels);
        Assert.Equal(GoldenSyntheticPixels, string.Join(",", ds.Pixels));
    }

    private static readonly int[] GoldenSyntheticLabels = [0, 1, 1, 0];

    private const string GoldenSyntheticPixels = "84,92,68,65,61,155,0,255,0,178,29,225,68,53,120,67";

    [Fact]
    public void Create_Labels_AreBalancedAndInRange()
    {
        ImageDataset ds = SyntheticData.Create(103, 1, 4, 4, 10, seed: 3);

        int[] counts = new int[10];
        foreach (int label in ds.Labels)
        {
            counts[label]++;
        }

        Assert.True(counts.Max() - counts.Min() <= 1);
        Assert.Equal(103, counts.Sum());
    }

    [Fact]
    public void Create_TrainAndTestSplits_ShareClassesSoLabelsAreLearnable()
    {
        ImageDataset train = SyntheticData.Create(300, 1, 10, 10, 6, seed: 11, DataSplit.Train);
        ImageDataset test = SyntheticData.Create(120, 1, 10, 10, 6, seed: 11, DataSplit.Test);
        int features = train.FeatureCount;

        Assert.NotEqual(train.Pixels[..features], test.Pixels[..features]);

        // Nearest class-centroid classifier fitted on train must do far better than chance (1/6) on test.
        var centroids = new double[6, features];
        var counts = new int[6];
        for (int i = 0; i < train.Count; i++)
        {
            counts[train.Labels[i]]++;
            for (int f = 0; f < features; f++)
            {
                centroids[train.Labels[i], f] += train.Pixels[(i * features) + f];
            }
        }

        int correct = 0;
        for (int i = 0; i < test.Count; i++)
        {
            int best = -1;
            double bestDistance = double.MaxValue;
            for (int k = 0; k < 6; k++)
            {
                double distance = 0;
                for (int f = 0; f < features; f++)
                {
                    double d = (centroids[k, f] / counts[k]) - test.Pixels[(i * features) + f];
                    distance += d * d;
                }

                if (distance < bestDistance)
                {
                    bestDistance = distance;
                    best = k;
                }
            }

            correct += best == test.Labels[i] ? 1 : 0;
        }

        Assert.True(correct >= 0.9 * test.Count, $"nearest-centroid accuracy {correct}/{test.Count}");
    }

    [Fact]
    public void Create_DefaultNoise_KeepsPixelsSpread()
    {
        ImageDataset ds = SyntheticData.Create(200, 1, 8, 8, 4, seed: 5);

        Assert.InRange(ds.Mean[0], 0.4f, 0.6f);
        Assert.InRange(ds.Std[0], 0.25f, 0.4f);
        Assert.Equal("synthetic", ds.Name);
    }
}
