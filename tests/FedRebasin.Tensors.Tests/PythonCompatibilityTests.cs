using System.Text;

namespace FedRebasin.Tensors.Tests;

/// <summary>
/// Bytes laid out as Python's <c>safetensors.torch.save_file</c> lays them out for
/// <c>{"a": torch.tensor([[1., 2.], [3., 4.]]), "b": torch.tensor([1, 2, 3])}</c> with
/// <c>metadata={"format": "pt"}</c>: compact serde_json header, <c>__metadata__</c> first, tensors sorted by
/// descending dtype (I64 before F32) then name, header padded with spaces to a multiple of 8.
/// </summary>
public sealed class PythonCompatibilityTests
{
    private const string HeaderJson =
        "{\"__metadata__\":{\"format\":\"pt\"}," +
        "\"b\":{\"dtype\":\"I64\",\"shape\":[3],\"data_offsets\":[0,24]}," +
        "\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[24,40]}}";

    private static byte[] PythonBytes()
    {
        byte[] prefix = [0x90, 0, 0, 0, 0, 0, 0, 0]; // 144 = 143 bytes of JSON + 1 space of padding
        byte[] header = Encoding.UTF8.GetBytes(HeaderJson + " ");
        byte[] b =
        [
            1, 0, 0, 0, 0, 0, 0, 0,
            2, 0, 0, 0, 0, 0, 0, 0,
            3, 0, 0, 0, 0, 0, 0, 0,
        ];
        byte[] a =
        [
            0x00, 0x00, 0x80, 0x3F, // 1.0f
            0x00, 0x00, 0x00, 0x40, // 2.0f
            0x00, 0x00, 0x40, 0x40, // 3.0f
            0x00, 0x00, 0x80, 0x40, // 4.0f
        ];
        return [.. prefix, .. header, .. b, .. a];
    }

    [Fact]
    public void Parse_PythonLayout_ReadsMetadataShapesAndValues()
    {
        Assert.Equal(143, Encoding.UTF8.GetByteCount(HeaderJson));
        var file = SafeTensors.Parse(PythonBytes(), "python.safetensors");

        Assert.Equal(new Dictionary<string, string> { ["format"] = "pt" }, file.Metadata);
        Assert.Equal(["b", "a"], file.Names);
        Assert.Equal(SafeTensorDType.I64, file["b"].DType);
        Assert.Equal([3L], file["b"].Shape);
        Assert.Equal([1L, 2L, 3L], file["b"].ToInt64Array());
        Assert.Equal(SafeTensorDType.F32, file["a"].DType);
        Assert.Equal([2L, 2L], file["a"].Shape);
        Assert.Equal([1f, 2f, 3f, 4f], file["a"].ToFloat32Array());
        Assert.Equal([1d, 2d, 3d, 4d], file["a"].ToFloat64Array());
    }

    [Fact]
    public void ToBytes_SameTensorsInPythonOrder_ByteIdenticalToPython()
    {
        var file = new SafeTensorsFile(
            [
                TensorEntry.FromInt64("b", [3], [1, 2, 3]),
                TensorEntry.FromFloat32("a", [2, 2], [1f, 2f, 3f, 4f]),
            ],
            new Dictionary<string, string> { ["format"] = "pt" });

        Assert.Equal(PythonBytes(), SafeTensors.ToBytes(file));
    }

    [Fact]
    public void Parse_ReparsedAndRewritten_ByteIdentical()
    {
        var bytes = PythonBytes();
        Assert.Equal(bytes, SafeTensors.ToBytes(SafeTensors.Parse(bytes, "python.safetensors")));
    }
}
