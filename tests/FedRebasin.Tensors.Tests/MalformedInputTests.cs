using System.Buffers.Binary;
using System.Text;
using static FedRebasin.Tensors.Tests.TestFiles;

namespace FedRebasin.Tensors.Tests;

public sealed class MalformedInputTests
{
    private const string OneF32 = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";

    [Fact]
    public void Parse_ValidBaseline_Succeeds()
    {
        foreach (var (_, parse) in AllRoutes(Build(OneF32, Sequence(4))))
        {
            Assert.Equal(["a"], parse().Names);
        }
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(7)]
    public void Parse_FileShorterThan8Bytes_Rejected(int length)
    {
        AssertRejected(new byte[length], $"file is {length} bytes, shorter than the 8-byte header length prefix");
    }

    [Fact]
    public void Parse_HeaderLengthPastEndOfFile_Rejected()
    {
        var bytes = Build(OneF32, Sequence(4), declaredLength: 1000);
        AssertRejected(bytes, "header length 1000 extends past the end of the file");
    }

    [Theory]
    [InlineData(100_000_001UL)]
    [InlineData(ulong.MaxValue)]
    [InlineData(1UL << 63)]
    public void Parse_AbsurdHeaderLength_RejectedBeforeAllocating(ulong declared)
    {
        var bytes = Build(OneF32, Sequence(4), declaredLength: declared);
        long before = GC.GetAllocatedBytesForCurrentThread();
        AssertRejected(bytes, "exceeds the limit of 100000000 bytes (MaxHeaderBytes)");
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1_000_000, "rejecting allocated the declared header");
    }

    [Fact]
    public void Read_NonSeekableStreamWithLyingHeaderLength_DoesNotAllocateDeclaredSize()
    {
        // 99 MB is under the header limit, but the stream holds a few bytes: buffers must grow with real data.
        var bytes = Build(OneF32, Sequence(4), declaredLength: 99_000_000);
        long before = GC.GetAllocatedBytesForCurrentThread();
        var ex = Assert.Throws<SafeTensorsFormatException>(() => SafeTensors.Read(new NonSeekableStream(bytes), Source));
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 4_000_000, "allocated the lying header length");
        Assert.Contains("header length 99000000 extends past the end of the file", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Read_NonSeekableStreamWithLyingTensorSize_DoesNotAllocateDeclaredSize()
    {
        const string Header = "{\"a\":{\"dtype\":\"U8\",\"shape\":[1000000000],\"data_offsets\":[0,1000000000]}}";
        var bytes = Build(Header, Sequence(16));
        long before = GC.GetAllocatedBytesForCurrentThread();
        var ex = Assert.Throws<SafeTensorsFormatException>(() => SafeTensors.Read(new NonSeekableStream(bytes), Source));
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 4_000_000, "allocated the lying tensor size");
        Assert.Contains("data is truncated: header declares 1000000000 bytes of tensor data but the input ended after 16", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_SeekableInputWithHugeTensor_RejectedAsOutOfRangeWithoutAllocating()
    {
        const string Header = "{\"a\":{\"dtype\":\"U8\",\"shape\":[1000000000],\"data_offsets\":[0,1000000000]}}";
        var bytes = Build(Header, Sequence(16));
        long before = GC.GetAllocatedBytesForCurrentThread();
        var ex = Assert.Throws<SafeTensorsFormatException>(() => SafeTensors.Read(new MemoryStream(bytes), Source));
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1_000_000);
        Assert.Contains("data_offsets [0,1000000000] out of range: the data buffer is 16 bytes", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_InvalidUtf8InHeader_Rejected()
    {
        byte[] header = [.. "{\"a"u8, 0xFF, 0xFE, .. "\":{}}"u8];
        AssertRejected(Build(header), "header is not valid UTF-8");
    }

    [Fact]
    public void Parse_OverlongUtf8Encoding_Rejected()
    {
        // 0xC0 0xAF is an overlong encoding of '/', which strict decoders must refuse.
        byte[] header = [.. "{\"a"u8, 0xC0, 0xAF, .. "\":{}}"u8];
        AssertRejected(Build(header), "header is not valid UTF-8");
    }

    [Theory]
    [InlineData("{\"a\":")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",}}")]
    [InlineData("{'a':1}")]
    [InlineData("{\"a\":{\"dtype\":\"F32\" \"shape\":[1]}}")]
    [InlineData("{} x")]
    [InlineData("{}{}")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}} // comment")]
    [InlineData("{\"a\\ud800\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}")]
    public void Parse_InvalidJson_Rejected(string header)
    {
        AssertRejected(Build(header), "header is not valid JSON");
    }

    [Theory]
    [InlineData("[1,2]")]
    [InlineData("\"text\"")]
    [InlineData("42")]
    [InlineData("null")]
    [InlineData(" {}")]
    [InlineData("")]
    public void Parse_HeaderNotAnObject_Rejected(string header)
    {
        AssertRejected(Build(header), "header must be a JSON object starting with '{'");
    }

    [Theory]
    [InlineData("5", "found number 5")]
    [InlineData("\"F32\"", "found a string")]
    [InlineData("[0,4]", "found an array")]
    [InlineData("null", "found null")]
    public void Parse_EntryNotAnObject_Rejected(string value, string found)
    {
        var messages = AssertRejected(Build("{\"a\":" + value + "}"), "tensor 'a': entry must be a JSON object");
        Assert.All(messages, m => Assert.Contains(found, m, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("{\"shape\":[1],\"data_offsets\":[0,4]}", "dtype")]
    [InlineData("{\"dtype\":\"F32\",\"data_offsets\":[0,4]}", "shape")]
    [InlineData("{\"dtype\":\"F32\",\"shape\":[1]}", "data_offsets")]
    [InlineData("{}", "dtype")]
    public void Parse_MissingField_Rejected(string entry, string field)
    {
        AssertRejected(Build("{\"a\":" + entry + "}", Sequence(4)), $"tensor 'a': missing field '{field}'");
    }

    [Theory]
    [InlineData("{\"dtype\":32,\"shape\":[1],\"data_offsets\":[0,4]}", "field 'dtype' must be a string")]
    [InlineData("{\"dtype\":null,\"shape\":[1],\"data_offsets\":[0,4]}", "field 'dtype' must be a string")]
    [InlineData("{\"dtype\":\"F32\",\"shape\":\"1\",\"data_offsets\":[0,4]}", "field 'shape' must be an array of non-negative integers")]
    [InlineData("{\"dtype\":\"F32\",\"shape\":{},\"data_offsets\":[0,4]}", "field 'shape' must be an array of non-negative integers")]
    [InlineData("{\"dtype\":\"F32\",\"shape\":[\"1\"],\"data_offsets\":[0,4]}", "field 'shape' must be an array of non-negative integers")]
    [InlineData("{\"dtype\":\"F32\",\"shape\":[[1]],\"data_offsets\":[0,4]}", "field 'shape' must be an array of non-negative integers")]
    [InlineData("{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":4}", "field 'data_offsets' must be an array of 2 non-negative integers")]
    [InlineData("{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":{\"begin\":0}}", "field 'data_offsets' must be an array of 2 non-negative integers")]
    public void Parse_WrongTypedField_Rejected(string entry, string phrase)
    {
        AssertRejected(Build("{\"a\":" + entry + "}", Sequence(4)), "tensor 'a': " + phrase);
    }

    [Fact]
    public void Parse_UnknownField_Rejected()
    {
        const string Header = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"offsets\":[0,4]}}";
        AssertRejected(Build(Header, Sequence(4)), "tensor 'a': unknown field 'offsets'");
    }

    [Theory]
    [InlineData("{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}", "dtype")]
    [InlineData("{\"dtype\":\"F32\",\"shape\":[1],\"shape\":[1],\"data_offsets\":[0,4]}", "shape")]
    [InlineData("{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"data_offsets\":[0,4]}", "data_offsets")]
    public void Parse_DuplicateField_Rejected(string entry, string field)
    {
        AssertRejected(Build("{\"a\":" + entry + "}", Sequence(4)), $"tensor 'a': duplicate field '{field}'");
    }

    [Theory]
    [InlineData("F33")]
    [InlineData("f32")]
    [InlineData("float32")]
    [InlineData("")]
    [InlineData("C64")]
    public void Parse_UnknownDType_Rejected(string dtype)
    {
        string header = $"{{\"a\":{{\"dtype\":\"{dtype}\",\"shape\":[1],\"data_offsets\":[0,4]}}}}";
        AssertRejected(Build(header, Sequence(4)), $"tensor 'a': unknown dtype '{dtype}'");
    }

    [Theory]
    [InlineData("-1", "number -1")]
    [InlineData("1.5", "number 1.5")]
    [InlineData("2.0", "number 2.0")]
    [InlineData("1e2", "number 1e2")]
    [InlineData("99999999999999999999", "number 99999999999999999999")]
    [InlineData("true", "a boolean")]
    [InlineData("null", "null")]
    public void Parse_BadShapeDimension_Rejected(string dim, string shown)
    {
        string header = $"{{\"a\":{{\"dtype\":\"U8\",\"shape\":[{dim}],\"data_offsets\":[0,1]}}}}";
        var messages = AssertRejected(Build(header, Sequence(1)), "tensor 'a': field 'shape' must be an array of non-negative integers");
        Assert.All(messages, m => Assert.Contains(shown + " is not a non-negative integer", m, StringComparison.Ordinal));
    }

    [Fact]
    public void Parse_ShapeElementCountOverflows_Rejected()
    {
        const string Header = "{\"a\":{\"dtype\":\"U8\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,1]}}";
        AssertRejected(Build(Header, Sequence(1)), "tensor 'a': shape [4294967296,4294967296] has more elements than fit in a 64-bit integer (overflow)");
    }

    [Fact]
    public void Parse_ShapeByteCountOverflows_Rejected()
    {
        // 2^62 elements fit in a long, 2^62 * 4 bytes do not.
        const string Header = "{\"a\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904],\"data_offsets\":[0,4]}}";
        AssertRejected(Build(Header, Sequence(4)), "tensor 'a': shape [4611686018427387904] of F32 needs more bytes than fit in a 64-bit integer (overflow)");
    }

    [Fact]
    public void Parse_ZeroDimensionWithHugeOthers_IsZeroElementsNotOverflow()
    {
        const string Header = "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,0,4294967296],\"data_offsets\":[0,0]}}";
        var file = SafeTensors.Parse(Build(Header), Source);
        Assert.Equal(0, file["a"].ElementCount);
    }

    [Fact]
    public void Parse_TooManyDimensions_Rejected()
    {
        string dims = string.Join(',', Enumerable.Repeat("1", 17));
        string header = $"{{\"a\":{{\"dtype\":\"U8\",\"shape\":[{dims}],\"data_offsets\":[0,1]}}}}";
        AssertRejected(Build(header, Sequence(1)), "tensor 'a': shape has more than 16 dimensions (MaxDimensions)");
    }

    [Fact]
    public void Parse_HugeShapeArray_StopsAtDimensionLimit()
    {
        string dims = string.Join(',', Enumerable.Repeat("1", 200_000));
        string header = $"{{\"a\":{{\"dtype\":\"U8\",\"shape\":[{dims}],\"data_offsets\":[0,1]}}}}";
        AssertRejected(Build(header, Sequence(1)), "(MaxDimensions)");
    }

    [Fact]
    public void Parse_ShapeByteSizeMismatch_MessageGivesShapeElementsAndSpan()
    {
        const string Header = "{\"0.weight\":{\"dtype\":\"F32\",\"shape\":[512,784],\"data_offsets\":[0,1605628]}}";
        AssertRejected(
            Build(Header, new byte[1605628]),
            "tensor '0.weight' has shape [512,784] (401408 elements of F32 = 1605632 bytes) but data_offsets span 1605628 bytes");
    }

    [Theory]
    [InlineData("[0]", "found 1 values")]
    [InlineData("[]", "found 0 values")]
    [InlineData("[0,4,8]", "found 3 values")]
    [InlineData("[\"0\",4]", "a string is not a non-negative integer")]
    [InlineData("[-1,4]", "number -1 is not a non-negative integer")]
    [InlineData("[0,4.5]", "number 4.5 is not a non-negative integer")]
    [InlineData("[0,18446744073709551616]", "number 18446744073709551616 is not a non-negative integer")]
    public void Parse_DataOffsetsNotTwoNonNegativeIntegers_Rejected(string offsets, string detail)
    {
        string header = $"{{\"a\":{{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":{offsets}}}}}";
        var messages = AssertRejected(Build(header, Sequence(4)), "tensor 'a': field 'data_offsets' must be an array of 2 non-negative integers");
        Assert.All(messages, m => Assert.Contains(detail, m, StringComparison.Ordinal));
    }

    [Fact]
    public void Parse_DataOffsetsBeginAfterEnd_Rejected()
    {
        const string Header = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}";
        AssertRejected(Build(Header, Sequence(4)), "tensor 'a': data_offsets [4,0] have begin greater than end");
    }

    [Fact]
    public void Parse_DataOffsetsOutOfRange_Rejected()
    {
        const string Header = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
        var bytes = Build(Header, Sequence(4));
        foreach (var (route, parse) in AllRoutes(bytes))
        {
            var ex = Assert.Throws<SafeTensorsFormatException>(() => parse());
            Assert.StartsWith(Source + ": ", ex.Message, StringComparison.Ordinal);

            // A non-seekable stream cannot know the length up front: it reports the truncation instead.
            string phrase = route == "Read(non-seekable)"
                ? "data is truncated: header declares 8 bytes of tensor data but the input ended after 4"
                : "tensor 'a' has data_offsets [0,8] out of range: the data buffer is 4 bytes";
            Assert.Contains(phrase, ex.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Parse_OverlappingOffsets_Rejected()
    {
        const string Header = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}";
        AssertRejected(Build(Header, Sequence(12)), "tensor 'b' data_offsets [4,12] overlap tensor 'a' [0,8]");
    }

    [Fact]
    public void Parse_SameOffsetsTwice_RejectedAsOverlap()
    {
        const string Header = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
        AssertRejected(Build(Header, Sequence(4)), "tensor 'b' data_offsets [0,4] overlap tensor 'a' [0,4]");
    }

    [Fact]
    public void Parse_HoleBetweenTensors_Rejected()
    {
        const string Header = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}";
        AssertRejected(Build(Header, Sequence(12)), "hole of 4 unused bytes in the data buffer at offset 4, before tensor 'b'");
    }

    [Fact]
    public void Parse_FirstTensorNotAtZero_RejectedAsHole()
    {
        const string Header = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}";
        AssertRejected(Build(Header, Sequence(8)), "hole of 4 unused bytes in the data buffer at offset 0, before tensor 'a'");
    }

    [Fact]
    public void Parse_UnusedTrailingBytes_Rejected()
    {
        var bytes = Build(OneF32, Sequence(12));
        foreach (var (route, parse) in AllRoutes(bytes))
        {
            var ex = Assert.Throws<SafeTensorsFormatException>(() => parse());
            Assert.StartsWith(Source + ": ", ex.Message, StringComparison.Ordinal);
            string phrase = route == "Read(non-seekable)"
                ? "unused trailing bytes after the 4 bytes of tensor data the header declares"
                : "8 unused trailing bytes after the last tensor";
            Assert.Contains(phrase, ex.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Parse_EmptyHeaderObjectWithData_RejectedAsTrailingBytes()
    {
        AssertRejected(Build("{}", Sequence(3)), "unused trailing bytes");
    }

    [Fact]
    public void Parse_DuplicateTensorName_Rejected()
    {
        const string Header = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}";
        AssertRejected(Build(Header, Sequence(8)), "duplicate tensor name 'a'");
    }

    [Fact]
    public void Parse_DuplicateTensorNameSpelledWithEscape_Rejected()
    {
        // "\u0061" is "a": duplicates must be found after unescaping.
        const string Header = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"\\u0061\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}";
        AssertRejected(Build(Header, Sequence(8)), "duplicate tensor name 'a'");
    }

    [Fact]
    public void Parse_DuplicateMetadataObject_Rejected()
    {
        const string Header = "{\"__metadata__\":{},\"__metadata__\":{}}";
        AssertRejected(Build(Header), "duplicate key '__metadata__' in header");
    }

    [Theory]
    [InlineData("[]", "found an array")]
    [InlineData("null", "found null")]
    [InlineData("\"pt\"", "found a string")]
    [InlineData("7", "found number 7")]
    public void Parse_MetadataNotAnObject_Rejected(string value, string found)
    {
        var messages = AssertRejected(Build("{\"__metadata__\":" + value + "}"), "__metadata__ must be a JSON object of string values");
        Assert.All(messages, m => Assert.Contains(found, m, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("1")]
    [InlineData("null")]
    [InlineData("{}")]
    [InlineData("[\"x\"]")]
    [InlineData("true")]
    public void Parse_MetadataValueNotString_Rejected(string value)
    {
        AssertRejected(Build("{\"__metadata__\":{\"format\":" + value + "}}"), "__metadata__ value for key 'format' must be a string");
    }

    [Fact]
    public void Parse_DuplicateMetadataKey_Rejected()
    {
        AssertRejected(Build("{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}"), "duplicate __metadata__ key 'k'");
    }

    [Fact]
    public void Parse_EmptyTensorName_Rejected()
    {
        const string Header = "{\"\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
        AssertRejected(Build(Header, Sequence(4)), "tensor name is empty");
    }

    [Fact]
    public void Parse_NulInTensorName_Rejected()
    {
        const string Header = "{\"a\\u0000b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
        AssertRejected(Build(Header, Sequence(4)), "tensor name 'a\\u0000b' contains a NUL character");
    }

    [Fact]
    public void Parse_MoreTensorsThanLimit_Rejected()
    {
        const string Header = "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},\"b\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]},\"c\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[2,3]}}";
        var bytes = Build(Header, Sequence(3));
        Assert.Equal(3, SafeTensors.Parse(bytes, Source, new SafeTensorsLimits { MaxTensorCount = 3 }).Count);
        AssertRejected(bytes, "header declares more than 2 tensors (MaxTensorCount)", new SafeTensorsLimits { MaxTensorCount = 2 });
    }

    [Fact]
    public void Parse_HeaderLongerThanCustomLimit_Rejected()
    {
        var bytes = Build(OneF32, Sequence(4));
        AssertRejected(bytes, "exceeds the limit of 16 bytes (MaxHeaderBytes)", new SafeTensorsLimits { MaxHeaderBytes = 16 });
    }

    [Fact]
    public void Parse_FileLargerThanLimit_Rejected()
    {
        var bytes = Build(OneF32, Sequence(4));
        var limits = new SafeTensorsLimits { MaxFileBytes = bytes.Length - 1 };
        foreach (var (_, parse) in AllRoutes(bytes, limits))
        {
            var ex = Assert.Throws<SafeTensorsFormatException>(() => parse());
            Assert.Contains("(MaxFileBytes)", ex.Message, StringComparison.Ordinal);
            Assert.StartsWith(Source + ": ", ex.Message, StringComparison.Ordinal);
        }

        Assert.Single(SafeTensors.Parse(bytes, Source, new SafeTensorsLimits { MaxFileBytes = bytes.Length }).Tensors);
    }

    [Fact]
    public void Read_PathOfMalformedFile_MessageNamesPath()
    {
        string directory = Directory.CreateTempSubdirectory("fedrebasin-tensors-").FullName;
        try
        {
            string path = Path.Combine(directory, "model.safetensors");
            File.WriteAllBytes(path, Build(OneF32, Sequence(3)));
            var ex = Assert.Throws<SafeTensorsFormatException>(() => SafeTensors.Read(path));
            Assert.Equal(path, ex.SourceName);
            Assert.StartsWith(path + ": ", ex.Message, StringComparison.Ordinal);
            Assert.Contains("out of range", ex.Message, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public void Parse_DeeplyNestedJson_RejectedQuickly()
    {
        string header = "{\"a\":{\"dtype\":" + new string('[', 100_000) + new string(']', 100_000) + "}}";
        AssertRejected(Build(header), "tensor 'a': field 'dtype' must be a string, found an array");
        string nestedRoot = "{\"a\":" + new string('[', 100_000) + new string(']', 100_000) + "}";
        AssertRejected(Build(nestedRoot), "entry must be a JSON object");
    }

    [Fact]
    public void Parse_LongHostileName_MessageIsBounded()
    {
        string name = new('x', 100_000);
        string header = $"{{\"{name}\":{{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,5]}}}}";
        var messages = AssertRejected(Build(header, Sequence(5)), "but data_offsets span 5 bytes");
        Assert.All(messages, m => Assert.True(m.Length < 1000, $"message is {m.Length} chars"));
    }

    [Fact]
    public void Parse_HeaderLengthPrefixIsLittleEndian()
    {
        var bytes = Build(OneF32, Sequence(4));
        BinaryPrimitives.WriteUInt64BigEndian(bytes, (ulong)Encoding.UTF8.GetByteCount(OneF32));
        AssertRejected(bytes, "exceeds the limit");
    }
}
