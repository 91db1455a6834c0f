using System.Buffers.Binary;
using System.Text;
using FedRebasin.Torch.Native;
using TorchSharp;

namespace FedRebasin.Torch.Tests;

public class NativeLoaderTests
{
    [Fact]
    public void MarkWeak_SmallElf_FlipsOnlyThatFlag()
    {
        // Arrange
        byte[] original = TinyElf.WithVersionNeeds("libstdc++.so.6", "GLIBCXX_3.4.30", "GLIBCXX_3.4.32");
        byte[] patched = (byte[])original.Clone();

        // Act
        int changed = ElfVersions.MarkWeak(patched, ["GLIBCXX_3.4.32"]);

        // Assert
        Assert.Equal(1, changed);
        var differing = Enumerable.Range(0, original.Length).Where(i => original[i] != patched[i]).ToList();
        int flagsOffset = (int)ElfVersions.ReadNeeds(original).Single(n => n.VersionName == "GLIBCXX_3.4.32").FlagsOffset;
        Assert.Equal([flagsOffset], differing);
        Assert.Equal(ElfVersions.WeakFlag, patched[flagsOffset]);
        var needs = ElfVersions.ReadNeeds(patched);
        Assert.True(needs.Single(n => n.VersionName == "GLIBCXX_3.4.32").IsWeak);
        Assert.False(needs.Single(n => n.VersionName == "GLIBCXX_3.4.30").IsWeak);
        Assert.All(needs, n => Assert.Equal("libstdc++.so.6", n.LibraryName));
    }

