namespace FedRebasin.Data.Tests;

public sealed class PartitionSpecTests
{
    [Theory]
    [InlineData("iid", "iid")]
    [InlineData("  IID ", "iid")]
    [InlineData("dirichlet:0.5", "dirichlet:0.5")]
    [InlineData("Dirichlet:0.50", "dirichlet:0.5")]
    [InlineData("dirichlet:0.5,min=10", "dirichlet:0.5")]
    [InlineData("dirichlet:0.5,min=20", "dirichlet:0.5,min=20")]
    [InlineData("dirichlet: 1e-3 , min = 0", "dirichlet:0.001,min=0")]
    [InlineData("dirichlet:100", "dirichlet:100")]
    [InlineData("shards:2", "shards:2")]
    [InlineData("SHARDS:+3", "shards:3")]
    public void Parse_ValidText_GivesCanonicalToString(string text, string canonical)
    {
        PartitionSpec spec = PartitionSpec.Parse(text);

        Assert.Equal(canonical, spec.ToString());
        Assert.Equal(spec, PartitionSpec.Parse(canonical));
    }

    [Fact]
    public void Parse_Dirichlet_ExposesAlphaAndMin()
    {
        var spec = Assert.IsType<DirichletPartitionSpec>(PartitionSpec.Parse("dirichlet:0.3,min=20"));

        Assert.Equal(0.3, spec.Alpha);
        Assert.Equal(20, spec.MinPartitionSize);
        Assert.Equal(DirichletPartitionSpec.DefaultMinPartitionSize, Assert.IsType<DirichletPartitionSpec>(PartitionSpec.Parse("dirichlet:1")).MinPartitionSize);
        Assert.Equal(4, Assert.IsType<ShardsPartitionSpec>(PartitionSpec.Parse("shards:4")).ShardsPerClient);
        Assert.Same(IidPartitionSpec.Instance, PartitionSpec.Parse("iid"));
    }

    [Theory]
    [InlineData("dirichlet:abc", "alpha 'abc' is not a number")]
    [InlineData("dirichlet:-1", "greater than 0")]
    [InlineData("dirichlet:0", "greater than 0")]
    [InlineData("dirichlet:NaN", "greater than 0")]
    [InlineData("dirichlet:1e999", "greater than 0")]
    [InlineData("dirichlet", "needs a concentration")]
    [InlineData("dirichlet:", "needs a concentration")]
    [InlineData("dirichlet:0.5,min=-1", "min '-1'")]
    [InlineData("dirichlet:0.5,min=x", "min 'x'")]
    [InlineData("dirichlet:0.5,max=3", "unknown dirichlet option 'max=3'")]
    [InlineData("dirichlet:0.5,min=1,min=2", "given twice")]
    [InlineData("shards:0", "at least 1")]
    [InlineData("shards:-2", "at least 1")]
    [InlineData("shards:two", "'two' is not an integer")]
    [InlineData("shards", "needs the number of shards")]
    [InlineData("iid:3", "takes no parameters")]
    [InlineData("pathological:2", "unknown kind 'pathological'")]
    [InlineData("", "empty")]
    public void Parse_BadText_ThrowsFormatExceptionExplainingProblem(string text, string problem)
    {
        var ex = Assert.Throws<FormatException>(() => PartitionSpec.Parse(text));

        Assert.Contains($"'{text}'", ex.Message, StringComparison.Ordinal);
        Assert.Contains(problem, ex.Message, StringComparison.Ordinal);
        Assert.False(PartitionSpec.TryParse(text, out _));
    }

    [Fact]
    public void ToString_ArbitraryAlpha_RoundTripsExactly()
    {
        var spec = new DirichletPartitionSpec(0.1 + 0.2, 3);

        var parsed = Assert.IsType<DirichletPartitionSpec>(PartitionSpec.Parse(spec.ToString()));

        Assert.Equal(spec.Alpha, parsed.Alpha);
        Assert.Equal(spec, parsed);
    }

    [Fact]
    public void Constructors_InvalidArguments_Throw()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new DirichletPartitionSpec(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new DirichletPartitionSpec(double.PositiveInfinity));
        Assert.Throws<ArgumentOutOfRangeException>(() => new DirichletPartitionSpec(1, -1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ShardsPartitionSpec(0));
    }
}
