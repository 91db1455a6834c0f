using FedRebasin.Federation.Strategies;
using FedRebasin.Merging.Averaging;
using FedRebasin.Merging.Repair;

namespace FedRebasin.Federation.Tests;

public sealed class StrategySpecTests
{
    public static TheoryData<string> KnownNames() => [.. StrategySpec.KnownNames];

    [Theory]
    [MemberData(nameof(KnownNames))]
    public void Parse_KnownCompactName_RoundTrips(string name)
    {
        // Act
        var spec = StrategySpec.Parse(name);

        // Assert
        Assert.Equal(name, spec.ToString());
        Assert.Equal(spec, StrategySpec.Parse(spec.ToString()));
    }

    [Theory]
    [InlineData("fedavg", AlignmentKind.None, AggregationKind.Mean, RepairMode.None)]
    [InlineData("wm", AlignmentKind.WeightMatching, AggregationKind.Mean, RepairMode.None)]
    [InlineData("wm+repair", AlignmentKind.WeightMatching, AggregationKind.Mean, RepairMode.Repair)]
    [InlineData("wm+bn-reset", AlignmentKind.WeightMatching, AggregationKind.Mean, RepairMode.BnReset)]
    [InlineData("fedavg+rescale", AlignmentKind.None, AggregationKind.Mean, RepairMode.Rescale)]
    [InlineData("median", AlignmentKind.None, AggregationKind.Median, RepairMode.None)]
    [InlineData("wm+trimmed-mean", AlignmentKind.WeightMatching, AggregationKind.TrimmedMean, RepairMode.None)]
    [InlineData("wm+median+repair", AlignmentKind.WeightMatching, AggregationKind.Median, RepairMode.Repair)]
    [InlineData(" WM+Reshift ", AlignmentKind.WeightMatching, AggregationKind.Mean, RepairMode.Reshift)]
    public void Parse_CompactName_GivesPipeline(string name, AlignmentKind alignment, AggregationKind aggregation, RepairMode repair)
    {
        // Act
        var spec = StrategySpec.Parse(name);

        // Assert
        Assert.Equal(new StrategySpec(alignment, aggregation, repair), spec);
    }

    [Theory]
    [InlineData("fedavg+median", "median")]
    [InlineData("wm+mean", "wm")]
    [InlineData("fedavg+mean+repair", "fedavg+repair")]
    [InlineData("bn-reset", "fedavg+bn-reset")]
    public void ToString_AliasName_GivesCanonicalName(string alias, string canonical)
    {
        // Act
        string name = StrategySpec.Parse(alias).ToString();

        // Assert
        Assert.Equal(canonical, name);
    }

    [Fact]
    public void Parse_ExplicitForm_GivesPipeline()
    {
        // Act
        var spec = StrategySpec.Parse("align=wm,aggregate=median,repair=rescale");

        // Assert
        Assert.Equal(new StrategySpec(AlignmentKind.WeightMatching, AggregationKind.Median, RepairMode.Rescale), spec);
        Assert.Equal("wm+median+rescale", spec.ToString());
    }

    [Fact]
    public void Parse_ExplicitFormWithMissingKeys_UsesDefaults()
    {
        // Act
        var spec = StrategySpec.Parse("repair=repair, align=none");

        // Assert
        Assert.Equal(new StrategySpec(AlignmentKind.None, AggregationKind.Mean, RepairMode.Repair), spec);
    }

    [Theory]
    [InlineData("fedprox")]
    [InlineData("wm+foo")]
    [InlineData("repair+wm")]
    [InlineData("wm+wm")]
    [InlineData("wm+repair+median")]
    public void Parse_UnknownOrMisplacedPart_ThrowsListingNames(string name)
    {
        // Act
        var error = Assert.Throws<FormatException>(() => StrategySpec.Parse(name));

        // Assert
        Assert.Contains("wm+repair", error.Message, StringComparison.Ordinal);
        Assert.Contains("trimmed-mean", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("align=xx", "align must be none or wm")]
    [InlineData("align=wm,speed=3", "keys align, aggregate, repair")]
    [InlineData("align=wm,align=none", "more than once")]
    [InlineData("aggregate=mode", "mean, median or trimmed-mean")]
    [InlineData("repair=fix", "none, repair, rescale, reshift, bn-reset")]
    public void Parse_BadExplicitForm_ThrowsWithReason(string text, string expected)
    {
        // Act
        var error = Assert.Throws<FormatException>(() => StrategySpec.Parse(text));

        // Assert
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_Empty_Throws()
    {
        // Act / Assert
        Assert.Throws<FormatException>(() => StrategySpec.Parse("  "));
    }

    [Fact]
    public void ParseList_CompactNames_KeepsOrder()
    {
        // Act
        var specs = StrategySpec.ParseList("fedavg, wm ,wm+repair");

        // Assert
        Assert.Equal(["fedavg", "wm", "wm+repair"], specs.Select(s => s.ToString()));
    }

    [Fact]
    public void ParseList_ExplicitForm_ThrowsSayingItIsNotAllowed()
    {
        // Act
        var error = Assert.Throws<FormatException>(() => StrategySpec.ParseList("align=wm,repair=rescale"));

        // Assert
        Assert.Contains("only accepted for a single strategy", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("")]
    [InlineData("fedavg,,wm")]
    [InlineData("wm,wm+mean")]
    [InlineData("fedavg,nope")]
    public void ParseList_BadList_Throws(string text)
    {
        // Act / Assert
        Assert.Throws<FormatException>(() => StrategySpec.ParseList(text));
    }
}