    [Fact]
    public void MarkWeak_VersionNotNeeded_Throws()
    {
        byte[] elf = TinyElf.WithVersionNeeds("libstdc++.so.6", "GLIBCXX_3.4.30");

        var error = Assert.Throws<InvalidDataException>(() => ElfVersions.MarkWeak(elf, ["GLIBCXX_9.9"]));

        Assert.Contains("GLIBCXX_9.9", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ReadNeeds_NotElf_Throws()
    {
        Assert.Throws<InvalidDataException>(() => ElfVersions.ReadNeeds(Encoding.ASCII.GetBytes("#!/bin/sh\necho hello\n")));
    }

    [Fact]
    public void ReadNeeds_TruncatedElf_ThrowsInvalidData()
    {
        byte[] elf = TinyElf.WithVersionNeeds("libstdc++.so.6", "GLIBCXX_3.4.30");

        Assert.Throws<InvalidDataException>(() => ElfVersions.ReadNeeds(elf.AsSpan(0, elf.Length - 40)));
    }

    [Fact]
    public void MarkWeak_RealTorchSharpLibrary_ChangesOneByte()
    {
        string library = Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        Assert.SkipUnless(OperatingSystem.IsLinux() && File.Exists(library), "Linux x64 TorchSharp build output only");
        byte[] original = File.ReadAllBytes(library);
        var stdcxxNeeds = ElfVersions.ReadNeeds(original).Where(n => n.LibraryName == "libstdc++.so.6").ToList();
        Assert.Contains(stdcxxNeeds, n => n.VersionName == "GLIBCXX_3.4.32");
        byte[] patched = (byte[])original.Clone();

        ElfVersions.MarkWeak(patched, ["GLIBCXX_3.4.32"]);

        Assert.Equal(1, Enumerable.Range(0, original.Length).Count(i => original[i] != patched[i]));
    }

    [Fact]
    public void FindMissingStdCxxVersions_ReportsExactlyWhatTheSystemLibraryLacks()
    {
        string library = Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        Assert.SkipUnless(OperatingSystem.IsLinux() && File.Exists(library), "Linux x64 TorchSharp build output only");
        byte[] image = File.ReadAllBytes(library);
        string stdcxx = File.ReadLines("/proc/self/maps")
            .Select(l => l[Math.Max(0, l.IndexOf('/', StringComparison.Ordinal))..])
            .First(p => Path.GetFileName(p).StartsWith("libstdc++.so.6", StringComparison.Ordinal));
        var defined = ElfVersions.ReadDefinitions(File.ReadAllBytes(stdcxx));
        Assert.Contains("GLIBCXX_3.4", defined);

        var missing = TorchNativeLoader.FindMissingStdCxxVersions(image);

        var needed = ElfVersions.ReadNeeds(image).Where(n => n.LibraryName == "libstdc++.so.6").Select(n => n.VersionName).ToHashSet();
        Assert.Equal(needed.Where(v => !defined.Contains(v)).Order(StringComparer.Ordinal), missing);
    }

    [Fact]
    public void EnsureLoaded_TorchSharpWorks_AndPatchesOnlyWhenNeeded()
    {
        // Act
        var report = TorchNativeLoader.EnsureLoaded();
        using var a = torch.ones(3, 3);
        using var b = a.matmul(a);

        // Assert
        Assert.Equal(3f, b[0, 0].item<float>());
        Assert.Same(report, TorchNativeLoader.EnsureLoaded());
        if (report.Outcome == TorchLoadOutcome.PatchedCopyLoaded)
        {
            Assert.NotEmpty(report.MissingVersions);
            Assert.DoesNotContain(Path.Combine(".nuget", "packages"), report.LibraryPath!, StringComparison.Ordinal);
            Assert.DoesNotContain(AppContext.BaseDirectory, report.LibraryPath!, StringComparison.Ordinal);
        }
        else
        {
            Assert.Empty(report.MissingVersions);
        }
    }

    [Theory]
    [InlineData(null, null, "AVX2")]
    [InlineData("", "", "AVX2")]
    [InlineData("ALL", null, "ALL")]
    [InlineData(null, "AVX512_CORE", "AVX512_CORE")]
    [InlineData("SSE41", "ALL", "SSE41")]
    public void ChooseCap_UserValueWins_ElseAvx2(string? dnnl, string? onednn, string expected)
    {
        Assert.Equal(expected, OneDnnIsaCap.ChooseCap(dnnl, onednn));
    }

    [Fact]
    public void EnsureLoaded_OnLinuxX64_CapIsInTheNativeEnvironment()
    {
        // Act
        var report = TorchNativeLoader.EnsureLoaded();

        // Assert: what native code (oneDNN) reads is the cap the report names.
        if (!OperatingSystem.IsLinux() || System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture != System.Runtime.InteropServices.Architecture.X64)
        {
            Assert.Null(report.OneDnnMaxCpuIsa);
            return;
        }

        Assert.NotNull(report.OneDnnMaxCpuIsa);
        string? native = OneDnnIsaCap.ReadNative(OneDnnIsaCap.Variable) ?? OneDnnIsaCap.ReadNative(OneDnnIsaCap.NewVariable);
        Assert.Equal(report.OneDnnMaxCpuIsa, native);
    }

    /// <summary>Builds the smallest ELF64 file with a string table and a version-needs section.</summary>
    private static class TinyElf
    {
        public static byte[] WithVersionNeeds(string library, params string[] versions)
        {
            // String table: "\0library\0version1\0version2\0..."
            var strtab = new List<byte> { 0 };
            int AddString(string s)
            {
                int at = strtab.Count;
                strtab.AddRange(Encoding.ASCII.GetBytes(s));
                strtab.Add(0);
                return at;
            }

            int libraryName = AddString(library);
            int[] versionNames = versions.Select(AddString).ToArray();

            // One Elf64_Verneed followed by its Elf64_Vernaux entries.
            var verneed = new byte[16 + (16 * versions.Length)];
            BinaryPrimitives.WriteUInt16LittleEndian(verneed.AsSpan(0), 1);
            BinaryPrimitives.WriteUInt16LittleEndian(verneed.AsSpan(2), (ushort)versions.Length);
            BinaryPrimitives.WriteUInt32LittleEndian(verneed.AsSpan(4), (uint)libraryName);
            BinaryPrimitives.WriteUInt32LittleEndian(verneed.AsSpan(8), 16);
            for (int i = 0; i < versions.Length; i++)
            {
                var aux = verneed.AsSpan(16 + (16 * i));
                BinaryPrimitives.WriteUInt32LittleEndian(aux, (uint)(0x1000 + i));
                BinaryPrimitives.WriteUInt16LittleEndian(aux[6..], (ushort)(2 + i));
                BinaryPrimitives.WriteUInt32LittleEndian(aux[8..], (uint)versionNames[i]);
                BinaryPrimitives.WriteUInt32LittleEndian(aux[12..], i == versions.Length - 1 ? 0u : 16u);
            }

            int strtabOffset = 64;
            int verneedOffset = strtabOffset + strtab.Count;
            int sectionTable = (verneedOffset + verneed.Length + 7) & ~7;
            var file = new byte[sectionTable + (3 * 64)];
            file[0] = 0x7f;
            file[1] = (byte)'E';
            file[2] = (byte)'L';
            file[3] = (byte)'F';
            file[4] = 2;
            file[5] = 1;
            file[6] = 1;
            BinaryPrimitives.WriteUInt16LittleEndian(file.AsSpan(0x10), 3);
            BinaryPrimitives.WriteUInt16LittleEndian(file.AsSpan(0x12), 0x3E);
            BinaryPrimitives.WriteUInt64LittleEndian(file.AsSpan(0x28), (ulong)sectionTable);
            BinaryPrimitives.WriteUInt16LittleEndian(file.AsSpan(0x34), 64);
            BinaryPrimitives.WriteUInt16LittleEndian(file.AsSpan(0x3A), 64);
            BinaryPrimitives.WriteUInt16LittleEndian(file.AsSpan(0x3C), 3);
            strtab.ToArray().CopyTo(file, strtabOffset);
            verneed.CopyTo(file, verneedOffset);

            void WriteSection(int index, uint type, int offset, int size, uint link, uint info)
            {
                var header = file.AsSpan(sectionTable + (64 * index), 64);
                BinaryPrimitives.WriteUInt32LittleEndian(header[4..], type);
                BinaryPrimitives.WriteUInt64LittleEndian(header[0x18..], (ulong)offset);
                BinaryPrimitives.WriteUInt64LittleEndian(header[0x20..], (ulong)size);
                BinaryPrimitives.WriteUInt32LittleEndian(header[0x28..], link);
                BinaryPrimitives.WriteUInt32LittleEndian(header[0x2C..], info);
            }

            WriteSection(1, 3, strtabOffset, strtab.Count, 0, 0);
            WriteSection(2, 0x6ffffffe, verneedOffset, verneed.Length, 1, 1);
            return file;
        }
    }
}
