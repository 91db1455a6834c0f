namespace FedRebasin.Tensors;

/// <summary>
/// Bounds the reader enforces before allocating anything, so a hostile or corrupt file fails fast with
/// <see cref="SafeTensorsFormatException"/> instead of exhausting memory. Every value must be positive.
/// </summary>
public sealed record SafeTensorsLimits
{
    /// <summary>Default for <see cref="MaxHeaderBytes"/>: 100,000,000 bytes, the reference implementation's limit.</summary>
    public const long DefaultMaxHeaderBytes = 100_000_000;

    /// <summary>Default for <see cref="MaxTensorCount"/>: 1,000,000 tensors.</summary>
    public const int DefaultMaxTensorCount = 1_000_000;

    /// <summary>Default for <see cref="MaxFileBytes"/>: 64 GiB.</summary>
    public const long DefaultMaxFileBytes = 64L * 1024 * 1024 * 1024;

    /// <summary>Default for <see cref="MaxDimensions"/>: 16 dimensions.</summary>
    public const int DefaultMaxDimensions = 16;

    /// <summary>The defaults listed on each property.</summary>
    public static SafeTensorsLimits Default { get; } = new();

    /// <summary>Largest accepted JSON header, in bytes (the N of the 8-byte prefix). Default 100,000,000.</summary>
    public long MaxHeaderBytes
    {
        get;
        init => field = Positive(value);
    } = DefaultMaxHeaderBytes;

    /// <summary>Largest accepted number of tensors in one file. Default 1,000,000.</summary>
    public int MaxTensorCount
    {
        get;
        init => field = (int)Positive(value);
    } = DefaultMaxTensorCount;

    /// <summary>Largest accepted file (prefix + header + data), in bytes. Default 64 GiB.</summary>
    public long MaxFileBytes
    {
        get;
        init => field = Positive(value);
    } = DefaultMaxFileBytes;

    /// <summary>Largest accepted number of dimensions of one tensor's shape. Default 16.</summary>
    public int MaxDimensions
    {
        get;
        init => field = (int)Positive(value);
    } = DefaultMaxDimensions;

    private static long Positive(long value, [System.Runtime.CompilerServices.CallerArgumentExpression(nameof(value))] string? name = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(value, name);
        return value;
    }
}
