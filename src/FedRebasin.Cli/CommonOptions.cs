using System.CommandLine;
using System.Globalization;
using FedRebasin.Data;
using FedRebasin.Models;
using FedRebasin.Training;

namespace FedRebasin.Cli;

/// <summary>Options shared by several verbs; each call makes a fresh instance for one command.</summary>
internal static class CommonOptions
{
    public static Option<string> Dataset() => new("--dataset")
    {
        Description = $"Data set: {string.Join(", ", DatasetCatalog.KnownNames)}.",
        DefaultValueFactory = _ => "fashion-mnist",
    };

    public static Option<string?> Data() => new("--data")
    {
        Description = "Folder holding the data set's files (default: the Debian package's folder, or $FEDREBASIN_DATA/NAME).",
    };

    public static Option<string> Device() => new("--device")
    {
        Description = "auto (CUDA when available), cpu or cuda.",
        DefaultValueFactory = _ => "auto",
    };

    public static Option<int> Seed() => new("--seed")
    {
        Description = "Seed of initialisation, partitioning and batch order.",
        DefaultValueFactory = _ => 0,
    };

    public static Option<int> SeedTrials() => new("--seed-trials")
    {
        Description = "Make each merge that aligns (wm, mergemany) with this many matching seeds (--seed, --seed + 1, ...) and keep the one most accurate on --validation training examples.",
        DefaultValueFactory = _ => 1,
    };

    public static Option<int> Validation() => new("--validation")
    {
        Description = "Training examples the --seed-trials merges are ranked on (never the test split; apart from the calibration examples when repairing).",
        DefaultValueFactory = _ => 5000,
    };

    public static Option<int> BatchSize(int defaultValue) => new("--batch-size")
    {
        Description = "Mini-batch size.",
        DefaultValueFactory = _ => defaultValue,
    };

    /// <summary>Loads a split of a data set, naming the data set in errors.</summary>
    public static ImageDataset LoadDataset(string name, DataSplit split, string? directory)
    {
        if (!DatasetCatalog.KnownNames.Contains(name))
        {
            throw new ArgumentException($"--dataset must be one of {string.Join(", ", DatasetCatalog.KnownNames)}, not '{name}'.");
        }

        return DatasetCatalog.Load(name, split, directory);
    }

    /// <summary>Checks that a model takes the data set's images.</summary>
    public static void RequireCompatible(ModelSpec spec, ImageDataset dataset, string modelSource)
    {
        if (spec.InputChannels != dataset.Channels || spec.InputHeight != dataset.Height || spec.InputWidth != dataset.Width || spec.Classes != dataset.ClassCount)
        {
            throw new ArgumentException(
                $"{modelSource} takes {spec.InputChannels}x{spec.InputHeight}x{spec.InputWidth} images with {spec.Classes} classes, " +
                $"but {dataset.Name} has {dataset.Channels}x{dataset.Height}x{dataset.Width} images with {dataset.ClassCount} classes.");
        }
    }

    /// <summary>Parses a comma-separated list of positive integers, e.g. <c>512,512,512</c>.</summary>
    public static int[] ParseWidths(string text, string option)
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        var widths = new int[parts.Length];
        for (int i = 0; i < parts.Length; i++)
        {
            if (!int.TryParse(parts[i], NumberStyles.Integer, CultureInfo.InvariantCulture, out widths[i]) || widths[i] <= 0)
            {
                throw new FormatException($"{option} must be positive integers separated by commas (e.g. 512,512,512), not '{text}'.");
            }
        }

        return widths;
    }

    /// <summary>Formats a fraction as a percentage with two decimals.</summary>
    public static string Percent(double fraction) => (fraction * 100).ToString("F2", CultureInfo.InvariantCulture) + "%";

    /// <summary>Formats a number with four decimals.</summary>
    public static string Number(double value) => value.ToString("F4", CultureInfo.InvariantCulture);

    /// <summary>Shows the default Trainer settings in help text.</summary>
    public static TrainingOptions Defaults { get; } = new();
}
