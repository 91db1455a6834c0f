using System.Buffers.Binary;
using System.Text;
using static FedRebasin.Tensors.Tests.TestFiles;

namespace FedRebasin.Tensors.Tests;

public sealed class RoundTripTests
{
    public static TheoryData<SafeTensorDType> AllDTypes() => [.. SafeTensorDTypes.All];

    [Theory]
    [MemberData(nameof(AllDTypes))]
    public void ToBytesThenParse_EveryDType_PreservesBytesExactly(SafeTensorDType dtype)
    {
        int size = SafeTensorDTypes.SizeInBytes(dtype);
        var random = new Random(1234 + (int)dtype);
        var data = new byte[2 * 3 * size];
        random.NextBytes(data);
        var file = new SafeTensorsFile([TensorEntry.FromBytes("t", dtype, [2, 3], data)]);

        foreach (var (_, parse) in AllRoutes(SafeTensors.ToBytes(file)))
        {
            var parsed = parse();
            var entry = parsed["t"];
            Assert.Equal(dtype, entry.DType);
            Assert.Equal([2L, 3L], entry.Shape);
            Assert.Equal(6, entry.ElementCount);
            Assert.Equal(data, entry.Data.ToArray());
        }
    }

    [Fact]
    public void ToBytesThenParse_FloatValuesIncludingNaNPayloadsAndSignedZero_BitExact()
    {
        float[] values = [0f, -0f, 1f, float.Epsilon, float.MaxValue, float.NegativeInfinity, BitConverter.UInt32BitsToSingle(0x7FC12345), BitConverter.UInt32BitsToSingle(0xFF800001)];
        double[] doubles = [0d, -0d, double.Epsilon, double.MinValue, BitConverter.UInt64BitsToDouble(0x7FF0000000000123)];
        long[] longs = [long.MinValue, -1, 0, long.MaxValue];
        int[] ints = [int.MinValue, -1, 0, int.MaxValue];
        var file = new SafeTensorsFile(
        [
            TensorEntry.FromFloat32("f", [values.Length], values),
            TensorEntry.FromFloat64("d", [doubles.Length], doubles),
            TensorEntry.FromInt64("l", [2, 2], longs),
            TensorEntry.FromInt32("i", [4], ints),
        ]);

        var parsed = SafeTensors.Parse(SafeTensors.ToBytes(file), "roundtrip");

        Assert.Equal(values.Select(BitConverter.SingleToUInt32Bits), parsed["f"].ToFloat32Array().Select(BitConverter.SingleToUInt32Bits));
        Assert.Equal(doubles.Select(BitConverter.DoubleToUInt64Bits), parsed["d"].ToFloat64Array().Select(BitConverter.DoubleToUInt64Bits));
        Assert.Equal(longs, parsed["l"].ToInt64Array());
        Assert.Equal(ints.Select(i => (long)i), parsed["i"].ToInt64Array());
    }

    [Fact]
    public void ToBytesThenParse_ScalarTensor_HasEmptyShapeAndOneElement()
    {
        var file = new SafeTensorsFile([TensorEntry.FromFloat32("scalar", [], [3.5f])]);
        var bytes = SafeTensors.ToBytes(file);

        Assert.Contains("\"scalar\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}", HeaderText(bytes), StringComparison.Ordinal);
        var entry = SafeTensors.Parse(bytes, "scalar")["scalar"];
        Assert.Empty(entry.Shape);
        Assert.Equal(1, entry.ElementCount);
        Assert.Equal([3.5f], entry.ToFloat32Array());
    }

    [Fact]
    public void ToBytesThenParse_ZeroSizeTensors_KeptWithEmptyData()
    {
        var file = new SafeTensorsFile(
        [
            TensorEntry.FromFloat32("before", [0], []),
            TensorEntry.FromFloat32("x", [2], [1f, 2f]),
            TensorEntry.FromBytes("empty", SafeTensorDType.I64, [3, 0, 5], []),
            TensorEntry.FromFloat32("y", [1], [3f]),
            TensorEntry.FromBytes("last", SafeTensorDType.BF16, [0], []),
        ]);
        var bytes = SafeTensors.ToBytes(file);

        foreach (var (_, parse) in AllRoutes(bytes))
        {
            var parsed = parse();
            AssertSameContent(file, parsed);
            Assert.Equal([3L, 0L, 5L], parsed["empty"].Shape);
            Assert.Equal(0, parsed["empty"].ElementCount);
            Assert.True(parsed["empty"].Data.IsEmpty);
            Assert.Empty(parsed["last"].ToFloat32Array());
        }
    }

