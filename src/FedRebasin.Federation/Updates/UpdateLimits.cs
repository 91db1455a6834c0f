using System.Globalization;

namespace FedRebasin.Federation.Updates;

/// <summary>Bounds an uploaded update must respect (docs/PROTOCOL.md, "Limits"). Immutable; check with <see cref="Validate"/>.</summary>
public sealed record UpdateLimits
{
    /// <summary>Default <see cref="MaxModelBytes"/>: 1 GiB.</summary>
    public const long DefaultMaxModelBytes = 1L << 30;

    /// <summary>Default <see cref="MaxTensorCount"/>.</summary>
    public const int DefaultMaxTensorCount = 100_000;

    /// <summary>Default <see cref="MaxSampleCount"/>.</summary>
    public const long DefaultMaxSampleCount = 1_000_000_000;

    /// <summary>Default <see cref="MaxHeaderBytes"/>: 16 MiB.</summary>
    public const long DefaultMaxHeaderBytes = 16L << 20;

    /// <summary>The default limits.</summary>
    public static UpdateLimits Default { get; } = new();

    /// <summary>Largest payload accepted, in bytes (refusal <see cref="RefusalReason.TooLarge"/>). Default 1 GiB.</summary>
    public long MaxModelBytes { get; init; } = DefaultMaxModelBytes;

    /// <summary>Most tensors a payload may hold (refusal <see cref="RefusalReason.TooLarge"/>). Default 100,000.</summary>
    public int MaxTensorCount { get; init; } = DefaultMaxTensorCount;

    /// <summary>Largest safetensors JSON header, in bytes (refusal <see cref="RefusalReason.Malformed"/>). Default 16 MiB.</summary>
    public long MaxHeaderBytes { get; init; } = DefaultMaxHeaderBytes;

    /// <summary>Largest sample count a client may claim (refusal <see cref="RefusalReason.BadSampleCount"/>). Default 10^9.</summary>
    public long MaxSampleCount { get; init; } = DefaultMaxSampleCount;

    /// <summary>Checks the settings.</summary>
    /// <exception cref="ArgumentException">A setting is not positive; the message names it.</exception>
    public void Validate()
    {
        Require(MaxModelBytes > 0, nameof(MaxModelBytes), MaxModelBytes);
        Require(MaxTensorCount > 0, nameof(MaxTensorCount), MaxTensorCount);
        Require(MaxHeaderBytes > 0, nameof(MaxHeaderBytes), MaxHeaderBytes);
        Require(MaxSampleCount > 0, nameof(MaxSampleCount), MaxSampleCount);
    }

    private static void Require(bool ok, string name, long value)
    {
        if (!ok)
        {
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"{name} must be positive, not {value}."), name);
        }
    }
}
