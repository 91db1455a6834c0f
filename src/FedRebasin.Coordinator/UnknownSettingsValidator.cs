using System.Collections;
using System.Reflection;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;

namespace FedRebasin.Coordinator;

/// <summary>
/// Refuses keys in the <c>Coordinator</c> section that no setting binds (a typo, or a setting that was renamed), which
/// the configuration binder would otherwise ignore without a word, so the coordinator would run on a default the
/// user did not choose.
/// </summary>
internal sealed class UnknownSettingsValidator(IConfiguration configuration) : IValidateOptions<CoordinatorOptions>
{
    /// <summary>Settings that existed once, and what replaced them.</summary>
    private static readonly Dictionary<string, string> Replaced = new(StringComparer.OrdinalIgnoreCase)
    {
        [$"{CoordinatorOptions.SectionName}:ChunkBytes"] =
            $"it was split into {CoordinatorOptions.SectionName}:DownloadChunkBytes (the size of the chunks the coordinator sends) and {CoordinatorOptions.SectionName}:MaxUploadChunkBytes (the largest chunk it accepts)",
    };

    public ValidateOptionsResult Validate(string? name, CoordinatorOptions options)
    {
        var unknown = Find(configuration.GetSection(CoordinatorOptions.SectionName), typeof(CoordinatorOptions));
        if (unknown.Count == 0)
        {
            return ValidateOptionsResult.Success;
        }

        return ValidateOptionsResult.Fail(unknown.Select(key => Replaced.TryGetValue(key.Path, out string? instead)
            ? $"{key.Path} is no longer a setting: {instead}."
            : $"{key.Path} is not a setting; the settings there are {string.Join(", ", key.Known)}."));
    }

    /// <summary>The keys under <paramref name="section"/> that no public settable property of <paramref name="type"/> binds, each with the names that would.</summary>
    internal static List<(string Path, IReadOnlyList<string> Known)> Find(IConfigurationSection section, Type type)
    {
        var unknown = new List<(string, IReadOnlyList<string>)>();
        Walk(section, type, unknown);
        return unknown;
    }

    private static void Walk(IConfigurationSection section, Type type, List<(string, IReadOnlyList<string>)> unknown)
    {
        foreach (var child in section.GetChildren())
        {
            // The binder matches property names without regard to case.
            var property = type.GetProperty(child.Key, BindingFlags.Public | BindingFlags.Instance | BindingFlags.IgnoreCase);
            if (property is null || !property.CanWrite)
            {
                unknown.Add((child.Path, SettingNames(type)));
                continue;
            }

            var propertyType = Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType;
            if (IsSettingsObject(propertyType))
            {
                Walk(child, propertyType, unknown);
            }
        }
    }

    private static string[] SettingNames(Type type) =>
        type.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanWrite).Select(p => p.Name).ToArray();

    /// <summary>A class of settings of its own (its keys are checked too); not a value, and not a list or dictionary, whose keys are data.</summary>
    private static bool IsSettingsObject(Type type) =>
        type.IsClass && type != typeof(string) && !typeof(IEnumerable).IsAssignableFrom(type);
}
