using System.Security.Cryptography;

namespace FedRebasin.Contracts;

/// <summary>SHA-256 digests as the protocol writes them: 64 lowercase hexadecimal characters.</summary>
public static class Sha256Hex
{
    /// <summary>Number of characters of a digest in hex.</summary>
    public const int Length = 64;

    /// <summary>Digest of <paramref name="data"/> in lowercase hex.</summary>
    public static string Compute(ReadOnlySpan<byte> data)
    {
        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(data, hash);
        return Convert.ToHexStringLower(hash);
    }

    /// <summary>Digest of the rest of <paramref name="stream"/> in lowercase hex.</summary>
    public static async Task<string> ComputeAsync(Stream stream, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(stream);
        var hash = await SHA256.HashDataAsync(stream, cancellationToken).ConfigureAwait(false);
        return Convert.ToHexStringLower(hash);
    }

    /// <summary>Whether <paramref name="value"/> is a well-formed digest (64 hex characters, any case).</summary>
    public static bool IsValid(string? value)
    {
        return value is { Length: Length } && value.All(char.IsAsciiHexDigit);
    }

    /// <summary>Whether two digests are equal, ignoring case; false when either is malformed.</summary>
    public static bool Matches(string? expected, string? actual)
    {
        return IsValid(expected) && IsValid(actual)
            && string.Equals(expected, actual, StringComparison.OrdinalIgnoreCase);
    }
}
