namespace FedRebasin.Tensors.Tests;

public sealed class SafeTensorsFileTests
{
    [Fact]
    public void Constructor_DuplicateNames_ThrowsArgumentException()
    {
        var ex = Assert.Throws<ArgumentException>(() => new SafeTensorsFile(
        [
            TensorEntry.FromFloat32("w", [1], [1f]),
            TensorEntry.FromFloat32("w", [1], [2f]),
        ]));
        Assert.Contains("Duplicate tensor name 'w'", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Constructor_InvalidMetadata_ThrowsArgumentException()
    {
        Assert.Throws<ArgumentException>(() => new SafeTensorsFile([], new Dictionary<string, string> { ["k"] = ((char)0xDC00).ToString() }));
    }

    [Fact]
    public void Lookup_ByName_FindsEntriesAndReportsMissing()
    {
        var file = RoundTripTests.SampleFile();

        Assert.Equal(["layer.weight", "layer.bias", "step"], file.Names);
        Assert.Equal(3, file.Count);
        Assert.Equal("layer.bias", file["layer.bias"].Name);
        Assert.True(file.TryGet("step", out var step));
        Assert.Equal([7L], step.ToInt64Array());
        Assert.False(file.TryGet("Step", out _));
        Assert.True(file.Contains("layer.weight"));
        var ex = Assert.Throws<KeyNotFoundException>(() => file["missing"]);
        Assert.Contains("'missing'", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Metadata_EnumeratesInOrdinalKeyOrderAndIsReadOnly()
    {
        var file = new SafeTensorsFile([], new Dictionary<string, string> { ["b"] = "2", ["B"] = "x", ["a"] = "1" });
        Assert.Equal(["B", "a", "b"], file.Metadata.Keys);
        Assert.IsNotType<Dictionary<string, string>>(file.Metadata);
    }

    [Fact]
    public void TotalDataBytes_SumsTensorSizes()
    {
        Assert.Equal((6 * 4) + (3 * 2) + 8, RoundTripTests.SampleFile().TotalDataBytes);
        Assert.Equal(0, SafeTensorsFile.Empty.TotalDataBytes);
    }
}