    [Fact]
    public void ToBytesThenParse_EmptyFile_RoundTrips()
    {
        var bytes = SafeTensors.ToBytes(SafeTensorsFile.Empty);
        Assert.Equal("{}      ", HeaderText(bytes));
        var parsed = SafeTensors.Parse(bytes, "empty");
        Assert.Empty(parsed.Tensors);
        Assert.Empty(parsed.Metadata);
    }

    [Fact]
    public void ToBytesThenParse_Metadata_RoundTripsIncludingEscapesAndUnicode()
    {
        var metadata = new Dictionary<string, string>
        {
            ["format"] = "pt",
            ["quote\"back\\slash"] = "tab\tnewline\ncontrol\u0001",
            ["unicode ünï 中文 😀"] = "value 😀",
            [""] = "",
            ["__metadata__"] = "nested key name is just a string",
        };
        var file = new SafeTensorsFile([TensorEntry.FromInt64("step", [], [42])], metadata);
        var bytes = SafeTensors.ToBytes(file);

        foreach (var (_, parse) in AllRoutes(bytes))
        {
            var parsed = parse();
            Assert.Equal(metadata.OrderBy(p => p.Key, StringComparer.Ordinal), parsed.Metadata);
            Assert.Equal([42L], parsed["step"].ToInt64Array());
        }

        Assert.StartsWith("{\"__metadata__\":{\"\":\"\",", HeaderText(bytes), StringComparison.Ordinal);
        Assert.Contains("\"quote\\\"back\\\\slash\":\"tab\\tnewline\\ncontrol\\u0001\"", HeaderText(bytes), StringComparison.Ordinal);
    }

