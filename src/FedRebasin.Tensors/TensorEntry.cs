using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace FedRebasin.Tensors;

/// <summary>
/// One named tensor of a safetensors file: dtype, shape and raw element bytes (little-endian, row-major / C order).
/// Immutable: factories copy the caller's data, and <see cref="Data"/> is never written after construction.
/// </summary>
/// <remarks>
/// Invariants: <see cref="Name"/> is non-empty, has no NUL character, is not <c>__metadata__</c> and is well-formed
/// UTF-16; every dimension of <see cref="Shape"/> is &gt;= 0; <see cref="Data"/> holds exactly
/// <see cref="ElementCount"/> * <see cref="SafeTensorDTypes.SizeInBytes"/> bytes. An empty shape is a scalar
/// (1 element); a zero dimension means 0 elements.
/// </remarks>
public sealed class TensorEntry
{
    private readonly long[] _shape;

    private TensorEntry(string name, SafeTensorDType dtype, long[] shape, long elementCount, ReadOnlyMemory<byte> data)
    {
        Name = name;
        DType = dtype;
        _shape = shape;
        Shape = Array.AsReadOnly(shape);
        ElementCount = elementCount;
        Data = data;
    }

    /// <summary>The tensor's key in the header.</summary>
    public string Name { get; }

    /// <summary>Element type of <see cref="Data"/>.</summary>
    public SafeTensorDType DType { get; }

    /// <summary>Dimensions, outermost first (row-major). Empty for a scalar.</summary>
    public IReadOnlyList<long> Shape { get; }

    /// <summary>Product of <see cref="Shape"/> (1 for a scalar, 0 when any dimension is 0).</summary>
    public long ElementCount { get; }

    /// <summary>Size of <see cref="Data"/> in bytes: <see cref="ElementCount"/> times the element size.</summary>
    public long ByteCount => Data.Length;

    /// <summary>Raw element bytes, little-endian, row-major. Must not be mutated (see the class remarks).</summary>
    public ReadOnlyMemory<byte> Data { get; }

    /// <summary>Copy of <see cref="Shape"/> as an array.</summary>
    public long[] GetShapeArray() => (long[])_shape.Clone();

    /// <summary>Creates an entry from raw little-endian bytes, which are copied.</summary>
    /// <exception cref="ArgumentException">Invalid name, negative or overflowing shape, or
    /// <paramref name="data"/> length is not element count times element size.</exception>
    public static TensorEntry FromBytes(string name, SafeTensorDType dtype, ReadOnlySpan<long> shape, ReadOnlySpan<byte> data)
    {
        long count = ValidateArguments(name, dtype, shape);
        long expected = ByteCountOrThrow(name, dtype, shape, count);
        if (data.Length != expected)
        {
            throw new ArgumentException(
                $"Tensor {TensorNames.Quote(name)} has shape {TensorShape.Format(shape)} ({count} elements of {SafeTensorDTypes.ToSpecString(dtype)} = {expected} bytes) but {data.Length} bytes were given.",
                nameof(data));
        }

        return new TensorEntry(name, dtype, shape.ToArray(), count, data.ToArray());
    }

    /// <summary>
    /// Creates an entry from <see cref="float"/> values stored as <paramref name="dtype"/>: F32 (exact), F64 (exact),
    /// F16 or BF16 (round to nearest, ties to even).
    /// </summary>
    /// <exception cref="ArgumentException">Invalid name or shape, <paramref name="values"/> length differs from the
    /// element count, or <paramref name="dtype"/> is not one of the four float types above.</exception>
    public static TensorEntry FromFloat32(string name, ReadOnlySpan<long> shape, ReadOnlySpan<float> values, SafeTensorDType dtype = SafeTensorDType.F32)
    {
        long count = ValidateValues(name, dtype, shape, values.Length);
        byte[] bytes = AllocateData(name, dtype, shape, count);
        switch (dtype)
        {
            case SafeTensorDType.F32:
                WriteSingles(values, bytes);
                break;
            case SafeTensorDType.F64:
                for (int i = 0; i < values.Length; i++)
                {
                    BinaryPrimitives.WriteDoubleLittleEndian(bytes.AsSpan(i * 8), values[i]);
                }

                break;
            case SafeTensorDType.F16:
                for (int i = 0; i < values.Length; i++)
                {
                    BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(i * 2), FloatConversions.SingleToHalfBits(values[i]));
                }

                break;
            case SafeTensorDType.BF16:
                for (int i = 0; i < values.Length; i++)
                {
                    BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(i * 2), FloatConversions.SingleToBFloat16Bits(values[i]));
                }

