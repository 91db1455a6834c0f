using System.Text.Json;
using System.Text.RegularExpressions;
using YamlDotNet.RepresentationModel;

namespace FedRebasin.Coordinator.Tests;

/// <summary>
/// helm/fedrebasin without a helm binary: Chart.yaml, values.yaml against values.schema.json (every value described,
/// with its type), and every <c>.Values...</c> reference in the templates defined in values.yaml.
/// </summary>
public sealed partial class HelmChartTests
{
    private static string ChartFolder() => Path.Combine(Path.GetDirectoryName(DeployFilesTests.DeployFolder())!, "helm", "fedrebasin");

    private static YamlMappingNode Values()
    {
        var stream = new YamlStream();
        using var reader = new StreamReader(Path.Combine(ChartFolder(), "values.yaml"));
        stream.Load(reader);
        return (YamlMappingNode)stream.Documents[0].RootNode;
    }

    [Fact]
    public void Chart_IsAnApplicationChartV2()
    {
        var stream = new YamlStream();
        using var reader = new StreamReader(Path.Combine(ChartFolder(), "Chart.yaml"));
        stream.Load(reader);
        var chart = (YamlMappingNode)stream.Documents[0].RootNode;

        Assert.Equal("v2", ((YamlScalarNode)chart["apiVersion"]).Value);
        Assert.Equal("fedrebasin", ((YamlScalarNode)chart["name"]).Value);
        Assert.Matches(@"^\d+\.\d+\.\d+$", ((YamlScalarNode)chart["version"]).Value!);
        Assert.True(File.Exists(Path.Combine(ChartFolder(), "templates", "NOTES.txt")));
    }

    [Fact]
    public void Values_AreAllInTheSchemaWithTheirTypes()
    {
        using var schema = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(ChartFolder(), "values.schema.json")));
        var problems = new List<string>();
        Check(Values(), schema.RootElement, "", problems);

        Assert.Empty(problems);
    }

    [Fact]
    public void Templates_ReferOnlyToDefinedValues()
    {
        var values = Values();
        var references = Directory.GetFiles(Path.Combine(ChartFolder(), "templates"))
            .SelectMany(file => ValuesReference().Matches(File.ReadAllText(file)).Select(m => (File: Path.GetFileName(file), Path: m.Groups[1].Value)))
            .Distinct()
            .ToList();

        Assert.NotEmpty(references);
        Assert.All(references, r => Assert.True(Resolve(values, r.Path.Split('.')), $"{r.File}: .Values.{r.Path} is not defined in values.yaml"));
    }

    private static bool Resolve(YamlNode node, string[] path)
    {
        foreach (string part in path)
        {
            if (node is not YamlMappingNode map || !map.Children.TryGetValue(new YamlScalarNode(part), out var next))
            {
                return false;
            }

            node = next;
        }

        return true;
    }

    /// <summary>Walks the values against the schema: unknown keys where the schema closes the object, and scalar types.</summary>
    private static void Check(YamlNode value, JsonElement schema, string path, List<string> problems)
    {
        if (schema.TryGetProperty("type", out var type) && type.GetString() is { } expected)
        {
            string? actual = value switch
            {
                YamlMappingNode => "object",
                YamlSequenceNode => "array",
                YamlScalarNode s when s.Style is YamlDotNet.Core.ScalarStyle.SingleQuoted or YamlDotNet.Core.ScalarStyle.DoubleQuoted => "string",
                YamlScalarNode s when long.TryParse(s.Value, out _) => "integer",
                YamlScalarNode s when s.Value is "true" or "false" => "boolean",
                _ => "string",
            };
            if (actual != expected)
            {
                problems.Add($"{path}: {actual}, the schema says {expected}");
            }
        }

        if (schema.TryGetProperty("enum", out var allowed) && value is YamlScalarNode scalar
            && !allowed.EnumerateArray().Any(a => a.ToString() == scalar.Value))
        {
            problems.Add($"{path}: '{scalar.Value}' is not one of {allowed}");
        }

        if (value is not YamlMappingNode map || !schema.TryGetProperty("properties", out var properties))
        {
            return;
        }

        foreach (var (key, child) in map.Children)
        {
            string name = ((YamlScalarNode)key).Value!;
            if (properties.TryGetProperty(name, out var childSchema))
            {
                Check(child, childSchema, path + "." + name, problems);
            }
            else if (schema.TryGetProperty("additionalProperties", out var additional) && additional.ValueKind == JsonValueKind.False)
            {
                problems.Add($"{path}.{name}: not described in values.schema.json");
            }
        }
    }

    [GeneratedRegex(@"\.Values\.([A-Za-z0-9_.]+[A-Za-z0-9_])")]
    private static partial Regex ValuesReference();
}
