using System.Buffers.Binary;
using System.Text;

namespace FedRebasin.Torch.Native;

/// <summary>One entry of an ELF shared library's version-needs table (<c>SHT_GNU_verneed</c>).</summary>
/// <param name="LibraryName">The library the version is needed from, e.g. <c>libstdc++.so.6</c>.</param>
/// <param name="VersionName">The version, e.g. <c>GLIBCXX_3.4.32</c>.</param>
/// <param name="Flags">The <c>vna_flags</c> field; bit <see cref="ElfVersions.WeakFlag"/> marks a weak need.</param>
/// <param name="FlagsOffset">Byte offset of the 16-bit <c>vna_flags</c> field in the file.</param>
public sealed record ElfVersionNeed(string LibraryName, string VersionName, ushort Flags, long FlagsOffset)
{
    /// <summary>Whether the dynamic loader treats this version as optional.</summary>
    public bool IsWeak => (Flags & ElfVersions.WeakFlag) != 0;
}

/// <summary>
/// Reads and edits the version-needs table of a 64-bit little-endian ELF file. Used to mark a
/// libstdc++ version that a library names but never calls as weak, so that the library loads on
/// systems whose libstdc++ predates it (see docs/TORCHSHARP-LOADING.md).
/// </summary>
public static class ElfVersions
{
    /// <summary><c>VER_FLG_WEAK</c>: a missing weak version is not fatal to the dynamic loader.</summary>
    public const ushort WeakFlag = 0x2;

    private const uint ShtGnuVerneed = 0x6ffffffe;
    private const uint ShtGnuVerdef = 0x6ffffffd;
    private const int VerdefSize = 20;
    private const int VerdauxSize = 8;
    private const int ElfHeaderSize = 64;
    private const int SectionHeaderSize = 64;
    private const int VerneedSize = 16;
    private const int VernauxSize = 16;

    /// <summary>Lists every version-need entry of the ELF image.</summary>
    /// <exception cref="InvalidDataException">The bytes are not a well-formed 64-bit little-endian ELF file.</exception>
    public static IReadOnlyList<ElfVersionNeed> ReadNeeds(ReadOnlySpan<byte> elf)
    {
        var result = new List<ElfVersionNeed>();
        if (!TryFindSection(elf, ShtGnuVerneed, out var section, out var strtab))
        {
            return result;
        }

        long entryOffset = section.Offset;
        for (uint i = 0; i < section.Info; i++)
        {
            var verneed = Slice(elf, entryOffset, VerneedSize);
            ushort auxCount = BinaryPrimitives.ReadUInt16LittleEndian(verneed[2..]);
            uint fileName = BinaryPrimitives.ReadUInt32LittleEndian(verneed[4..]);
            uint auxOffset = BinaryPrimitives.ReadUInt32LittleEndian(verneed[8..]);
            uint next = BinaryPrimitives.ReadUInt32LittleEndian(verneed[12..]);
            string library = ReadString(elf, strtab, fileName);

            long auxPosition = entryOffset + auxOffset;
            for (int a = 0; a < auxCount; a++)
            {
                var aux = Slice(elf, auxPosition, VernauxSize);
                ushort flags = BinaryPrimitives.ReadUInt16LittleEndian(aux[4..]);
                uint name = BinaryPrimitives.ReadUInt32LittleEndian(aux[8..]);
                uint auxNext = BinaryPrimitives.ReadUInt32LittleEndian(aux[12..]);
                result.Add(new ElfVersionNeed(library, ReadString(elf, strtab, name), flags, auxPosition + 4));
                if (auxNext == 0)
                {
                    break;
                }

                auxPosition += auxNext;
            }

            if (next == 0)
            {
                break;
            }

            entryOffset += next;
        }

        return result;
    }

    /// <summary>
    /// Sets <see cref="WeakFlag"/> on the named version needs, in place. Every other byte is left as it was.
    /// </summary>
    /// <returns>The number of entries changed (entries already weak are not counted).</returns>
    /// <exception cref="InvalidDataException">A named version is not needed by the file.</exception>
    public static int MarkWeak(Span<byte> elf, IReadOnlyCollection<string> versionNames)
    {
        var needs = ReadNeeds(elf);
        int changed = 0;
        foreach (string version in versionNames)
        {
            var matches = needs.Where(n => n.VersionName == version).ToList();
            if (matches.Count == 0)
            {
                throw new InvalidDataException($"The ELF file does not need version '{version}'.");
            }

            foreach (var need in matches.Where(n => !n.IsWeak))
            {
                var field = elf.Slice(checked((int)need.FlagsOffset), 2);
                BinaryPrimitives.WriteUInt16LittleEndian(field, (ushort)(need.Flags | WeakFlag));
                changed++;
            }
        }

        return changed;
    }