                break;
            default:
                throw NotAFloatTarget(dtype);
        }

        return new TensorEntry(name, dtype, shape.ToArray(), count, bytes);
    }

    /// <summary>
    /// Creates an entry from <see cref="double"/> values stored as <paramref name="dtype"/>: F64 (exact), or F32, F16,
    /// BF16 (each rounded once, to nearest, ties to even).
    /// </summary>
    /// <exception cref="ArgumentException">As for <see cref="FromFloat32"/>.</exception>
    public static TensorEntry FromFloat64(string name, ReadOnlySpan<long> shape, ReadOnlySpan<double> values, SafeTensorDType dtype = SafeTensorDType.F64)
    {
        long count = ValidateValues(name, dtype, shape, values.Length);
        byte[] bytes = AllocateData(name, dtype, shape, count);
        EncodeDoubles(values, dtype, bytes);
        return new TensorEntry(name, dtype, shape.ToArray(), count, bytes);
    }

    /// <summary>Creates an I64 entry.</summary>
    /// <exception cref="ArgumentException">Invalid name or shape, or <paramref name="values"/> length differs from the element count.</exception>
    public static TensorEntry FromInt64(string name, ReadOnlySpan<long> shape, ReadOnlySpan<long> values)
    {
        long count = ValidateValues(name, SafeTensorDType.I64, shape, values.Length);
        byte[] bytes = AllocateData(name, SafeTensorDType.I64, shape, count);
        if (BitConverter.IsLittleEndian)
        {
            MemoryMarshal.AsBytes(values).CopyTo(bytes);
        }
        else
        {
            for (int i = 0; i < values.Length; i++)
            {
                BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(i * 8), values[i]);
            }
        }

        return new TensorEntry(name, SafeTensorDType.I64, shape.ToArray(), count, bytes);
    }

    /// <summary>Creates an I32 entry.</summary>
    /// <exception cref="ArgumentException">As for <see cref="FromInt64"/>.</exception>
    public static TensorEntry FromInt32(string name, ReadOnlySpan<long> shape, ReadOnlySpan<int> values)
    {
        long count = ValidateValues(name, SafeTensorDType.I32, shape, values.Length);
        byte[] bytes = AllocateData(name, SafeTensorDType.I32, shape, count);
        if (BitConverter.IsLittleEndian)
        {
            MemoryMarshal.AsBytes(values).CopyTo(bytes);
        }
        else
        {
            for (int i = 0; i < values.Length; i++)
            {
                BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(i * 4), values[i]);
            }
        }

        return new TensorEntry(name, SafeTensorDType.I32, shape.ToArray(), count, bytes);
    }

    /// <summary>Creates an entry that wraps already-validated data without copying (reader use only).</summary>
    internal static TensorEntry CreateTrusted(string name, SafeTensorDType dtype, long[] shape, long elementCount, ReadOnlyMemory<byte> data)
        => new(name, dtype, shape, elementCount, data);

    /// <summary>Same dtype, shape and data (shared, not copied) under another name.</summary>
    /// <exception cref="ArgumentException"><paramref name="name"/> is not a valid tensor name.</exception>
    public TensorEntry WithName(string name)
    {
        ValidateName(name);
        return new TensorEntry(name, DType, _shape, ElementCount, Data);
    }

    /// <summary>
    /// Values converted to <see cref="float"/>, row-major. Exact for F32, F16, BF16 and F8; F64 and integers wider
    /// than 24 bits are rounded to nearest; BOOL gives 0 or 1.
    /// </summary>
    public float[] ToFloat32Array()
    {
        ReadOnlySpan<byte> data = Data.Span;
        var result = new float[ElementCount];
        switch (DType)
        {
            case SafeTensorDType.F32:
                if (BitConverter.IsLittleEndian)
                {
                    data.CopyTo(MemoryMarshal.AsBytes(result.AsSpan()));
                }
                else
                {
                    for (int i = 0; i < result.Length; i++)
                    {
                        result[i] = BinaryPrimitives.ReadSingleLittleEndian(data[(i * 4)..]);
                    }
                }

                break;
            case SafeTensorDType.F64:
                for (int i = 0; i < result.Length; i++)
                {
                    result[i] = (float)BinaryPrimitives.ReadDoubleLittleEndian(data[(i * 8)..]);
                }

                break;
            case SafeTensorDType.U64:
                for (int i = 0; i < result.Length; i++)
                {
                    result[i] = BinaryPrimitives.ReadUInt64LittleEndian(data[(i * 8)..]);
                }

                break;
            case SafeTensorDType.F16:
            case SafeTensorDType.BF16:
            case SafeTensorDType.F8_E4M3:
            case SafeTensorDType.F8_E5M2:
                for (int i = 0; i < result.Length; i++)
                {
                    result[i] = ReadSmallFloat(data, DType, i);
                }

                break;
            default:
                for (int i = 0; i < result.Length; i++)
                {
                    result[i] = ReadSignedInteger(data, DType, i);
                }

                break;
        }

        return result;
    }

    /// <summary>
    /// Values converted to <see cref="double"/>, row-major. Exact for every dtype except I64/U64 magnitudes above
    /// 2^53, which are rounded to nearest; BOOL gives 0 or 1.
    /// </summary>
    public double[] ToFloat64Array()
    {
        ReadOnlySpan<byte> data = Data.Span;
        var result = new double[ElementCount];
        switch (DType)
        {
            case SafeTensorDType.F64:
                if (BitConverter.IsLittleEndian)
                {
                    data.CopyTo(MemoryMarshal.AsBytes(result.AsSpan()));
                }
                else
                {
                    for (int i = 0; i < result.Length; i++)
                    {
                        result[i] = BinaryPrimitives.ReadDoubleLittleEndian(data[(i * 8)..]);
                    }
                }

                break;
            case SafeTensorDType.F32:
                for (int i = 0; i < result.Length; i++)
                {
                    result[i] = BinaryPrimitives.ReadSingleLittleEndian(data[(i * 4)..]);
                }

                break;
            case SafeTensorDType.U64:
                for (int i = 0; i < result.Length; i++)
                {
                    result[i] = BinaryPrimitives.ReadUInt64LittleEndian(data[(i * 8)..]);
                }

                break;
            case SafeTensorDType.F16:
            case SafeTensorDType.BF16:
            case SafeTensorDType.F8_E4M3:
            case SafeTensorDType.F8_E5M2:
                for (int i = 0; i < result.Length; i++)
                {
                    result[i] = ReadSmallFloat(data, DType, i);
                }

                break;
            default:
                for (int i = 0; i < result.Length; i++)
                {
                    result[i] = ReadSignedInteger(data, DType, i);
                }

                break;
        }

        return result;
    }

    /// <summary>Values of an integer or BOOL tensor as <see cref="long"/> (BOOL gives 0 or 1), row-major.</summary>
    /// <exception cref="NotSupportedException"><see cref="DType"/> is a floating-point type.</exception>
    /// <exception cref="OverflowException">A U64 value is above <see cref="long.MaxValue"/>.</exception>
    public long[] ToInt64Array()
    {
        if (SafeTensorDTypes.IsFloatingPoint(DType))
        {
            throw new NotSupportedException(
                $"Tensor {TensorNames.Quote(Name)} is {SafeTensorDTypes.ToSpecString(DType)}; ToInt64Array needs an integer or BOOL tensor.");
        }

        ReadOnlySpan<byte> data = Data.Span;
        var result = new long[ElementCount];
        if (DType == SafeTensorDType.U64)
        {
            for (int i = 0; i < result.Length; i++)
            {
                result[i] = checked((long)BinaryPrimitives.ReadUInt64LittleEndian(data[(i * 8)..]));
            }
        }
        else
        {
            for (int i = 0; i < result.Length; i++)
            {
                result[i] = ReadSignedInteger(data, DType, i);
            }
        }

        return result;
    }

    /// <summary>
    /// The same tensor stored as <paramref name="target"/>; returns this instance when the dtype already matches.
    /// Float targets (F16, BF16, F32, F64) accept every source dtype and round once to nearest, ties to even (except
    /// that I64/U64 magnitudes above 2^53 may round twice for F16/BF16/F64). Integer and BOOL targets accept integer
    /// and BOOL sources only; values are range-checked and BOOL stores nonzero as 1.
    /// </summary>
    /// <exception cref="NotSupportedException">F8 targets, or a float source with an integer/BOOL target.</exception>
    /// <exception cref="OverflowException">An integer value does not fit <paramref name="target"/>.</exception>
    public TensorEntry ConvertTo(SafeTensorDType target)
    {
        if (target == DType)
        {
            return this;
        }

        _ = SafeTensorDTypes.SizeInBytes(target);
        byte[] bytes = AllocateData(Name, target, _shape, ElementCount);
        switch (target)
        {
            case SafeTensorDType.F32:
                WriteSingles(ToFloat32Array(), bytes);
                break;
            case SafeTensorDType.F64:
            case SafeTensorDType.F16:
            case SafeTensorDType.BF16:
                EncodeDoubles(ToFloat64Array(), target, bytes);
                break;
            case SafeTensorDType.F8_E4M3:
            case SafeTensorDType.F8_E5M2:
                throw new NotSupportedException($"Conversion to {SafeTensorDTypes.ToSpecString(target)} is not supported.");
            default:
                if (SafeTensorDTypes.IsFloatingPoint(DType))
                {
                    throw new NotSupportedException(
                        $"Tensor {TensorNames.Quote(Name)}: conversion from {SafeTensorDTypes.ToSpecString(DType)} to {SafeTensorDTypes.ToSpecString(target)} is not supported.");
                }

                EncodeIntegers(target, bytes);
                break;
        }

        return new TensorEntry(Name, target, _shape, ElementCount, bytes);
    }

    /// <summary>For example <c>0.weight: F32 [512,784]</c>.</summary>
    public override string ToString() => $"{Name}: {SafeTensorDTypes.ToSpecString(DType)} {TensorShape.Format(_shape)}";

    private void EncodeIntegers(SafeTensorDType target, byte[] bytes)
    {
        ReadOnlySpan<byte> data = Data.Span;
        int size = SafeTensorDTypes.SizeInBytes(target);
        for (int i = 0; i < ElementCount; i++)
        {
            Span<byte> destination = bytes.AsSpan(i * size);
            if (target == SafeTensorDType.U64)
            {
                // U64 sources never reach here (same dtype returns early), so a signed read suffices.
                BinaryPrimitives.WriteUInt64LittleEndian(destination, checked((ulong)ReadSignedInteger(data, DType, i)));
                continue;
            }

            long value = DType == SafeTensorDType.U64
                ? checked((long)BinaryPrimitives.ReadUInt64LittleEndian(data[(i * 8)..]))
                : ReadSignedInteger(data, DType, i);
            switch (target)
            {
                case SafeTensorDType.BOOL:
                    destination[0] = value != 0 ? (byte)1 : (byte)0;
                    break;
                case SafeTensorDType.U8:
                    destination[0] = checked((byte)value);
                    break;
                case SafeTensorDType.I8:
                    destination[0] = unchecked((byte)checked((sbyte)value));
                    break;
                case SafeTensorDType.U16:
                    BinaryPrimitives.WriteUInt16LittleEndian(destination, checked((ushort)value));
                    break;
                case SafeTensorDType.I16:
                    BinaryPrimitives.WriteInt16LittleEndian(destination, checked((short)value));
                    break;
                case SafeTensorDType.U32:
                    BinaryPrimitives.WriteUInt32LittleEndian(destination, checked((uint)value));
                    break;
                case SafeTensorDType.I32:
                    BinaryPrimitives.WriteInt32LittleEndian(destination, checked((int)value));
                    break;
                default:
                    BinaryPrimitives.WriteInt64LittleEndian(destination, value);
                    break;
            }
        }
    }

    private static void EncodeDoubles(ReadOnlySpan<double> values, SafeTensorDType dtype, byte[] bytes)
    {
        switch (dtype)
        {
            case SafeTensorDType.F64:
                if (BitConverter.IsLittleEndian)
                {
                    MemoryMarshal.AsBytes(values).CopyTo(bytes);
                }
                else
                {
                    for (int i = 0; i < values.Length; i++)
                    {
                        BinaryPrimitives.WriteDoubleLittleEndian(bytes.AsSpan(i * 8), values[i]);
                    }
                }

                break;
            case SafeTensorDType.F32:
                for (int i = 0; i < values.Length; i++)
                {
                    BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * 4), (float)values[i]);
                }

                break;
            case SafeTensorDType.F16:
                for (int i = 0; i < values.Length; i++)
                {
                    BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(i * 2), FloatConversions.DoubleToHalfBits(values[i]));
                }

                break;
            case SafeTensorDType.BF16:
                for (int i = 0; i < values.Length; i++)
                {
                    BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(i * 2), FloatConversions.DoubleToBFloat16Bits(values[i]));
                }

                break;
            default:
                throw NotAFloatTarget(dtype);
        }
    }

    private static void WriteSingles(ReadOnlySpan<float> values, byte[] bytes)
    {
        if (BitConverter.IsLittleEndian)
        {
            MemoryMarshal.AsBytes(values).CopyTo(bytes);
        }
        else
        {
            for (int i = 0; i < values.Length; i++)
            {
                BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * 4), values[i]);
            }
        }
    }

    private static float ReadSmallFloat(ReadOnlySpan<byte> data, SafeTensorDType dtype, int index) => dtype switch
    {
        SafeTensorDType.F16 => FloatConversions.HalfBitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(data[(index * 2)..])),
        SafeTensorDType.BF16 => FloatConversions.BFloat16BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(data[(index * 2)..])),
        SafeTensorDType.F8_E4M3 => FloatConversions.Float8E4M3ToSingle(data[index]),
        _ => FloatConversions.Float8E5M2ToSingle(data[index]),
    };

    /// <summary>Reads element <paramref name="index"/> of a BOOL or integer tensor other than U64.</summary>
    private static long ReadSignedInteger(ReadOnlySpan<byte> data, SafeTensorDType dtype, int index) => dtype switch
    {
        SafeTensorDType.BOOL => data[index] != 0 ? 1 : 0,
        SafeTensorDType.U8 => data[index],
        SafeTensorDType.I8 => unchecked((sbyte)data[index]),
        SafeTensorDType.U16 => BinaryPrimitives.ReadUInt16LittleEndian(data[(index * 2)..]),
        SafeTensorDType.I16 => BinaryPrimitives.ReadInt16LittleEndian(data[(index * 2)..]),
        SafeTensorDType.U32 => BinaryPrimitives.ReadUInt32LittleEndian(data[(index * 4)..]),
        SafeTensorDType.I32 => BinaryPrimitives.ReadInt32LittleEndian(data[(index * 4)..]),
        SafeTensorDType.I64 => BinaryPrimitives.ReadInt64LittleEndian(data[(index * 8)..]),
        _ => throw new InvalidOperationException($"Unexpected dtype {dtype}."),
    };

    private static ArgumentException NotAFloatTarget(SafeTensorDType dtype) => new(
        $"Float values can be stored as F32, F64, F16 or BF16, not {SafeTensorDTypes.ToSpecString(dtype)}.", nameof(dtype));

    private static void ValidateName(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        string? problem = TensorNames.Problem(name);
        if (problem is not null)
        {
            throw new ArgumentException($"Invalid tensor name: {problem}.", nameof(name));
        }
    }

    /// <summary>The byte count of a tensor of this name, dtype and shape, after the checks every entry passes.</summary>
    internal static long ValidatedByteCount(string name, SafeTensorDType dtype, ReadOnlySpan<long> shape) =>
        ByteCountOrThrow(name, dtype, shape, ValidateArguments(name, dtype, shape));

    private static long ValidateArguments(string name, SafeTensorDType dtype, ReadOnlySpan<long> shape)
    {
        ValidateName(name);
        if (!Enum.IsDefined(dtype))
        {
            throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "Unknown safetensors dtype.");
        }

        if (!TensorShape.TryGetElementCount(shape, out long count))
        {
            throw new ArgumentException(
                $"Tensor {TensorNames.Quote(name)}: shape {TensorShape.Format(shape)} has a negative dimension or more than {long.MaxValue} elements.",
                nameof(shape));
        }

        return count;
    }

    private static long ValidateValues(string name, SafeTensorDType dtype, ReadOnlySpan<long> shape, int valueCount)
    {
        long count = ValidateArguments(name, dtype, shape);
        if (valueCount != count)
        {
            throw new ArgumentException(
                $"Tensor {TensorNames.Quote(name)} has shape {TensorShape.Format(shape)} ({count} elements) but {valueCount} values were given.");
        }

        return count;
    }

    private static long ByteCountOrThrow(string name, SafeTensorDType dtype, ReadOnlySpan<long> shape, long count)
    {
        if (!TensorShape.TryGetByteCount(count, dtype, out long bytes) || bytes > Array.MaxLength)
        {
            throw new ArgumentException(
                $"Tensor {TensorNames.Quote(name)}: shape {TensorShape.Format(shape)} of {SafeTensorDTypes.ToSpecString(dtype)} needs more than {Array.MaxLength} bytes, the largest supported tensor.",
                nameof(shape));
        }

        return bytes;
    }

    private static byte[] AllocateData(string name, SafeTensorDType dtype, ReadOnlySpan<long> shape, long count)
        => new byte[ByteCountOrThrow(name, dtype, shape, count)];
}
