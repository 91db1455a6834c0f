using FedRebasin.Merging.Repair;

namespace FedRebasin.Merging.Tests.Repair;

public sealed class RepairModesTests
{
    [Theory]
    [InlineData("none", RepairMode.None)]
    [InlineData("repair", RepairMode.Repair)]
    [InlineData("rescale", RepairMode.Rescale)]
    [InlineData("reshift", RepairMode.Reshift)]
    [InlineData("bn-reset", RepairMode.BnReset)]
    [InlineData(" ReScale ", RepairMode.Rescale)]
    public void Parse_KnownName_ReturnsModeThatRoundTrips(string text, RepairMode expected)
    {
        // Act
        var mode = RepairModes.Parse(text);

        // Assert
        Assert.Equal(expected, mode);
        Assert.Equal(mode, RepairModes.Parse(RepairModes.ToName(mode)));
    }

    [Theory]
    [InlineData("bnreset")]
    [InlineData("")]
    [InlineData("repair!")]
    public void Parse_UnknownName_ThrowsFormatExceptionListingAllowedNames(string text)
    {
        // Act
        var error = Assert.Throws<FormatException>(() => RepairModes.Parse(text));

        // Assert
        Assert.Contains("none, repair, rescale, reshift, bn-reset", error.Message, StringComparison.Ordinal);
        Assert.Contains($"'{text}'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ToName_UndefinedValue_Throws()
    {
        // Act and Assert
        Assert.Throws<ArgumentOutOfRangeException>(() => RepairModes.ToName((RepairMode)42));
    }
}