    /// <summary>Lists the version names a library defines (<c>SHT_GNU_verdef</c>), e.g. every <c>GLIBCXX_*</c> of libstdc++.</summary>
    /// <exception cref="InvalidDataException">The bytes are not a well-formed 64-bit little-endian ELF file.</exception>
    public static IReadOnlySet<string> ReadDefinitions(ReadOnlySpan<byte> elf)
    {
        var result = new HashSet<string>(StringComparer.Ordinal);
        if (!TryFindSection(elf, ShtGnuVerdef, out var section, out var strtab))
        {
            return result;
        }

        long entryOffset = section.Offset;
        for (uint i = 0; i < section.Info; i++)
        {
            var verdef = Slice(elf, entryOffset, VerdefSize);
            ushort auxCount = BinaryPrimitives.ReadUInt16LittleEndian(verdef[6..]);
            uint auxOffset = BinaryPrimitives.ReadUInt32LittleEndian(verdef[12..]);
            uint next = BinaryPrimitives.ReadUInt32LittleEndian(verdef[16..]);
            if (auxCount > 0)
            {
                // The first auxiliary entry names the version itself; later ones name its parents.
                var aux = Slice(elf, entryOffset + auxOffset, VerdauxSize);
                result.Add(ReadString(elf, strtab, BinaryPrimitives.ReadUInt32LittleEndian(aux)));
            }

            if (next == 0)
            {
                break;
            }

            entryOffset += next;
        }

        return result;
    }

    private readonly record struct Section(long Offset, long Size, uint Link, uint Info);

    private static bool TryFindSection(ReadOnlySpan<byte> elf, uint wantedType, out Section found, out Section strtab)
    {
        found = default;
        strtab = default;
        if (elf.Length < ElfHeaderSize || elf[0] != 0x7f || elf[1] != (byte)'E' || elf[2] != (byte)'L' || elf[3] != (byte)'F')
        {
            throw new InvalidDataException("Not an ELF file (bad magic).");
        }

        if (elf[4] != 2 || elf[5] != 1)
        {
            throw new InvalidDataException("Only 64-bit little-endian ELF files are supported.");
        }

        long sectionTable = (long)BinaryPrimitives.ReadUInt64LittleEndian(elf[0x28..]);
        ushort entrySize = BinaryPrimitives.ReadUInt16LittleEndian(elf[0x3A..]);
        ushort count = BinaryPrimitives.ReadUInt16LittleEndian(elf[0x3C..]);
        if (entrySize != SectionHeaderSize)
        {
            throw new InvalidDataException($"Unexpected section header size {entrySize}.");
        }

        for (int i = 0; i < count; i++)
        {
            var header = ReadSection(elf, sectionTable + ((long)i * SectionHeaderSize), out uint type);
            if (type == wantedType)
            {
                found = header;
                strtab = ReadSection(elf, sectionTable + ((long)header.Link * SectionHeaderSize), out _);
                return true;
            }
        }

        return false;
    }

    private static Section ReadSection(ReadOnlySpan<byte> elf, long at, out uint type)
    {
        var header = Slice(elf, at, SectionHeaderSize);
        type = BinaryPrimitives.ReadUInt32LittleEndian(header[4..]);
        long offset = (long)BinaryPrimitives.ReadUInt64LittleEndian(header[0x18..]);
        long size = (long)BinaryPrimitives.ReadUInt64LittleEndian(header[0x20..]);
        uint link = BinaryPrimitives.ReadUInt32LittleEndian(header[0x28..]);
        uint info = BinaryPrimitives.ReadUInt32LittleEndian(header[0x2C..]);
        return new Section(offset, size, link, info);
    }

    private static string ReadString(ReadOnlySpan<byte> elf, Section strtab, uint offset)
    {
        if (offset >= strtab.Size)
        {
            throw new InvalidDataException($"String offset {offset} is outside the string table.");
        }

        var bytes = Slice(elf, strtab.Offset + offset, (int)Math.Min(strtab.Size - offset, 4096));
        int end = bytes.IndexOf((byte)0);
        return Encoding.ASCII.GetString(end < 0 ? bytes : bytes[..end]);
    }

    private static ReadOnlySpan<byte> Slice(ReadOnlySpan<byte> elf, long offset, int length)
    {
        if (offset < 0 || offset > elf.Length - length)
        {
            throw new InvalidDataException($"ELF structure at offset {offset} runs past the end of the file.");
        }

        return elf.Slice((int)offset, length);
    }
}
