using System.Buffers.Binary;
using System.Diagnostics;
using CsCheck;

namespace FedRebasin.Tensors.Tests;

/// <summary>
/// CsCheck property tests. A failure prints the seed of the (shrunk) failing case; set the CsCheck_Seed
/// environment variable to that seed to replay it.
/// </summary>
public sealed class PropertyTests
{
    private const int Iterations = 2_000;
    private static readonly TimeSpan s_maxParseTime = TimeSpan.FromSeconds(1);

    // Characters a name or metadata string may hold: ASCII with quotes, backslashes and control characters
    // (not NUL), plus a few non-ASCII letters and a surrogate pair.
    private static readonly Gen<string> s_text = Gen.OneOf(
        Gen.Char["abcXYZ019._-/ \"\\\u0001\t\n\u007fé中"].Array[0, 6].Select(chars => new string(chars)),
        Gen.OneOf("😀", "layer.0.weight", "__metadata__", ""));

    private static readonly Gen<(SafeTensorDType DType, long[] Shape, string Suffix, byte[] Data)> s_tensor =
        from dtype in Gen.Enum<SafeTensorDType>()
        from shape in Gen.Long[0, 4].Array[0, 4]
        from suffix in s_text
        from data in Gen.Byte.Array[(int)(shape.Aggregate(1L, (a, b) => a * b) * SafeTensorDTypes.SizeInBytes(dtype))]
        select (dtype, shape, suffix, data);

    private static readonly Gen<SafeTensorsFile> s_file =
        from tensors in s_tensor.Array[0, 6]
        from metadata in Gen.Select(s_text, s_text).Array[0, 4]
        select new SafeTensorsFile(
            tensors.Select((t, i) => TensorEntry.FromBytes($"{i}{t.Suffix}", t.DType, t.Shape, t.Data)),
            metadata.GroupBy(p => p.Item1, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.First().Item2, StringComparer.Ordinal));

    /// <summary>A mutation of a valid file: Kind selects what happens, the other fields parameterise it.</summary>
    private sealed record Mutation(int Kind, int Position, byte Value, int Count, ulong Declared);

    private static readonly Gen<Mutation> s_mutation = Gen.Select(
        Gen.Int[0, 6], Gen.Int[0, int.MaxValue], Gen.Byte, Gen.Int[1, 8], Gen.ULong,
        (kind, position, value, count, declared) => new Mutation(kind, position, value, count, declared));

    private static readonly byte[] s_jsonBytes = "{}[]:,\"\\ 0123456789-+.eE_FUIBOLtrufalsn\u00ff"u8.ToArray();

    [Fact]
    public void RandomValidFiles_RoundTripThroughEveryRoute()
    {
        s_file.Sample(
            file =>
            {
                byte[] bytes = SafeTensors.ToBytes(file);
                Assert.Equal(0UL, BinaryPrimitives.ReadUInt64LittleEndian(bytes) % 8);
                foreach (var (_, parse) in TestFiles.AllRoutes(bytes))
                {
                    var parsed = parse();
                    TestFiles.AssertSameContent(file, parsed);
                    Assert.Equal(bytes, SafeTensors.ToBytes(parsed));
                }
            },
            iter: Iterations,
            print: file => string.Join("; ", file.Tensors) + " | metadata: " + string.Join(", ", file.Metadata));
    }

    [Fact]
    public void MutatedValidFiles_OnlyEverThrowFormatExceptionAndFinishQuickly()
    {
        Gen.Select(s_file, s_mutation).Sample(
            (file, mutation) =>
            {
                byte[] bytes = Mutate(SafeTensors.ToBytes(file), mutation);
                foreach (var (route, parse) in TestFiles.AllRoutes(bytes))
                {
                    var stopwatch = Stopwatch.StartNew();
                    try
                    {
                        parse();
                    }
                    catch (SafeTensorsFormatException ex)
                    {
                        Assert.StartsWith(TestFiles.Source + ": ", ex.Message, StringComparison.Ordinal);
                    }

                    Assert.True(stopwatch.Elapsed < s_maxParseTime, $"{route} took {stopwatch.Elapsed}");
                }
            },
            iter: Iterations);
    }

    [Fact]
    public void RandomBytes_OnlyEverThrowFormatException()
    {
        Gen.Select(Gen.Byte.Array[0, 64], Gen.Int[0, 200], Gen.Bool).Sample(
            (tail, headerLength, useJsonAlphabet) =>
            {
                // A plausible prefix (small header length) so the parser gets past the first checks.
                byte[] body = useJsonAlphabet ? [.. tail.Select(b => s_jsonBytes[b % s_jsonBytes.Length])] : tail;
                byte[] bytes = [.. BitConverter.GetBytes((ulong)Math.Min(headerLength, body.Length)), .. body];
                foreach (var (_, parse) in TestFiles.AllRoutes(bytes))
                {
                    try
                    {
                        parse();
                    }
                    catch (SafeTensorsFormatException)
                    {
                        // Expected for nearly every input.
                    }
                }
            },
            iter: Iterations);
    }

    private static byte[] Mutate(byte[] valid, Mutation m)
    {
        int headerEnd = 8 + (int)BinaryPrimitives.ReadUInt64LittleEndian(valid);
        byte[] bytes = (byte[])valid.Clone();
        switch (m.Kind)
        {
            case 0:
                // Overwrite a few bytes anywhere.
                for (int i = 0; i < m.Count; i++)
                {
                    bytes[(int)((m.Position + (i * 7919L)) % bytes.Length)] ^= (byte)(m.Value | 1);
                }

                return bytes;
            case 1:
                // Truncate.
                return bytes[..(m.Position % bytes.Length)];
            case 2:
                // Random 64-bit header length.
                BinaryPrimitives.WriteUInt64LittleEndian(bytes, m.Declared);
                return bytes;
            case 3:
                // Header length off by a little.
                BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)Math.Max(0, headerEnd - 8 + m.Count - 4));
                return bytes;
            case 4:
                // Replace header characters with JSON-significant ones.
                for (int i = 0; i < m.Count; i++)
                {
                    int position = 8 + (int)((m.Position + (i * 31L)) % Math.Max(1, headerEnd - 8));
                    if (position < bytes.Length)
                    {
                        bytes[position] = s_jsonBytes[(m.Value + i) % s_jsonBytes.Length];
                    }
                }

                return bytes;
            case 5:
                // Append or insert bytes in the data buffer.
                int at = headerEnd + (m.Position % (bytes.Length - headerEnd + 1));
                return [.. bytes[..at], .. Enumerable.Repeat(m.Value, m.Count), .. bytes[at..]];
            default:
                // Delete bytes inside the header and fix up the prefix, so the JSON itself is damaged.
                int start = 8 + (m.Position % Math.Max(1, headerEnd - 8));
                int end = Math.Min(headerEnd, start + m.Count);
                byte[] shorter = [.. bytes[..start], .. bytes[end..]];
                BinaryPrimitives.WriteUInt64LittleEndian(shorter, (ulong)(headerEnd - 8 - (end - start)));
                return shorter;
        }
    }
}
