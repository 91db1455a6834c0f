using FedRebasin.Tensors;
using TorchSharp;
using static TorchSharp.torch;

namespace FedRebasin.Torch;

/// <summary>Copies tensors between TorchSharp and safetensors entries (raw little-endian bytes).</summary>
public static class TensorConversion
{
    /// <summary>The safetensors dtype of a torch scalar type.</summary>
    /// <exception cref="NotSupportedException">The type has no safetensors equivalent (complex numbers).</exception>
    public static SafeTensorDType ToSafeTensorDType(ScalarType type) => type switch
    {
        ScalarType.Float32 => SafeTensorDType.F32,
        ScalarType.Float64 => SafeTensorDType.F64,
        ScalarType.Float16 => SafeTensorDType.F16,
        ScalarType.BFloat16 => SafeTensorDType.BF16,
        ScalarType.Int64 => SafeTensorDType.I64,
        ScalarType.Int32 => SafeTensorDType.I32,
        ScalarType.Int16 => SafeTensorDType.I16,
        ScalarType.Int8 => SafeTensorDType.I8,
        ScalarType.Byte => SafeTensorDType.U8,
        ScalarType.Bool => SafeTensorDType.BOOL,
        _ => throw new NotSupportedException($"Tensors of type {type} cannot be stored in safetensors files."),
    };

    /// <summary>The torch scalar type of a safetensors dtype.</summary>
    /// <exception cref="NotSupportedException">TorchSharp has no such type (unsigned 16/32/64-bit, 8-bit floats).</exception>
    public static ScalarType ToScalarType(SafeTensorDType type) => type switch
    {
        SafeTensorDType.F32 => ScalarType.Float32,
        SafeTensorDType.F64 => ScalarType.Float64,
        SafeTensorDType.F16 => ScalarType.Float16,
        SafeTensorDType.BF16 => ScalarType.BFloat16,
        SafeTensorDType.I64 => ScalarType.Int64,
        SafeTensorDType.I32 => ScalarType.Int32,
        SafeTensorDType.I16 => ScalarType.Int16,
        SafeTensorDType.I8 => ScalarType.Int8,
        SafeTensorDType.U8 => ScalarType.Byte,
        SafeTensorDType.BOOL => ScalarType.Bool,
        _ => throw new NotSupportedException($"TorchSharp has no tensor type for safetensors dtype {SafeTensorDTypes.ToSpecString(type)}."),
    };

    /// <summary>Copies a tensor (any device, any layout) into a new entry.</summary>
    public static TensorEntry ToEntry(string name, Tensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        var dtype = ToSafeTensorDType(tensor.dtype);
        using var cpu = tensor.detach().cpu().contiguous();
        return TensorEntry.FromBytes(name, dtype, cpu.shape, cpu.bytes);
    }

    /// <summary>
    /// Makes a new tensor from an entry, converted to <paramref name="dtype"/> when given (e.g. F16 files into a
    /// float32 model), on <paramref name="device"/> (CPU when null).
    /// </summary>
    public static Tensor ToTensor(TensorEntry entry, ScalarType? dtype = null, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(entry);
        Tensor result;
        if (SafeTensorDTypes.IsFloatingPoint(entry.DType) && entry.DType is not (SafeTensorDType.F32 or SafeTensorDType.F64 or SafeTensorDType.F16 or SafeTensorDType.BF16))
        {
            // 8-bit floats: TorchSharp has no such type, so widen to float32.
            result = tensor(entry.ToFloat32Array(), entry.GetShapeArray());
        }
        else if (entry.DType is SafeTensorDType.U16 or SafeTensorDType.U32 or SafeTensorDType.U64)
        {
            result = tensor(entry.ToInt64Array(), entry.GetShapeArray());
        }
        else
        {
            result = empty(entry.GetShapeArray(), ToScalarType(entry.DType));
            entry.Data.Span.CopyTo(result.bytes);
        }

        if (dtype is { } wanted && result.dtype != wanted)
        {
            using var original = result;
            result = original.to_type(wanted);
        }

        if (device is not null && device.type != DeviceType.CPU)
        {
            using var host = result;
            result = host.to(device);
        }

        return result;
    }
}