    [Fact]
    public void ToBytesThenParse_UnusualTensorNames_RoundTrip()
    {
        string[] names = ["a.b.c", "with space", "quote\"", "back\\slash", "new\nline", "ünïcødé", "😀", "__metadata", "\u007f"];
        var file = new SafeTensorsFile(names.Select((n, i) => TensorEntry.FromInt32(n, [1], [i])));
        var parsed = SafeTensors.Parse(SafeTensors.ToBytes(file), "names");
        Assert.Equal(names, parsed.Names);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    [InlineData(6)]
    [InlineData(7)]
    [InlineData(8)]
    [InlineData(9)]
    public void ToBytes_AnyNameLength_DataStartsEightByteAligned(int nameLength)
    {
        var file = new SafeTensorsFile([TensorEntry.FromFloat32(new string('n', nameLength), [1], [1f])]);
        var bytes = SafeTensors.ToBytes(file);

        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.Equal(0UL, (8 + headerLength) % 8);
        string header = HeaderText(bytes);
        Assert.EndsWith("}", header.TrimEnd(' '), StringComparison.Ordinal);
        Assert.True(header.Length - header.TrimEnd(' ').Length < 8, "padding must be shorter than 8 bytes");
        Assert.Equal(bytes.Length - 4, 8 + (int)headerLength);
    }

    [Fact]
    public void ToBytes_SameFileTwice_IdenticalBytesAndStreamWriteMatches()
    {
        var file = SampleFile();
        var first = SafeTensors.ToBytes(file);
        var second = SafeTensors.ToBytes(SampleFile());
        using var stream = new MemoryStream();
        SafeTensors.Write(stream, file);

        Assert.Equal(first, second);
        Assert.Equal(first, stream.ToArray());
    }

    [Fact]
    public void ToBytes_MetadataInsertionOrder_DoesNotChangeBytes()
    {
        var forward = new Dictionary<string, string> { ["a"] = "1", ["b"] = "2", ["c"] = "3" };
        var backward = new Dictionary<string, string> { ["c"] = "3", ["b"] = "2", ["a"] = "1" };
        Assert.Equal(
            SafeTensors.ToBytes(new SafeTensorsFile([], forward)),
            SafeTensors.ToBytes(new SafeTensorsFile([], backward)));
    }

    [Fact]
    public void ToBytes_TensorOrder_IsTheGivenOrderWithContiguousOffsets()
    {
        var file = new SafeTensorsFile(
        [
            TensorEntry.FromInt32("z", [2], [1, 2]),
            TensorEntry.FromFloat64("a", [1], [1.0]),
            TensorEntry.FromBytes("m", SafeTensorDType.U8, [3], [1, 2, 3]),
        ]);
        string header = HeaderText(SafeTensors.ToBytes(file)).TrimEnd(' ');
        Assert.Equal(
            "{\"z\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[0,8]},\"a\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[8,16]},\"m\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[16,19]}}",
            header);
        Assert.Equal(["z", "a", "m"], SafeTensors.Parse(SafeTensors.ToBytes(file), "order").Names);
    }

    [Fact]
    public void Parse_TensorsListedOutOfOffsetOrder_ReturnedInOffsetOrder()
    {
        const string Header = "{\"second\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]},\"first\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}";
        var parsed = SafeTensors.Parse(Build(Header, [10, 20]), "order");
        Assert.Equal(["first", "second"], parsed.Names);
        Assert.Equal([10L], parsed["first"].ToInt64Array());
        Assert.Equal([20L], parsed["second"].ToInt64Array());
    }

    [Fact]
    public void Parse_HeaderWithJsonWhitespaceAndPadding_Accepted()
    {
        const string Header = "{ \"a\" : { \"dtype\" : \"U8\" ,\n \"shape\" : [ 2 ] , \"data_offsets\" : [ 0 , 2 ] } }\n\t        ";
        Assert.Equal([1L, 2L], SafeTensors.Parse(Build(Header, [1, 2]), "ws")["a"].ToInt64Array());
    }

    [Fact]
    public void Parse_SlicesSharedBuffer_NoCopyOfTensorData()
    {
        var bytes = SafeTensors.ToBytes(SampleFile());
        var parsed = SafeTensors.Parse(bytes, "shared");
        var weight = parsed["layer.weight"];
        Assert.True(System.Runtime.InteropServices.MemoryMarshal.TryGetArray(weight.Data, out var segment));
        Assert.Same(bytes, segment.Array);
    }

    [Fact]
    public void WritePath_NewFile_ReadsBackAndLeavesNoTemporaryFiles()
    {
        string directory = Directory.CreateTempSubdirectory("fedrebasin-tensors-").FullName;
        try
        {
            string path = Path.Combine(directory, "model.safetensors");
            SafeTensors.Write(path, SampleFile());

            Assert.Equal([path], Directory.GetFiles(directory));
            Assert.Equal(SafeTensors.ToBytes(SampleFile()), File.ReadAllBytes(path));
            AssertSameContent(SampleFile(), SafeTensors.Read(path));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public void WritePath_ExistingFile_IsReplaced()
    {
        string directory = Directory.CreateTempSubdirectory("fedrebasin-tensors-").FullName;
        try
        {
            string path = Path.Combine(directory, "model.safetensors");
            File.WriteAllBytes(path, new byte[10_000]);
            var replacement = new SafeTensorsFile([TensorEntry.FromFloat32("w", [2], [1f, 2f])]);

            SafeTensors.Write(path, replacement);

            Assert.Equal(SafeTensors.ToBytes(replacement), File.ReadAllBytes(path));
            Assert.Equal([path], Directory.GetFiles(directory));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public void WritePath_TargetIsADirectory_FailsAndCleansUpTemporaryFile()
    {
        string directory = Directory.CreateTempSubdirectory("fedrebasin-tensors-").FullName;
        try
        {
            string target = Path.Combine(directory, "occupied");
            Directory.CreateDirectory(target);

            Assert.ThrowsAny<Exception>(() => SafeTensors.Write(target, SampleFile()));

            Assert.Empty(Directory.GetFiles(directory));
            Assert.True(Directory.Exists(target));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public void ReadStream_StartsAtCurrentPosition()
    {
        var bytes = SafeTensors.ToBytes(SampleFile());
        using var stream = new MemoryStream();
        stream.Write([9, 9, 9]);
        stream.Write(bytes);
        stream.Position = 3;
        AssertSameContent(SampleFile(), SafeTensors.Read(stream, "offset"));
    }

    internal static SafeTensorsFile SampleFile() => new(
        [
            TensorEntry.FromFloat32("layer.weight", [2, 3], [1f, -2f, 3.25f, 0f, 1e-8f, 65504f]),
            TensorEntry.FromFloat32("layer.bias", [3], [0.5f, -0.5f, 0f], SafeTensorDType.BF16),
            TensorEntry.FromInt64("step", [], [7]),
        ],
        new Dictionary<string, string> { ["format"] = "pt", ["round"] = "3" });

    private static string HeaderText(byte[] bytes)
    {
        int length = (int)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        return Encoding.UTF8.GetString(bytes, 8, length);
    }
}
