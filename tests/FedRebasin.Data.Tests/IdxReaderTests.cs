using System.Buffers.Binary;

namespace FedRebasin.Data.Tests;

public sealed class IdxReaderTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Theory]
    [InlineData(false, "images")]
    [InlineData(true, "images")]
    [InlineData(true, "images.idx3-ubyte.raw")]
    [InlineData(false, "images.gz")]
    public void ReadImages_RawOrGzip_RoundTrips(bool gzip, string fileName)
    {
        // Compression is detected from content, so misleading extensions must not matter.
        string path = _dir.File(fileName);
        byte[] pixels = TestFiles.Pattern(5 * 3 * 4, salt: 1);
        TestFiles.Write(path, TestFiles.IdxImages(5, 3, 4, pixels), gzip);

        (int count, int rows, int cols, byte[] read) = IdxReader.ReadImages(path);

        Assert.Equal(5, count);
        Assert.Equal(3, rows);
        Assert.Equal(4, cols);
        Assert.Equal(pixels, read);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ReadLabels_RawOrGzip_RoundTrips(bool gzip)
    {
        string path = _dir.File("labels");
        byte[] labels = [3, 1, 4, 1, 5, 9, 2, 6];
        TestFiles.Write(path, TestFiles.IdxLabels(labels), gzip);

        Assert.Equal(labels, IdxReader.ReadLabels(path));
        Assert.Equal(labels, IdxReader.ReadLabels(path, classCount: 10));
    }

    [Fact]
    public void ReadImages_WrongMagic_ThrowsNamingFile()
    {
        string path = _dir.File("not-idx");
        byte[] bytes = TestFiles.IdxImages(2, 2, 2, new byte[8]);
        bytes[0] = 0x12;
        bytes[1] = 0x34;
        File.WriteAllBytes(path, bytes);

        var ex = Assert.Throws<DataFormatException>(() => IdxReader.ReadImages(path));

        Assert.Contains(path, ex.Message, StringComparison.Ordinal);
        Assert.Contains("magic", ex.Message, StringComparison.Ordinal);
        Assert.Equal(path, ex.FilePath);
    }

    [Fact]
    public void ReadImages_LabelFileGiven_ThrowsWrongMagic()
    {
        string path = _dir.File("labels-as-images");
        TestFiles.Write(path, TestFiles.IdxLabels([1, 2, 3]), gzip: false);

        var ex = Assert.Throws<DataFormatException>(() => IdxReader.ReadImages(path));

        Assert.Contains(path, ex.Message, StringComparison.Ordinal);
        Assert.Contains("0x00000801", ex.Message, StringComparison.Ordinal);
        Assert.Contains("0x00000803", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ReadLabels_ImageFileGiven_ThrowsWrongMagic()
    {
        string path = _dir.File("images-as-labels");
        TestFiles.Write(path, TestFiles.IdxImages(1, 2, 2, new byte[4]), gzip: true);

        var ex = Assert.Throws<DataFormatException>(() => IdxReader.ReadLabels(path));

        Assert.Contains(path, ex.Message, StringComparison.Ordinal);
        Assert.Contains("magic", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0x0D)]
    [InlineData(0x09)]
    [InlineData(0x0B)]
    public void ReadImages_UnsupportedTypeCode_Throws(byte typeCode)
    {
        string path = _dir.File("float-idx");
        File.WriteAllBytes(path, TestFiles.Idx(typeCode, [1, 2, 2], new byte[4]));

        var ex = Assert.Throws<DataFormatException>(() => IdxReader.ReadImages(path));

        Assert.Contains(path, ex.Message, StringComparison.Ordinal);
        Assert.Contains("type code", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0, 2, 2)]
    [InlineData(2, 0, 2)]
    [InlineData(-1, 2, 2)]
    [InlineData(2, 2, int.MinValue)]
    public void ReadImages_NonPositiveDimension_Throws(int count, int rows, int cols)
    {
        string path = _dir.File("bad-dims");
        File.WriteAllBytes(path, TestFiles.Idx(0x08, [count, rows, cols], new byte[8]));

        var ex = Assert.Throws<DataFormatException>(() => IdxReader.ReadImages(path));

        Assert.Contains(path, ex.Message, StringComparison.Ordinal);
        Assert.Contains("must be positive", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ReadImages_AbsurdDimensions_ThrowsBeforeAllocating()
    {
        string path = _dir.File("huge-dims");
        File.WriteAllBytes(path, TestFiles.Idx(0x08, [int.MaxValue, int.MaxValue, int.MaxValue], new byte[16]));

        var ex = Assert.Throws<DataFormatException>(() => IdxReader.ReadImages(path));

        Assert.Contains(path, ex.Message, StringComparison.Ordinal);
        Assert.Contains(nameof(IdxReader.MaxDataBytes), ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ReadImages_Truncated_Throws(bool gzip)
    {
        string path = _dir.File("truncated");
        byte[] full = TestFiles.IdxImages(4, 3, 3, TestFiles.Pattern(36, 2));
        TestFiles.Write(path, full[..^5], gzip);

        var ex = Assert.Throws<DataFormatException>(() => IdxReader.ReadImages(path));

        Assert.Contains(path, ex.Message, StringComparison.Ordinal);
        Assert.Contains("truncated", ex.Message, StringComparison.Ordinal);
        Assert.Contains("36", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ReadImages_TruncatedInsideHeader_Throws()
    {
        string path = _dir.File("short-header");
        File.WriteAllBytes(path, TestFiles.IdxImages(1, 1, 1, [7])[..9]);

        var ex = Assert.Throws<DataFormatException>(() => IdxReader.ReadImages(path));

        Assert.Contains(path, ex.Message, StringComparison.Ordinal);
        Assert.Contains("truncated", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(3)]
    public void ReadLabels_TooShortForHeader_Throws(int length)
    {
        string path = _dir.File("tiny");
        File.WriteAllBytes(path, new byte[length]);

        var ex = Assert.Throws<DataFormatException>(() => IdxReader.ReadLabels(path));

        Assert.Contains(path, ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ReadLabels_TrailingBytes_Throws(bool gzip)
    {
        string path = _dir.File("trailing");
        byte[] bytes = [.. TestFiles.IdxLabels([1, 2, 3]), 0xAA, 0xBB];
        TestFiles.Write(path, bytes, gzip);

        var ex = Assert.Throws<DataFormatException>(() => IdxReader.ReadLabels(path));

        Assert.Contains(path, ex.Message, StringComparison.Ordinal);
        Assert.Contains("2 unexpected trailing bytes", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ReadImages_CorruptDeflateData_Throws()
    {
        string path = _dir.File("corrupt.gz");
        byte[] gz = TestFiles.Gzip(TestFiles.IdxImages(10, 8, 8, TestFiles.Pattern(640, 3)));
        gz[10] = 0xFF; // First deflate block header: BFINAL=1, BTYPE=11 (reserved, invalid).
        File.WriteAllBytes(path, gz);

        var ex = Assert.Throws<DataFormatException>(() => IdxReader.ReadImages(path));

        Assert.Contains(path, ex.Message, StringComparison.Ordinal);
        Assert.Contains("gzip", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ReadImages_GzipWithBadChecksum_Throws()
    {
        string path = _dir.File("bad-crc.gz");
        byte[] gz = TestFiles.Gzip(TestFiles.IdxImages(10, 8, 8, TestFiles.Pattern(640, 3)));
        gz[^8] ^= 0xFF; // Flip the CRC32 in the gzip trailer.
        File.WriteAllBytes(path, gz);

        var ex = Assert.Throws<DataFormatException>(() => IdxReader.ReadImages(path));

        Assert.Contains(path, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ReadImages_CompressedFileCutShort_Throws()
    {
        string path = _dir.File("cut.gz");
        byte[] gz = TestFiles.Gzip(TestFiles.IdxImages(10, 8, 8, TestFiles.Pattern(640, 4)));
        File.WriteAllBytes(path, gz[..(gz.Length / 2)]);

        var ex = Assert.Throws<DataFormatException>(() => IdxReader.ReadImages(path));

        Assert.Contains(path, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ReadImages_GzipMagicThenGarbage_Throws()
    {
        string path = _dir.File("garbage.gz");
        byte[] bytes = [0x1f, 0x8b, .. TestFiles.Pattern(100, 9)];
        File.WriteAllBytes(path, bytes);

        var ex = Assert.Throws<DataFormatException>(() => IdxReader.ReadImages(path));

        Assert.Contains(path, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ReadImages_MissingFile_ThrowsFileNotFound()
    {
        Assert.Throws<FileNotFoundException>(() => IdxReader.ReadImages(_dir.File("nope")));
    }

    [Fact]
    public void ReadLabels_LabelOutOfRange_ThrowsNamingFileAndValue()
    {
        string path = _dir.File("labels-oor");
        TestFiles.Write(path, TestFiles.IdxLabels([0, 9, 10, 3]), gzip: false);

        var ex = Assert.Throws<DataFormatException>(() => IdxReader.ReadLabels(path, classCount: 10));

        Assert.Contains(path, ex.Message, StringComparison.Ordinal);
        Assert.Contains("label 10 at position 2", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void LoadIdxPair_ValidFiles_BuildsSingleChannelDataset()
    {
        string images = _dir.File("i.gz");
        string labels = _dir.File("l.gz");
        (byte[] pixels, byte[] labelBytes) = TestFiles.WriteIdxPair(images, labels, 6, 4, 5, classCount: 3, gzip: true);

        ImageDataset ds = IdxReader.LoadIdxPair(images, labels, "fashion-mnist", 10);

        Assert.Equal("fashion-mnist", ds.Name);
        Assert.Equal((6, 1, 4, 5, 10, 20), (ds.Count, ds.Channels, ds.Height, ds.Width, ds.ClassCount, ds.FeatureCount));
        Assert.Equal(pixels, ds.Pixels);
        Assert.Equal(labelBytes.Select(b => (int)b), ds.Labels);
        Assert.Equal([0.2860f], ds.Mean);
        Assert.Equal([0.3530f], ds.Std);
    }

    [Fact]
    public void LoadIdxPair_UnknownName_ComputesNormalisationFromPixels()
    {
        string images = _dir.File("i");
        string labels = _dir.File("l");
        File.WriteAllBytes(images, TestFiles.IdxImages(2, 1, 2, [0, 255, 0, 255]));
        File.WriteAllBytes(labels, TestFiles.IdxLabels([0, 1]));

        ImageDataset ds = IdxReader.LoadIdxPair(images, labels, "my-digits", 2);

        Assert.Equal(0.5f, ds.Mean[0], 6);
        Assert.Equal(0.5f, ds.Std[0], 6);
    }

    [Fact]
    public void LoadIdxPair_CountMismatch_ThrowsWithBothCountsAndFiles()
    {
        string images = _dir.File("imgs");
        string labels = _dir.File("lbls");
        File.WriteAllBytes(images, TestFiles.IdxImages(5, 2, 2, new byte[20]));
        File.WriteAllBytes(labels, TestFiles.IdxLabels([0, 1, 2, 3]));

        var ex = Assert.Throws<DataFormatException>(() => IdxReader.LoadIdxPair(images, labels, "x", 10));

        Assert.Contains(images, ex.Message, StringComparison.Ordinal);
        Assert.Contains(labels, ex.Message, StringComparison.Ordinal);
        Assert.Contains("5 images", ex.Message, StringComparison.Ordinal);
        Assert.Contains("4 labels", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ReadImages_HeaderIsBigEndian_ReadsDimensionsInOrder()
    {
        // Hand-built header, independent of the test writer: 00 00 08 03, 1, 2, 3 (big-endian).
        byte[] bytes = new byte[4 + 12 + 6];
        BinaryPrimitives.WriteInt32BigEndian(bytes, IdxReader.ImagesMagic);
        bytes[7] = 1;
        bytes[11] = 2;
        bytes[15] = 3;
        string path = _dir.File("hand");
        File.WriteAllBytes(path, bytes);

        (int count, int rows, int cols, byte[] pixels) = IdxReader.ReadImages(path);

        Assert.Equal((1, 2, 3, 6), (count, rows, cols, pixels.Length));
    }
}
