namespace FedRebasin.Tensors;

/// <summary>
/// Element types of the safetensors format. Every type is stored little-endian; the spec string of each
/// member is its name (for example <c>"F32"</c>, <c>"F8_E4M3"</c>), see <see cref="SafeTensorDTypes.ToSpecString"/>.
/// </summary>
public enum SafeTensorDType
{
    /// <summary>Boolean, 1 byte: 0 is false, any other value is true.</summary>
    BOOL,

    /// <summary>Unsigned 8-bit integer.</summary>
    U8,

    /// <summary>Signed 8-bit integer.</summary>
    I8,

    /// <summary>Unsigned 16-bit integer.</summary>
    U16,

    /// <summary>Signed 16-bit integer.</summary>
    I16,

    /// <summary>Unsigned 32-bit integer.</summary>
    U32,

    /// <summary>Signed 32-bit integer.</summary>
    I32,

    /// <summary>Unsigned 64-bit integer.</summary>
    U64,

    /// <summary>Signed 64-bit integer.</summary>
    I64,

    /// <summary>IEEE 754 binary16 (<see cref="Half"/>).</summary>
    F16,

    /// <summary>bfloat16: the upper 16 bits of an IEEE 754 binary32.</summary>
    BF16,

    /// <summary>IEEE 754 binary32 (<see cref="float"/>).</summary>
    F32,

    /// <summary>IEEE 754 binary64 (<see cref="double"/>).</summary>
    F64,

    /// <summary>8-bit float, 4 exponent bits (bias 7), 3 mantissa bits, no infinities (PyTorch <c>float8_e4m3fn</c>).</summary>
    F8_E4M3,

    /// <summary>8-bit float, 5 exponent bits (bias 15), 2 mantissa bits: the upper byte of an F16.</summary>
    F8_E5M2,
}

/// <summary>Sizes and spec names of <see cref="SafeTensorDType"/> values.</summary>
public static class SafeTensorDTypes
{
    private static readonly SafeTensorDType[] s_all = Enum.GetValues<SafeTensorDType>();

    /// <summary>Every supported dtype, in declaration order.</summary>
    public static IReadOnlyList<SafeTensorDType> All => s_all;

    /// <summary>Size of one element in bytes (1, 2, 4 or 8).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="dtype"/> is not a defined member.</exception>
    public static int SizeInBytes(SafeTensorDType dtype) => dtype switch
    {
        SafeTensorDType.BOOL or SafeTensorDType.U8 or SafeTensorDType.I8 => 1,
        SafeTensorDType.F8_E4M3 or SafeTensorDType.F8_E5M2 => 1,
        SafeTensorDType.U16 or SafeTensorDType.I16 or SafeTensorDType.F16 or SafeTensorDType.BF16 => 2,
        SafeTensorDType.U32 or SafeTensorDType.I32 or SafeTensorDType.F32 => 4,
        SafeTensorDType.U64 or SafeTensorDType.I64 or SafeTensorDType.F64 => 8,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "Unknown safetensors dtype."),
    };

    /// <summary>The string used for <paramref name="dtype"/> in a safetensors header, for example <c>"BF16"</c>.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="dtype"/> is not a defined member.</exception>
    public static string ToSpecString(SafeTensorDType dtype) => dtype switch
    {
        SafeTensorDType.BOOL => "BOOL",
        SafeTensorDType.U8 => "U8",
        SafeTensorDType.I8 => "I8",
        SafeTensorDType.U16 => "U16",
        SafeTensorDType.I16 => "I16",
        SafeTensorDType.U32 => "U32",
        SafeTensorDType.I32 => "I32",
        SafeTensorDType.U64 => "U64",
        SafeTensorDType.I64 => "I64",
        SafeTensorDType.F16 => "F16",
        SafeTensorDType.BF16 => "BF16",
        SafeTensorDType.F32 => "F32",
        SafeTensorDType.F64 => "F64",
        SafeTensorDType.F8_E4M3 => "F8_E4M3",
        SafeTensorDType.F8_E5M2 => "F8_E5M2",
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "Unknown safetensors dtype."),
    };

    /// <summary>Parses a header dtype string. Matching is exact and case-sensitive, as in the reference implementation.</summary>
    /// <returns><see langword="false"/> when <paramref name="text"/> names no supported dtype.</returns>
    public static bool TryParse(string? text, out SafeTensorDType dtype)
    {
        foreach (var candidate in s_all)
        {
            if (string.Equals(ToSpecString(candidate), text, StringComparison.Ordinal))
            {
                dtype = candidate;
                return true;
            }
        }

        dtype = default;
        return false;
    }

    /// <summary>Parses a header dtype string (exact, case-sensitive).</summary>
    /// <exception cref="FormatException"><paramref name="text"/> names no supported dtype.</exception>
    public static SafeTensorDType Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return TryParse(text, out var dtype)
            ? dtype
            : throw new FormatException($"Unknown safetensors dtype '{text}'.");
    }

    /// <summary>True for F16, BF16, F32, F64 and the two F8 types.</summary>
    public static bool IsFloatingPoint(SafeTensorDType dtype) => dtype is SafeTensorDType.F16 or SafeTensorDType.BF16
        or SafeTensorDType.F32 or SafeTensorDType.F64 or SafeTensorDType.F8_E4M3 or SafeTensorDType.F8_E5M2;
}
