using System.Buffers.Binary;
using System.Text;

namespace FedRebasin.Tensors.Tests;

/// <summary>Builders for hand-made safetensors bytes and helpers shared by the test classes.</summary>
internal static class TestFiles
{
    public const string Source = "bad.safetensors";

    /// <summary>8-byte prefix (the header's byte length, or <paramref name="declaredLength"/>) + header + data.</summary>
    public static byte[] Build(string headerJson, byte[]? data = null, ulong? declaredLength = null)
        => Build(Encoding.UTF8.GetBytes(headerJson), data, declaredLength);

    public static byte[] Build(byte[] header, byte[]? data = null, ulong? declaredLength = null)
    {
        data ??= [];
        var bytes = new byte[8 + header.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, declaredLength ?? (ulong)header.Length);
        header.CopyTo(bytes, 8);
        data.CopyTo(bytes, 8 + header.Length);
        return bytes;
    }

    /// <summary>Header JSON padded with spaces to a multiple of 8 bytes, as writers pad it.</summary>
    public static string Pad(string headerJson)
    {
        int length = Encoding.UTF8.GetByteCount(headerJson);
        return headerJson + new string(' ', (8 - (length % 8)) % 8);
    }

    public static byte[] Sequence(int count) => [.. Enumerable.Range(0, count).Select(i => (byte)(i * 7 + 1))];

    /// <summary>Parses through all three entry points: memory, seekable stream and non-seekable stream.</summary>
    public static IEnumerable<(string Route, Func<SafeTensorsFile> Parse)> AllRoutes(byte[] bytes, SafeTensorsLimits? limits = null)
    {
        yield return ("Parse", () => SafeTensors.Parse(bytes, Source, limits));
        yield return ("Read(seekable)", () => SafeTensors.Read(new MemoryStream(bytes, writable: false), Source, limits));
        yield return ("Read(non-seekable)", () => SafeTensors.Read(new NonSeekableStream(bytes), Source, limits));
    }

    /// <summary>
    /// Asserts every route throws <see cref="SafeTensorsFormatException"/> whose message names the source and
    /// contains <paramref name="phrase"/>. Returns the messages (one per route).
    /// </summary>
    public static IReadOnlyList<string> AssertRejected(byte[] bytes, string phrase, SafeTensorsLimits? limits = null)
    {
        var messages = new List<string>();
        foreach (var (route, parse) in AllRoutes(bytes, limits))
        {
            var ex = Assert.Throws<SafeTensorsFormatException>(() => parse());
            Assert.Equal(Source, ex.SourceName);
            Assert.StartsWith(Source + ": ", ex.Message, StringComparison.Ordinal);
            Assert.True(
                ex.Message.Contains(phrase, StringComparison.Ordinal),
                $"{route}: expected the message to contain \"{phrase}\" but it was \"{ex.Message}\"");
            messages.Add(ex.Message);
        }

        return messages;
    }

    public static void AssertSameContent(SafeTensorsFile expected, SafeTensorsFile actual)
    {
        Assert.Equal(expected.Names, actual.Names);
        Assert.Equal(expected.Metadata.OrderBy(p => p.Key, StringComparer.Ordinal), actual.Metadata.OrderBy(p => p.Key, StringComparer.Ordinal));
        for (int i = 0; i < expected.Count; i++)
        {
            var e = expected.Tensors[i];
            var a = actual.Tensors[i];
            Assert.Equal(e.Name, a.Name);
            Assert.Equal(e.DType, a.DType);
            Assert.Equal(e.Shape, a.Shape);
            Assert.Equal(e.ElementCount, a.ElementCount);
            Assert.True(e.Data.Span.SequenceEqual(a.Data.Span), $"data of '{e.Name}' differs");
        }
    }
}

/// <summary>A read-only stream over bytes that cannot seek and reports no length (like a network stream).</summary>
internal sealed class NonSeekableStream(byte[] bytes) : Stream
{
    private readonly MemoryStream _inner = new(bytes, writable: false);

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override int Read(byte[] buffer, int offset, int count) => _inner.Read(buffer, offset, Math.Min(count, 4096));

    public override int Read(Span<byte> buffer) => _inner.Read(buffer[..Math.Min(buffer.Length, 4096)]);

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _inner.Dispose();
        }

        base.Dispose(disposing);
    }
}
