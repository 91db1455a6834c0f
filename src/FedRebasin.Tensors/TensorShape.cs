using System.Globalization;
using System.Text;

namespace FedRebasin.Tensors;

/// <summary>Shape arithmetic shared by the entry factories and the header parser.</summary>
internal static class TensorShape
{
    /// <summary>
    /// Product of the dimensions, or <see langword="false"/> when a dimension is negative or the product does not fit
    /// in a <see cref="long"/>. An empty shape is a scalar (1 element); any zero dimension gives 0 elements.
    /// </summary>
    public static bool TryGetElementCount(ReadOnlySpan<long> shape, out long count)
    {
        count = 1;
        foreach (long dim in shape)
        {
            if (dim < 0)
            {
                return false;
            }

            if (dim == 0)
            {
                count = 0;
                return true;
            }
        }

        foreach (long dim in shape)
        {
            if (count > long.MaxValue / dim)
            {
                return false;
            }

            count *= dim;
        }

        return true;
    }

    /// <summary><paramref name="count"/> times the element size, or <see langword="false"/> on overflow.</summary>
    public static bool TryGetByteCount(long count, SafeTensorDType dtype, out long bytes)
    {
        int size = SafeTensorDTypes.SizeInBytes(dtype);
        if (count > long.MaxValue / size)
        {
            bytes = 0;
            return false;
        }

        bytes = count * size;
        return true;
    }

    /// <summary>Formats a shape as the header writes it, for example <c>[512,784]</c>.</summary>
    public static string Format(ReadOnlySpan<long> shape)
    {
        var builder = new StringBuilder("[");
        for (int i = 0; i < shape.Length; i++)
        {
            if (i > 0)
            {
                builder.Append(',');
            }

            builder.Append(shape[i].ToString(CultureInfo.InvariantCulture));
        }

        return builder.Append(']').ToString();
    }
}

/// <summary>Rules for tensor names, shared by <see cref="TensorEntry"/> and the header parser.</summary>
internal static class TensorNames
{
    /// <summary>The reserved header key that holds the metadata object.</summary>
    public const string MetadataKey = "__metadata__";

    /// <summary>Returns why <paramref name="name"/> is not a valid tensor name, or <see langword="null"/> when it is.</summary>
    public static string? Problem(string name)
    {
        if (name.Length == 0)
        {
            return "tensor name is empty";
        }

        if (name.Contains('\0', StringComparison.Ordinal))
        {
            return $"tensor name {Quote(name)} contains a NUL character";
        }

        if (name == MetadataKey)
        {
            return $"tensor name '{MetadataKey}' is reserved for the metadata object";
        }

        return IsWellFormedUtf16(name) ? null : $"tensor name {Quote(name)} is not well-formed UTF-16 (lone surrogate)";
    }

    /// <summary>True when <paramref name="text"/> has no lone surrogates, so it encodes to UTF-8.</summary>
    public static bool IsWellFormedUtf16(string text)
    {
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (char.IsHighSurrogate(c))
            {
                if (i + 1 >= text.Length || !char.IsLowSurrogate(text[i + 1]))
                {
                    return false;
                }

                i++;
            }
            else if (char.IsLowSurrogate(c))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// Quotes a name for an error message: single quotes, control characters escaped, cut to 200 characters so a
    /// hostile header cannot make messages huge.
    /// </summary>
    public static string Quote(string name)
    {
        const int MaxShown = 200;
        var builder = new StringBuilder("'");
        int shown = Math.Min(name.Length, MaxShown);
        for (int i = 0; i < shown; i++)
        {
            char c = name[i];
            if (char.IsControl(c))
            {
                builder.Append(CultureInfo.InvariantCulture, $"\\u{(int)c:x4}");
            }
            else
            {
                builder.Append(c);
            }
        }

        if (name.Length > MaxShown)
        {
            builder.Append(CultureInfo.InvariantCulture, $"... ({name.Length} chars)");
        }

        return builder.Append('\'').ToString();
    }
}
