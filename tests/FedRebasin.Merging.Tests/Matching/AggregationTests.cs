using FedRebasin.Merging.Averaging;
using TorchSharp;
using static TorchSharp.torch;

namespace FedRebasin.Merging.Tests.Matching;

public class AggregationTests
{
    private static Dictionary<string, Tensor> State(params float[] values) => new()
    {
        ["w"] = tensor(values),
        ["n"] = tensor(7L),
    };

    [Fact]
    public void RunningWeightedSum_EqualsBatchWeightedMean()
    {
        using var scope = NewDisposeScope();
        var states = new[] { State(1, 2), State(3, 6), State(5, 10) };

        using var running = new RunningWeightedSum();
        running.Add(states[0], 1);
        running.Add(states[1], 2);
        running.Add(states[2], 5);
        var mean = running.Mean();

        Assert.Equal([(1 + 6 + 25) / 8f, (2 + 12 + 50) / 8f], mean["w"].data<float>().ToArray());
        Assert.Equal(7L, mean["n"].item<long>());
        Assert.Equal(ScalarType.Float32, mean["w"].dtype);
        Assert.Equal(3, running.Count);
        Assert.Equal(8, running.TotalWeight);
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(-1.0)]
    [InlineData(double.NaN)]
    [InlineData(double.PositiveInfinity)]
    public void RunningWeightedSum_BadWeight_Refused(double weight)
    {
        using var scope = NewDisposeScope();
        using var running = new RunningWeightedSum();

        Assert.Throws<ArgumentException>(() => running.Add(State(1), weight));
        Assert.Equal(0, running.Count);
    }

    [Fact]
    public void Median_IgnoresOneWildOutlier()
    {
        using var scope = NewDisposeScope();
        var states = new IReadOnlyDictionary<string, Tensor>[] { State(1, 1), State(2, 2), State(3, 3), State(1e9f, -1e9f), State(2, 2) };

        var median = Aggregation.Robust(states, AggregationKind.Median);
        var trimmed = Aggregation.Robust(states, AggregationKind.TrimmedMean, trimFraction: 0.2);

        Assert.Equal([2f, 2f], median["w"].data<float>().ToArray());
        Assert.Equal([7f / 3, 5f / 3], trimmed["w"].data<float>().ToArray());
    }

    [Fact]
    public void Median_EvenCount_AveragesTheMiddleTwo()
    {
        using var scope = NewDisposeScope();
        var states = new IReadOnlyDictionary<string, Tensor>[] { State(1), State(2), State(4), State(10) };

        var median = Aggregation.Robust(states, AggregationKind.Median);

        Assert.Equal([3f], median["w"].data<float>().ToArray());
    }

    [Theory]
    [InlineData("mean", AggregationKind.Mean)]
    [InlineData("median", AggregationKind.Median)]
    [InlineData("trimmed-mean", AggregationKind.TrimmedMean)]
    public void Parse_KnownNames(string text, AggregationKind expected) => Assert.Equal(expected, Aggregation.Parse(text));

    [Fact]
    public void Parse_UnknownName_ListsTheChoices()
    {
        var error = Assert.Throws<FormatException>(() => Aggregation.Parse("mode"));

        Assert.Contains("trimmed-mean", error.Message, StringComparison.Ordinal);
    }
}

public class RunningWeightedSumMemoryTests
{
    [Fact]
    public void AddAndMean_LeaveNoTemporaries()
    {
        // Arrange
        // A private generator: the global one is shared with seeded model builds in parallel tests.
        using var generator = new TorchSharp.torch.Generator(5);
        var a = new Dictionary<string, Tensor> { ["w"] = randn([4, 3], generator: generator), ["n"] = tensor(1L) };
        var b = new Dictionary<string, Tensor> { ["w"] = randn([4, 3], generator: generator), ["n"] = tensor(1L) };
        long before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;

        // Act
        var clone = StateDicts.Clone(a);
        using (var sum = new RunningWeightedSum())
        {
            sum.Add(a, 1);
            sum.Add(b, 2);
            StateDicts.DisposeAll([sum.Mean()]);
        }

        StateDicts.DisposeAll([clone]);

        // Assert
        Assert.Equal(before, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
        StateDicts.DisposeAll([a, b]);
    }
}
