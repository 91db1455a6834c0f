using System.Globalization;

namespace FedRebasin.Benchmarks;

/// <summary>Minimal <c>--name value</c> / <c>--flag</c> parser shared by the verbs.</summary>
internal sealed class Options
{
    private readonly Dictionary<string, string?> _values = new(StringComparer.Ordinal);

    public Options(string[] args, params string[] flags)
    {
        for (int k = 0; k < args.Length; k++)
        {
            string a = args[k];
            if (!a.StartsWith("--", StringComparison.Ordinal))
            {
                throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"Unexpected argument '{a}'."));
            }

            string name = a[2..];
            int eq = name.IndexOf('=', StringComparison.Ordinal);
            if (eq >= 0)
            {
                _values[name[..eq]] = name[(eq + 1)..];
            }
            else if (Array.IndexOf(flags, name) >= 0)
            {
                _values[name] = null;
            }
            else if (k + 1 < args.Length)
            {
                _values[name] = args[++k];
            }
            else
            {
                throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"Option '{a}' needs a value."));
            }
        }
    }

    public bool Has(string name) => _values.ContainsKey(name);

    public string Get(string name, string fallback) => _values.TryGetValue(name, out string? v) && v is not null ? v : fallback;

    public int GetInt(string name, int fallback) =>
        _values.TryGetValue(name, out string? v) && v is not null ? int.Parse(v, CultureInfo.InvariantCulture) : fallback;

    public int[] GetInts(string name, int[] fallback) =>
        _values.TryGetValue(name, out string? v) && v is not null
            ? v.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray()
            : fallback;

    public string[] GetList(string name, string[] fallback) =>
        _values.TryGetValue(name, out string? v) && v is not null
            ? v.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            : fallback;
}
