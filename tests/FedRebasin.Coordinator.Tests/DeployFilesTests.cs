using System.Text.Json;
using System.Text.RegularExpressions;
using YamlDotNet.RepresentationModel;

namespace FedRebasin.Coordinator.Tests;

/// <summary>
/// deploy/: no Docker engine runs here, so the compose file, the Grafana provisioning and the dashboard are checked by
/// reading them: every service and mount exists, the clients hold disjoint splits, ports and datasource uids agree.
/// </summary>
public sealed partial class DeployFilesTests
{
    internal static string DeployFolder()
    {
        var folder = new DirectoryInfo(AppContext.BaseDirectory);
        while (folder is not null && !File.Exists(Path.Combine(folder.FullName, "FedRebasin.sln")))
        {
            folder = folder.Parent;
        }

        Assert.NotNull(folder);
        return Path.Combine(folder.FullName, "deploy");
    }

    private static YamlMappingNode Yaml(string relative)
    {
        var stream = new YamlStream();
        using var reader = new StreamReader(Path.Combine(DeployFolder(), relative));
        stream.Load(reader);
        return (YamlMappingNode)stream.Documents[0].RootNode;
    }

    private static YamlMappingNode Map(YamlNode node, string key) => (YamlMappingNode)((YamlMappingNode)node).Children[new YamlScalarNode(key)];

    private static string Scalar(YamlNode node, string key) => ((YamlScalarNode)((YamlMappingNode)node).Children[new YamlScalarNode(key)]).Value!;

    private static string Option(string command, string name) => OptionValue().Matches(command).First(m => m.Groups[1].Value == name).Groups[2].Value;

    [Fact]
    public void Compose_CoordinatorThreeDisjointClientsPrometheusGrafana_Consistent()
    {
        var services = Map(Yaml("docker-compose.yml"), "services");
        var names = services.Children.Keys.Select(k => ((YamlScalarNode)k).Value).ToList();
        string coordinator = Scalar(services.Children[new YamlScalarNode("coordinator")], "command");
        var prometheus = Yaml("prometheus/prometheus.yml");
        var scrape = (YamlSequenceNode)prometheus.Children[new YamlScalarNode("scrape_configs")];
        var staticConfigs = (YamlSequenceNode)((YamlMappingNode)scrape[0]).Children[new YamlScalarNode("static_configs")];
        var targets = (YamlSequenceNode)((YamlMappingNode)staticConfigs[0]).Children[new YamlScalarNode("targets")];
        string target = ((YamlScalarNode)targets[0]).Value!;

        Assert.Equal(["client-0", "client-1", "client-2", "coordinator", "grafana", "prometheus"], names.Order(StringComparer.Ordinal));
        var clients = Enumerable.Range(0, 3).Select(i => Scalar(services.Children[new YamlScalarNode($"client-{i}")], "command")).ToList();
        Assert.Equal(["0", "1", "2"], clients.Select(c => Option(c, "--client")));
        Assert.All(clients, c => Assert.Equal("3", Option(c, "--clients")));
        Assert.Single(clients.Select(c => Option(c, "--partition")).Distinct());
        Assert.Equal(3, clients.Select(c => Option(c, "--client-id")).Distinct().Count());
        Assert.All(clients, c => Assert.Equal($"http://coordinator:{Option(coordinator, "--port")}", Option(c, "--coordinator")));
        Assert.Equal($"coordinator:{Option(coordinator, "--metrics-port")}", target);
        Assert.Equal("3", Option(coordinator, "--min-clients"));
        foreach (string local in new[] { "prometheus", "grafana/provisioning", "grafana/dashboards", "Dockerfile", "Dockerfile.cuda" })
        {
            Assert.True(Path.Exists(Path.Combine(DeployFolder(), local)), local);
        }
    }

    [Fact]
    public void Dashboard_UsesTheProvisionedDatasourceAndTheProvisionedPath()
    {
        var datasource = ((YamlSequenceNode)Yaml("grafana/provisioning/datasources/prometheus.yml").Children[new YamlScalarNode("datasources")])[0];
        string uid = Scalar(datasource, "uid");
        var provider = ((YamlSequenceNode)Yaml("grafana/provisioning/dashboards/fedrebasin.yml").Children[new YamlScalarNode("providers")])[0];
        string path = Scalar(Map(provider, "options"), "path");
        using var dashboard = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(DeployFolder(), "grafana", "dashboards", "fedrebasin.json")));
        var panels = dashboard.RootElement.GetProperty("panels").EnumerateArray().ToList();
        string compose = File.ReadAllText(Path.Combine(DeployFolder(), "docker-compose.yml"));

        Assert.Equal("http://prometheus:9090", Scalar(datasource, "url"));
        Assert.Contains($"./grafana/dashboards:{path}", compose, StringComparison.Ordinal);
        Assert.NotEmpty(panels);
        Assert.All(panels, p => Assert.Equal(uid, p.GetProperty("datasource").GetProperty("uid").GetString()));
        Assert.All(panels.SelectMany(p => p.GetProperty("targets").EnumerateArray()), t => Assert.Equal(uid, t.GetProperty("datasource").GetProperty("uid").GetString()));
    }

    /// <summary>Every PromQL expression of the dashboard's panels and of the recording rules.</summary>
    internal static IReadOnlyList<string> DashboardAndRecordingExpressions()
    {
        using var dashboard = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(DeployFolder(), "grafana", "dashboards", "fedrebasin.json")));
        var expressions = dashboard.RootElement.GetProperty("panels").EnumerateArray()
            .SelectMany(p => p.GetProperty("targets").EnumerateArray())
            .Select(t => t.GetProperty("expr").GetString()!)
            .ToList();
        foreach (var group in (YamlSequenceNode)Yaml("prometheus/rules.yml").Children[new YamlScalarNode("groups")])
        {
            foreach (var rule in (YamlSequenceNode)((YamlMappingNode)group).Children[new YamlScalarNode("rules")])
            {
                if (((YamlMappingNode)rule).Children.ContainsKey(new YamlScalarNode("record")))
                {
                    expressions.Add(Scalar(rule, "expr").Trim());
                }
            }
        }

        return expressions;
    }

    /// <summary>The metric names the dashboard's expressions use (fedrebasin_..., without the histogram suffixes).</summary>
    internal static IReadOnlyList<string> DashboardMetricNames()
    {
        using var dashboard = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(DeployFolder(), "grafana", "dashboards", "fedrebasin.json")));
        return [.. dashboard.RootElement.GetProperty("panels").EnumerateArray()
            .SelectMany(p => p.GetProperty("targets").EnumerateArray())
            .SelectMany(t => MetricName().Matches(t.GetProperty("expr").GetString()!).Select(m => m.Value))
            .Distinct(StringComparer.Ordinal)];
    }

    [GeneratedRegex(@"(--[a-z-]+)\s+(\S+)")]
    private static partial Regex OptionValue();

    [GeneratedRegex("fedrebasin_[a-z_]+")]
    private static partial Regex MetricName();
}
