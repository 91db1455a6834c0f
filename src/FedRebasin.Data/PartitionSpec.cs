using System.Globalization;

namespace FedRebasin.Data;

/// <summary>
/// How to split a dataset among federated clients. Text forms (case-insensitive, surrounding spaces ignored):
/// <c>iid</c>, <c>dirichlet:ALPHA</c> or <c>dirichlet:ALPHA,min=M</c>, and <c>shards:K</c>.
/// <see cref="Parse"/> reads them and <see cref="object.ToString"/> writes the canonical form back.
/// </summary>
public abstract record PartitionSpec
{
    private const string Expected = "expected 'iid', 'dirichlet:ALPHA' (optionally 'dirichlet:ALPHA,min=M') or 'shards:K'";

    private protected PartitionSpec()
    {
    }

    /// <summary>
    /// Parses a partition spec. <c>ALPHA</c> must be a finite positive number (invariant culture, e.g. <c>0.5</c>),
    /// <c>M</c> a non-negative integer (default <see cref="DirichletPartitionSpec.DefaultMinPartitionSize"/>), <c>K</c> a positive integer.
    /// </summary>
    /// <exception cref="FormatException">The text is not one of the forms above; the message quotes it and says what was wrong.</exception>
    public static PartitionSpec Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        string s = text.Trim();
        int colon = s.IndexOf(':', StringComparison.Ordinal);
        string kind = (colon < 0 ? s : s[..colon]).Trim().ToUpperInvariant();
        string? argument = colon < 0 ? null : s[(colon + 1)..].Trim();
        switch (kind)
        {
            case "IID":
                if (argument is not null)
                {
                    throw Error(text, "'iid' takes no parameters");
                }

                return IidPartitionSpec.Instance;

            case "DIRICHLET":
                {
                    if (string.IsNullOrEmpty(argument))
                    {
                        throw Error(text, "'dirichlet' needs a concentration, e.g. 'dirichlet:0.5'");
                    }

                    string[] parts = argument.Split(',');
                    string alphaText = parts[0].Trim();
                    if (!double.TryParse(alphaText, NumberStyles.Float, CultureInfo.InvariantCulture, out double alpha))
                    {
                        throw Error(text, $"alpha '{alphaText}' is not a number");
                    }

                    if (!double.IsFinite(alpha) || alpha <= 0)
                    {
                        throw Error(text, $"alpha must be a finite number greater than 0, got {alphaText}");
                    }

                    int min = DirichletPartitionSpec.DefaultMinPartitionSize;
                    bool seenMin = false;
                    for (int i = 1; i < parts.Length; i++)
                    {
                        string option = parts[i].Trim();
                        int eq = option.IndexOf('=', StringComparison.Ordinal);
                        string key = eq < 0 ? option : option[..eq].Trim();
                        if (eq < 0 || !key.Equals("min", StringComparison.OrdinalIgnoreCase))
                        {
                            throw Error(text, $"unknown dirichlet option '{option}' (the only option is 'min=M')");
                        }

                        if (seenMin)
                        {
                            throw Error(text, "'min' is given twice");
                        }

                        seenMin = true;
                        string value = option[(eq + 1)..].Trim();
                        if (!int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out min))
                        {
                            throw Error(text, $"min '{value}' is not a non-negative integer");
                        }
                    }

                    return new DirichletPartitionSpec(alpha, min);
                }

            case "SHARDS":
                {
                    if (string.IsNullOrEmpty(argument))
                    {
                        throw Error(text, "'shards' needs the number of shards per client, e.g. 'shards:2'");
                    }

                    if (!int.TryParse(argument, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int k))
                    {
                        throw Error(text, $"shards per client '{argument}' is not an integer");
                    }

                    if (k <= 0)
                    {
                        throw Error(text, $"shards per client must be at least 1, got {k}");
                    }

                    return new ShardsPartitionSpec(k);
                }

            default:
                throw Error(text, kind.Length == 0 ? "it is empty" : $"unknown kind '{(colon < 0 ? s : s[..colon]).Trim()}'");
        }
    }

    /// <summary>Like <see cref="Parse"/> but returns <see langword="false"/> instead of throwing.</summary>
    public static bool TryParse(string? text, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out PartitionSpec? spec)
    {
        spec = null;
        if (text is null)
        {
            return false;
        }

        try
        {
            spec = Parse(text);
            return true;
        }
        catch (FormatException)
        {
            return false;
        }
    }

    private static FormatException Error(string text, string problem) =>
        new($"Invalid partition spec '{text}': {problem}; {Expected}.");
}

/// <summary>IID split: the examples are shuffled and dealt into near-equal parts (sizes differ by at most 1).</summary>
public sealed record IidPartitionSpec : PartitionSpec
{
    private IidPartitionSpec()
    {
    }

    /// <summary>The single instance.</summary>
    public static IidPartitionSpec Instance { get; } = new();

    /// <summary>Canonical text: <c>iid</c>.</summary>
    public override string ToString() => "iid";
}

/// <summary>
/// Label-skewed split (Hsu et al. 2019; the NIID-Bench / FedLab scheme): for every class, client proportions are drawn
/// from Dirichlet(<see cref="Alpha"/>) and the class's shuffled examples are cut accordingly; the whole draw is repeated
/// until every client has at least <see cref="MinPartitionSize"/> examples. Small alpha means strong skew.
/// </summary>
public sealed record DirichletPartitionSpec : PartitionSpec
{
    /// <summary>Default minimum number of examples per client.</summary>
    public const int DefaultMinPartitionSize = 10;

    /// <summary>Creates the spec.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="alpha"/> is not finite and positive, or <paramref name="minPartitionSize"/> is negative.</exception>
    public DirichletPartitionSpec(double alpha, int minPartitionSize = DefaultMinPartitionSize)
    {
        if (!double.IsFinite(alpha) || alpha <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(alpha), alpha, "Dirichlet alpha must be finite and positive.");
        }

        ArgumentOutOfRangeException.ThrowIfNegative(minPartitionSize);
        Alpha = alpha;
        MinPartitionSize = minPartitionSize;
    }

    /// <summary>Dirichlet concentration; finite and positive.</summary>
    public double Alpha { get; }

    /// <summary>Minimum examples every client must receive; non-negative.</summary>
    public int MinPartitionSize { get; }

    /// <summary>Canonical text: <c>dirichlet:ALPHA</c>, plus <c>,min=M</c> when M is not the default.</summary>
    public override string ToString() =>
        MinPartitionSize == DefaultMinPartitionSize
            ? "dirichlet:" + Alpha.ToString("R", CultureInfo.InvariantCulture)
            : string.Create(CultureInfo.InvariantCulture, $"dirichlet:{Alpha:R},min={MinPartitionSize}");
}

/// <summary>
/// Pathological non-IID split of McMahan et al. (2017): examples sorted by label are cut into
/// <c>clients * ShardsPerClient</c> equal contiguous shards, and every client is dealt <see cref="ShardsPerClient"/>
/// shards at random. Leftover examples (when the count does not divide evenly) are dealt round-robin.
/// </summary>
public sealed record ShardsPartitionSpec : PartitionSpec
{
    /// <summary>Creates the spec.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="shardsPerClient"/> is not positive.</exception>
    public ShardsPartitionSpec(int shardsPerClient)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(shardsPerClient);
        ShardsPerClient = shardsPerClient;
    }

    /// <summary>Shards (roughly, classes) per client; positive.</summary>
    public int ShardsPerClient { get; }

    /// <summary>Canonical text: <c>shards:K</c>.</summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"shards:{ShardsPerClient}");
}
