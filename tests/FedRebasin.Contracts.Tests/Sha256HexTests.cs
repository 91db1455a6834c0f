namespace FedRebasin.Contracts.Tests;

public sealed class Sha256HexTests
{
    [Fact]
    public void Compute_Empty_IsKnownDigest()
    {
        Assert.Equal("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", Sha256Hex.Compute([]));
    }

    [Fact]
    public async Task ComputeAsync_Stream_MatchesSpan()
    {
        byte[] data = [1, 2, 3, 4];
        using var stream = new MemoryStream(data);

        Assert.Equal(Sha256Hex.Compute(data), await Sha256Hex.ComputeAsync(stream, TestContext.Current.CancellationToken));
    }

    [Theory]
    [InlineData(null, false)]
    [InlineData("", false)]
    [InlineData("abc", false)]
    [InlineData("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", true)]
    [InlineData("E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855", true)]
    [InlineData("g3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", false)]
    public void IsValid_Input_ReportsWellFormed(string? value, bool expected)
    {
        Assert.Equal(expected, Sha256Hex.IsValid(value));
    }

    [Fact]
    public void Matches_DifferentCase_IsTrue()
    {
        var digest = Sha256Hex.Compute([5]);

        Assert.True(Sha256Hex.Matches(digest.ToUpperInvariant(), digest));
        Assert.False(Sha256Hex.Matches(digest, Sha256Hex.Compute([6])));
        Assert.False(Sha256Hex.Matches(null, digest));
    }
}
