using System.Globalization;

namespace FedRebasin.Models;

/// <summary>The normalisation layers of a convolutional model.</summary>
public enum NormKind
{
    /// <summary>No normalisation; convolutions carry a bias.</summary>
    None,

    /// <summary>BatchNorm2d (running statistics are buffers that must be permuted and re-estimated after merging).</summary>
    Batch,

    /// <summary>LayerNorm over (C,H,W) with a per-channel affine, i.e. <c>torch.nn.GroupNorm(1, C)</c>; permutation-invariant.</summary>
    Layer,
}

/// <summary>
/// Everything needed to rebuild a model: stored as the safetensors <c>__metadata__</c> of every model file.
/// </summary>
/// <param name="Architecture">Registry name: <c>mlp</c>, <c>vgg11</c>, <c>vgg16</c> or <c>resnet20</c>.</param>
/// <param name="InputChannels">Image channels (1 for Fashion-MNIST).</param>
/// <param name="InputHeight">Image height in pixels.</param>
/// <param name="InputWidth">Image width in pixels.</param>
/// <param name="Classes">Number of output logits.</param>
/// <param name="Hidden">MLP hidden widths (ignored by convolutional models).</param>
/// <param name="WidthMultiplier">Channel multiplier of convolutional models (1 = 16/32/64 channels for ResNet-20).</param>
/// <param name="Norm">Normalisation of convolutional models (MLPs have none).</param>
public sealed record ModelSpec(
    string Architecture,
    int InputChannels,
    int InputHeight,
    int InputWidth,
    int Classes,
    IReadOnlyList<int> Hidden,
    double WidthMultiplier,
    NormKind Norm)
{
    /// <summary>The default MLP hidden widths, as in Git Re-Basin's MNIST MLP.</summary>
    public static IReadOnlyList<int> DefaultMlpHidden { get; } = [512, 512, 512];

    /// <summary>Number of input features once flattened (C·H·W).</summary>
    public int InputFeatures => InputChannels * InputHeight * InputWidth;

    /// <inheritdoc />
    public bool Equals(ModelSpec? other) =>
        other is not null
        && Architecture == other.Architecture
        && InputChannels == other.InputChannels
        && InputHeight == other.InputHeight
        && InputWidth == other.InputWidth
        && Classes == other.Classes
        && Hidden.SequenceEqual(other.Hidden)
        && WidthMultiplier.Equals(other.WidthMultiplier)
        && Norm == other.Norm;

    /// <inheritdoc />
    public override int GetHashCode() =>
        HashCode.Combine(Architecture, InputChannels, InputHeight, InputWidth, Classes, Hidden.Count, WidthMultiplier, Norm);

    /// <summary>A short human-readable description, e.g. <c>mlp 784-512-512-512-10</c>.</summary>
    public string Describe() => Architecture == ModelRegistry.Mlp
        ? $"mlp {string.Join('-', new[] { InputFeatures }.Concat(Hidden).Append(Classes))}"
        : string.Create(CultureInfo.InvariantCulture, $"{Architecture} width x{WidthMultiplier} norm={NormName(Norm)} input {InputChannels}x{InputHeight}x{InputWidth} classes {Classes}");

    /// <summary>Metadata keys and values for a safetensors file.</summary>
    public IReadOnlyDictionary<string, string> ToMetadata() => new Dictionary<string, string>
    {
        [MetadataKeys.Format] = "pt",
        [MetadataKeys.Architecture] = Architecture,
        [MetadataKeys.InputShape] = string.Create(CultureInfo.InvariantCulture, $"{InputChannels},{InputHeight},{InputWidth}"),
        [MetadataKeys.Classes] = Classes.ToString(CultureInfo.InvariantCulture),
        [MetadataKeys.Hidden] = string.Join(',', Hidden.Select(h => h.ToString(CultureInfo.InvariantCulture))),
        [MetadataKeys.Width] = WidthMultiplier.ToString("R", CultureInfo.InvariantCulture),
        [MetadataKeys.Norm] = NormName(Norm),
    };

    /// <summary>Reads a spec from safetensors metadata.</summary>
    /// <param name="metadata">The file's <c>__metadata__</c>.</param>
    /// <param name="source">File name, for error messages.</param>
    /// <exception cref="FormatException">A field is missing or malformed; the message names the file and field.</exception>
    public static ModelSpec FromMetadata(IReadOnlyDictionary<string, string> metadata, string source)
    {
        ArgumentNullException.ThrowIfNull(metadata);
        string Get(string key) => metadata.TryGetValue(key, out var value)
            ? value
            : throw new FormatException($"{source}: metadata field '{key}' is missing.");

        string architecture = Get(MetadataKeys.Architecture);
        int[] shape = ParseInts(Get(MetadataKeys.InputShape), source, MetadataKeys.InputShape);
        if (shape.Length != 3)
        {
            throw new FormatException($"{source}: metadata field '{MetadataKeys.InputShape}' must be C,H,W, not '{metadata[MetadataKeys.InputShape]}'.");
        }

        int classes = ParseInts(Get(MetadataKeys.Classes), source, MetadataKeys.Classes).Single();
        var hidden = metadata.TryGetValue(MetadataKeys.Hidden, out var h) && h.Length > 0
            ? ParseInts(h, source, MetadataKeys.Hidden)
            : [];
        double width = metadata.TryGetValue(MetadataKeys.Width, out var w)
            ? double.TryParse(w, NumberStyles.Float, CultureInfo.InvariantCulture, out var parsed) && parsed > 0
                ? parsed
                : throw new FormatException($"{source}: metadata field '{MetadataKeys.Width}' must be a positive number, not '{w}'.")
            : 1.0;
        var norm = metadata.TryGetValue(MetadataKeys.Norm, out var n) ? ParseNorm(n, $"{source}: metadata field '{MetadataKeys.Norm}'") : NormKind.None;
        var spec = new ModelSpec(architecture, shape[0], shape[1], shape[2], classes, hidden, width, norm);
        ModelRegistry.Validate(spec, source);
        return spec;
    }

    /// <summary>Parses <c>none</c>, <c>batch</c>/<c>bn</c> or <c>layer</c>/<c>ln</c>.</summary>
    /// <exception cref="FormatException">Unknown name; the message starts with <paramref name="what"/>.</exception>
    public static NormKind ParseNorm(string text, string what = "--norm")
    {
        ArgumentNullException.ThrowIfNull(text);
        return text.Trim().ToLowerInvariant() switch
        {
            "none" => NormKind.None,
            "batch" or "bn" or "batchnorm" => NormKind.Batch,
            "layer" or "ln" or "layernorm" => NormKind.Layer,
            _ => throw new FormatException($"{what} must be none, batch or layer, not '{text}'."),
        };
    }

    /// <summary>The canonical name of a norm kind (<c>none</c>, <c>batch</c>, <c>layer</c>).</summary>
    public static string NormName(NormKind norm) => norm switch
    {
        NormKind.Batch => "batch",
        NormKind.Layer => "layer",
        _ => "none",
    };

    private static int[] ParseInts(string text, string source, string key)
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries);
        var values = new int[parts.Length];
        for (int i = 0; i < parts.Length; i++)
        {
            if (!int.TryParse(parts[i], NumberStyles.Integer, CultureInfo.InvariantCulture, out values[i]) || values[i] <= 0)
            {
                throw new FormatException($"{source}: metadata field '{key}' must be positive integers separated by commas, not '{text}'.");
            }
        }

        return values;
    }
}

/// <summary>The safetensors <c>__metadata__</c> keys FedRebasin writes.</summary>
public static class MetadataKeys
{
    /// <summary>Always <c>pt</c>: tensor layout and names follow PyTorch.</summary>
    public const string Format = "format";

    /// <summary>Registry name of the architecture.</summary>
    public const string Architecture = "fedrebasin.architecture";

    /// <summary><c>C,H,W</c> of the input images.</summary>
    public const string InputShape = "fedrebasin.input_shape";

    /// <summary>Number of classes.</summary>
    public const string Classes = "fedrebasin.classes";

    /// <summary>Comma-separated MLP hidden widths.</summary>
    public const string Hidden = "fedrebasin.hidden";

    /// <summary>Width multiplier of convolutional models.</summary>
    public const string Width = "fedrebasin.width";

    /// <summary><c>none</c>, <c>batch</c> or <c>layer</c>.</summary>
    public const string Norm = "fedrebasin.norm";
}
