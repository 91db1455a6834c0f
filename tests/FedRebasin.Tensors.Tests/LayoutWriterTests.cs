namespace FedRebasin.Tensors.Tests;

/// <summary><see cref="SafeTensors.ToBytes(IReadOnlyList{TensorLayout}, IReadOnlyDictionary{string, string}?, TensorDataWriter)"/>: the payload path that copies each tensor once.</summary>
public sealed class LayoutWriterTests
{
    [Fact]
    public void ToBytes_FromLayouts_SameBytesAsFromEntries()
    {
        // Arrange: every dtype, an empty and a scalar tensor, metadata given out of order.
        var random = new Random(5);
        var entries = SafeTensorDTypes.All.Select((dtype, i) =>
        {
            long[] shape = i % 3 == 0 ? [] : i % 3 == 1 ? [2, 3] : [0, 4];
            var data = new byte[shape.Aggregate(1L, (a, b) => a * b) * SafeTensorDTypes.SizeInBytes(dtype)];
            random.NextBytes(data);
            return TensorEntry.FromBytes($"t{i}.weight", dtype, shape, data);
        }).ToList();
        var metadata = new Dictionary<string, string> { ["z"] = "last", ["a"] = "first \"quoted\"" };
        var expected = SafeTensors.ToBytes(new SafeTensorsFile(entries, metadata));
        var layouts = entries.ConvertAll(e => new TensorLayout(e.Name, e.DType, e.Shape));
        var calls = new List<int>();

        // Act
        var actual = SafeTensors.ToBytes(layouts, metadata, (index, destination) =>
        {
            calls.Add(index);
            Assert.Equal(entries[index].ByteCount, destination.Length);
            entries[index].Data.Span.CopyTo(destination);
        });

        // Assert
        Assert.Equal(expected, actual);
        Assert.Equal(Enumerable.Range(0, entries.Count), calls);
    }

    [Fact]
    public void ToBytes_FromLayouts_DuplicateOrInvalidNameOrNegativeDimension_Refused()
    {
        static void Ignore(int index, Span<byte> destination) => destination.Clear();
        var twice = new[] { new TensorLayout("w", SafeTensorDType.F32, [2]), new TensorLayout("w", SafeTensorDType.F32, [2]) };

        var duplicate = Assert.Throws<ArgumentException>(() => SafeTensors.ToBytes(twice, null, Ignore));
        var empty = Assert.Throws<ArgumentException>(() => SafeTensors.ToBytes([new TensorLayout("", SafeTensorDType.F32, [1])], null, Ignore));
        var negative = Assert.Throws<ArgumentException>(() => SafeTensors.ToBytes([new TensorLayout("w", SafeTensorDType.F32, [-1])], null, Ignore));

        Assert.Contains("Duplicate tensor name", duplicate.Message, StringComparison.Ordinal);
        Assert.Contains("name", empty.Message, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("negative dimension", negative.Message, StringComparison.Ordinal);
    }
}
