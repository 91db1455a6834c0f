using FedRebasin.Contracts;
using Microsoft.Extensions.Configuration;

namespace FedRebasin.Coordinator.Tests;

public sealed class CoordinatorOptionsTests
{
    [Fact]
    public void Validate_Defaults_Succeed()
    {
        var result = new CoordinatorOptionsValidator().Validate(null, new CoordinatorOptions());

        Assert.True(result.Succeeded);
    }

    [Fact]
    public void Validate_BadSettings_NameEachSetting()
    {
        var options = new CoordinatorOptions { Strategy = "nonsense", Rounds = 0, DownloadChunkBytes = 0, MaxUploadChunkBytes = ModelChunker.MaxAllowedChunkBytes + 1, Model = new CoordinatorModelOptions { InputShape = "1,8" } };

        var result = new CoordinatorOptionsValidator().Validate(null, options);

        Assert.True(result.Failed);
        Assert.Contains("Coordinator:Strategy", result.FailureMessage, StringComparison.Ordinal);
        Assert.Contains("Coordinator:Rounds", result.FailureMessage, StringComparison.Ordinal);
        Assert.Contains("Coordinator:DownloadChunkBytes", result.FailureMessage, StringComparison.Ordinal);
        Assert.Contains("Coordinator:MaxUploadChunkBytes", result.FailureMessage, StringComparison.Ordinal);
        Assert.Contains("Coordinator:Model:InputShape", result.FailureMessage, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_EmptyToken_FailsWithoutEchoingTokens()
    {
        var options = new CoordinatorOptions { Tokens = new Dictionary<string, string>(StringComparer.Ordinal) { ["alice"] = " " } };

        var result = new CoordinatorOptionsValidator().Validate(null, options);

        Assert.True(result.Failed);
        Assert.Contains("Coordinator:Tokens:alice", result.FailureMessage, StringComparison.Ordinal);
    }
}

public sealed class UnknownSettingsValidatorTests
{
    private static Microsoft.Extensions.Options.ValidateOptionsResult Validate(Dictionary<string, string?> settings) =>
        new UnknownSettingsValidator(new ConfigurationBuilder().AddInMemoryCollection(settings).Build())
            .Validate(null, new CoordinatorOptions());

    [Fact]
    public void Validate_KnownKeysInAnyCaseListsAndDictionaries_Succeed()
    {
        var result = Validate(new Dictionary<string, string?>
        {
            ["Coordinator:rounds"] = "3",
            ["Coordinator:Model:Hidden:0"] = "16",
            ["Coordinator:Tokens:any-client-name"] = "secret",
            ["Coordinator:Evaluation:Examples"] = "10",
            ["Coordinator:Tls:CertificatePath"] = "a.pem",
            ["Logging:LogLevel:Default"] = "Warning",
        });

        Assert.True(result.Succeeded, result.FailureMessage);
    }

    [Fact]
    public void Validate_MisspelledKeys_RefusedWithTheirPathsAndTheSettingsThere()
    {
        var result = Validate(new Dictionary<string, string?> { ["Coordinator:Rouds"] = "3", ["Coordinator:Model:Hiden:0"] = "16" });

        Assert.True(result.Failed);
        string rounds = Assert.Single(result.Failures!, f => f.StartsWith("Coordinator:Rouds is not a setting", StringComparison.Ordinal));
        string hidden = Assert.Single(result.Failures!, f => f.StartsWith("Coordinator:Model:Hiden is not a setting", StringComparison.Ordinal));
        Assert.Contains("Rounds", rounds, StringComparison.Ordinal);
        Assert.Contains("WidthMultiplier", hidden, StringComparison.Ordinal);
        Assert.DoesNotContain("WidthMultiplier", rounds, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_RenamedChunkBytes_RefusedNamingItsReplacements()
    {
        var result = Validate(new Dictionary<string, string?> { ["Coordinator:ChunkBytes"] = "1048576" });

        Assert.True(result.Failed);
        Assert.Contains("Coordinator:ChunkBytes is no longer a setting", result.FailureMessage, StringComparison.Ordinal);
        Assert.Contains("Coordinator:DownloadChunkBytes", result.FailureMessage, StringComparison.Ordinal);
        Assert.Contains("Coordinator:MaxUploadChunkBytes", result.FailureMessage, StringComparison.Ordinal);
    }
}

[Trait("Category", "Integration")]
public sealed class CoordinatorStartupTests
{
    [Fact]
    public async Task StartAsync_UnknownSetting_FailsNamingIt()
    {
        var error = await Assert.ThrowsAsync<Microsoft.Extensions.Options.OptionsValidationException>(
            () => CoordinatorTestHost.StartAsync(new Dictionary<string, string?> { ["Coordinator:ChunkBytes"] = "65536" }));

        Assert.Contains("Coordinator:ChunkBytes", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task StartAsync_InvalidOptions_FailsNamingTheSetting()
    {
        var error = await Assert.ThrowsAsync<Microsoft.Extensions.Options.OptionsValidationException>(
            () => CoordinatorTestHost.StartAsync(new Dictionary<string, string?> { ["Coordinator:Rounds"] = "0" }));

        Assert.Contains("Coordinator:Rounds", error.Message, StringComparison.Ordinal);
    }
}

public sealed class CoordinatorStrategyOptionsTests
{
    [Theory]
    [InlineData("wm+repair")]
    [InlineData("fedavg+rescale")]
    [InlineData("wm+reshift")]
    public void Validate_CorrectionRepairWithoutCalibration_Accepted(string strategy)
    {
        // Clients answer statistics tasks, so no coordinator data is needed.
        var result = new CoordinatorOptionsValidator().Validate(null, new CoordinatorOptions { Strategy = strategy });

        Assert.True(result.Succeeded, result.FailureMessage);
    }

    [Fact]
    public void Validate_BnResetWithoutCalibration_RefusedNamingBothSettings()
    {
        var result = new CoordinatorOptionsValidator().Validate(null, new CoordinatorOptions { Strategy = "wm+bn-reset" });

        Assert.True(result.Failed);
        Assert.Contains("Coordinator:Strategy", result.FailureMessage, StringComparison.Ordinal);
        Assert.Contains("Coordinator:Calibration", result.FailureMessage, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_BadLimitsAndData_NameEachSetting()
    {
        var options = new CoordinatorOptions
        {
            MaxConcurrentUploads = 0,
            MaxRequestsPerSecond = -1,
            RequestBurst = 0,
            MissedHeartbeats = 0,
            StatisticsDeadline = TimeSpan.Zero,
            KeepModelCheckpoints = 0,
            RepairRounds = -1,
            RepairStrength = 0,
            RepairMaxScale = 0.5,
            TorchThreads = -1,
            Evaluation = new CoordinatorDataOptions { Dataset = "imagenet", Examples = 0, Directory = "/no/such/folder" },
        };

        var result = new CoordinatorOptionsValidator().Validate(null, options);

        Assert.True(result.Failed);
        foreach (string setting in new[]
        {
            "MaxConcurrentUploads", "MaxRequestsPerSecond", "RequestBurst", "MissedHeartbeats", "StatisticsDeadline", "KeepModelCheckpoints", "RepairRounds", "RepairStrength", "RepairMaxScale", "TorchThreads",
            "Evaluation:Dataset", "Evaluation:Examples", "Evaluation:Directory",
        })
        {
            Assert.Contains("Coordinator:" + setting, result.FailureMessage, StringComparison.Ordinal);
        }
    }
}
