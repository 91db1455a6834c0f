using System.Diagnostics;
using FedRebasin.Tests.Shared;

namespace FedRebasin.Coordinator.Tests;

/// <summary>deploy/prometheus: the configuration and rules pass promtool's checks and the rules' unit tests.</summary>
[Trait("Category", "Integration")]
public sealed class PrometheusConfigTests
{
    private static string PrometheusFolder()
    {
        var folder = new DirectoryInfo(AppContext.BaseDirectory);
        while (folder is not null && !File.Exists(Path.Combine(folder.FullName, "FedRebasin.sln")))
        {
            folder = folder.Parent;
        }

        Assert.NotNull(folder);
        return Path.Combine(folder.FullName, "deploy", "prometheus");
    }

    [Theory]
    [InlineData("check", "config", "prometheus.yml")]
    [InlineData("check", "rules", "rules.yml")]
    [InlineData("test", "rules", "rules.test.yml")]
    public async Task Promtool_Passes(string verb, string what, string file)
    {
        Requirements.Require(File.Exists("/usr/bin/promtool"), "promtool (apt-get install prometheus)");
        var info = new ProcessStartInfo("/usr/bin/promtool") { WorkingDirectory = PrometheusFolder(), RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string arg in new[] { verb, what, file })
        {
            info.ArgumentList.Add(arg);
        }

        using var process = Process.Start(info)!;
        string output = await process.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken)
            + await process.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        await process.WaitForExitAsync(TestContext.Current.CancellationToken);

        Assert.True(process.ExitCode == 0, output);
    }
}
