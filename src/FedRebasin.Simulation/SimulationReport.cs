using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using FedRebasin.Coordinator;
using FedRebasin.Federation.Strategies;
using FedRebasin.Reporting;

namespace FedRebasin.Simulation;

/// <summary>One strategy's run.</summary>
/// <param name="Strategy">Canonical strategy name.</param>
/// <param name="Rounds">Per round, what the coordinator published.</param>
/// <param name="Seconds">Wall time of the whole run.</param>
/// <param name="CheckpointDirectory">The coordinator's checkpoints and audit records.</param>
/// <param name="Failure">Why the run stopped before its last round (a round abandoned repeatedly, e.g. every client's training diverged); null when it completed.</param>
/// <param name="LastMerge">The interpolation curves between two of the models merged in the last round (the two largest clients'), as trained and weight-matched; null when the run stopped early or fewer than two clients took part.</param>
public sealed record StrategyResult(string Strategy, IReadOnlyList<RoundSummary> Rounds, double Seconds, string CheckpointDirectory, string? Failure = null, ClientInterpolation? LastMerge = null)
{
    /// <summary>Test accuracy after the last round.</summary>
    public double FinalAccuracy => Rounds.Count > 0 ? Rounds[^1].Accuracy : double.NaN;

    /// <summary>Best test accuracy over the rounds.</summary>
    public double BestAccuracy => Rounds.Count > 0 ? Rounds.Max(r => r.Accuracy) : double.NaN;
}

/// <summary>A whole simulation.</summary>
/// <param name="Options">The settings used.</param>
/// <param name="Runs">One entry per strategy, in the order run.</param>
/// <param name="Seconds">Wall time of everything.</param>
/// <param name="PeakWorkingSetBytes">Peak working set of this process.</param>
public sealed record SimulationResult(SimulationOptions Options, IReadOnlyList<StrategyResult> Runs, double Seconds, long PeakWorkingSetBytes);

/// <summary>
/// Writes a simulation's results into its output folder: <c>settings.json</c>, <c>results.json</c>, one CSV per
/// strategy (<c>STRATEGY/rounds.csv</c>, <c>STRATEGY/interpolation.png</c>: the line between two of the last round's
/// client models, as trained and weight-matched; for aligned strategies also <c>STRATEGY/alignment.csv</c> and
/// <c>STRATEGY/alignment-gain.png</c>, per permutation group and round), <c>accuracy.png</c> (accuracy per round, every strategy) and
/// <c>final-accuracy.png</c>; and formats the ranking table printed at the end.
/// </summary>
public static class SimulationReport
{
    /// <summary>How settings and results are written (snake_case, strategies by their compact names, NaN allowed).</summary>
    internal static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Converters = { new StrategyNameConverter() },
    };

    /// <summary>The strategy's folder name inside the output folder ("wm+repair" → "wm+repair"; '=' and ',' replaced).</summary>
    public static string FolderName(StrategySpec strategy)
    {
        ArgumentNullException.ThrowIfNull(strategy);
        return strategy.ToString().Replace('=', '-').Replace(',', '_');
    }

    /// <summary>Writes every file; returns their paths.</summary>
    public static IReadOnlyList<string> Write(SimulationResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        string folder = Path.GetFullPath(result.Options.OutputDirectory);
        Directory.CreateDirectory(folder);
        var written = new List<string>();
        WriteSettings(result.Options, written);
        string results = Path.Combine(folder, "results.json");
        File.WriteAllBytes(results, JsonSerializer.SerializeToUtf8Bytes(new
        {
            complete = result.Runs.Count == result.Options.Strategies.Count,
            seconds = result.Seconds,
            peak_working_set_bytes = result.PeakWorkingSetBytes,
            strategies = result.Runs.Select(r => new { strategy = r.Strategy, seconds = r.Seconds, final_accuracy = r.FinalAccuracy, best_accuracy = r.BestAccuracy, failure = r.Failure, rounds = r.Rounds, last_merge_interpolation = r.LastMerge?.ToJson() }),
        }, Json));
        written.Add(results);
        foreach (var run in result.Runs)
        {
            string csv = Path.Combine(folder, FolderName(StrategySpec.Parse(run.Strategy)), "rounds.csv");
            Directory.CreateDirectory(Path.GetDirectoryName(csv)!);
            File.WriteAllText(csv, ToCsv(run.Rounds));
            written.Add(csv);
        }

        foreach (var run in result.Runs.Where(r => r.LastMerge is not null))
        {
            var line = run.LastMerge!;
            string path = Path.Combine(folder, FolderName(StrategySpec.Parse(run.Strategy)), "interpolation.png");
            line.SavePlot(path, string.Create(CultureInfo.InvariantCulture, $"{run.Strategy}, round {run.Rounds[^1].Round}: {line.Describe()}, test accuracy and loss"));
            written.Add(path);
        }

        foreach (var run in result.Runs.Where(r => r.Rounds.Any(x => x.Groups is { Count: > 0 })))
        {
            string strategyFolder = Path.Combine(folder, FolderName(StrategySpec.Parse(run.Strategy)));
            string csv = Path.Combine(strategyFolder, "alignment.csv");
            File.WriteAllText(csv, ToAlignmentCsv(run.Rounds));
            written.Add(csv);
            string gain = Path.Combine(strategyFolder, "alignment-gain.png");
            var named = run.Rounds.SelectMany(r => r.Groups ?? []).Select(g => g.Name).Distinct(StringComparer.Ordinal).ToList();
            Charts.SaveLines(gain, $"{run.Strategy}: weight-matching gain per permutation group", "round", "objective gain (mean over clients)",
                [.. named.Select(name =>
                {
                    var points = run.Rounds.Where(r => r.Groups is not null && r.Groups.Any(g => g.Name == name)).ToList();
                    return new LineSeries(name, [.. points.Select(r => (double)r.Round)], [.. points.Select(r => r.Groups!.First(g => g.Name == name).Gain)]);
                })]);
            written.Add(gain);
        }

        string accuracy = Path.Combine(folder, "accuracy.png");
        Charts.SaveLines(accuracy, "Test accuracy per round", "round", "accuracy",
            [.. result.Runs.Select(r => new LineSeries(r.Strategy, [.. r.Rounds.Select(x => (double)x.Round)], [.. r.Rounds.Select(x => x.Accuracy)]))]);
        written.Add(accuracy);
        string final = Path.Combine(folder, "final-accuracy.png");
        Charts.SaveBars(final, "Test accuracy after the last round", "accuracy", [.. result.Runs.Select(r => r.Strategy)],
            [("final", [.. result.Runs.Select(r => r.FinalAccuracy)]), ("best", [.. result.Runs.Select(r => r.BestAccuracy)])]);
        written.Add(final);
        return written;
    }

    /// <summary>Writes <c>settings.json</c> into the output folder and adds its path to <paramref name="written"/>.</summary>
    internal static void WriteSettings(SimulationOptions options, List<string> written)
    {
        string settings = Path.Combine(Path.GetFullPath(options.OutputDirectory), "settings.json");
        File.WriteAllBytes(settings, JsonSerializer.SerializeToUtf8Bytes(options, Json));
        written.Add(settings);
    }

    /// <summary>Per round: accuracy, loss, the plain-FedAvg shadow, time, bytes moved, alignment figures, repair, the merge barrier.</summary>
    public static string ToCsv(IReadOnlyList<RoundSummary> rounds)
    {
        ArgumentNullException.ThrowIfNull(rounds);
        var text = new StringBuilder("round,clients,accuracy,loss,shadow_fedavg_accuracy,shadow_fedavg_loss,seconds,client_training_seconds,bytes_moved,identity_fraction,alignment_gain,repair,client_models_loss,client_models_accuracy,loss_barrier,accuracy_barrier,repair_points_corrected,variance_ratio_before,variance_ratio_after\n");
        foreach (var r in rounds)
        {
            // Every participant downloads the model and uploads one of the same size.
            long moved = 2L * r.Clients * r.ModelBytes;
            text.Append(string.Create(CultureInfo.InvariantCulture,
                $"{r.Round},{r.Clients},{r.Accuracy:R},{r.Loss:R},{r.ShadowFedAvgAccuracy:R},{r.ShadowFedAvgLoss:R},{r.Seconds:0.###},{r.ClientTrainingSeconds:0.###},{moved},{r.IdentityFraction:R},{r.AlignmentGain:R},{r.Repair},{r.ClientModelsLoss:R},{r.ClientModelsAccuracy:R},{r.LossBarrier:R},{r.AccuracyBarrier:R},{r.RepairPointsCorrected},{r.VarianceRatioBefore:R},{r.VarianceRatioAfter:R}\n"));
        }

        return text.ToString();
    }

    /// <summary>Per round and permutation group: the mean objective gain and identity fraction of weight matching over the aligned clients.</summary>
    public static string ToAlignmentCsv(IReadOnlyList<RoundSummary> rounds)
    {
        ArgumentNullException.ThrowIfNull(rounds);
        var text = new StringBuilder("round,group,size,gain,identity_fraction\n");
        foreach (var r in rounds)
        {
            foreach (var g in r.Groups ?? [])
            {
                text.Append(string.Create(CultureInfo.InvariantCulture, $"{r.Round},{g.Name},{g.Size},{g.Gain:R},{g.IdentityFraction:R}\n"));
            }
        }

        return text.ToString();
    }

    /// <summary>
    /// The strategies ranked by final accuracy (runs that stopped early last), as rows of text (strategy, final, best,
    /// vs FedAvg shadow, the last merge's loss barrier between two client models as trained → weight-matched, seconds).
    /// </summary>
    public static IReadOnlyList<(string Strategy, string Final, string Best, string ShadowGap, string LastMergeBarrier, string Seconds)> Ranking(SimulationResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        return [.. result.Runs
            .OrderBy(r => r.Failure is not null)
            .ThenByDescending(r => double.IsNaN(r.FinalAccuracy) ? double.MinValue : r.FinalAccuracy)
            .Select(r => (
                r.Strategy,
                r.Failure is null ? Percent(r.FinalAccuracy) : string.Create(CultureInfo.InvariantCulture, $"stopped after round {r.Rounds.Count} ({Percent(r.FinalAccuracy)})"),
                Percent(r.BestAccuracy),
                r.Rounds.Count > 0 ? Points(r.Rounds[^1].Accuracy - r.Rounds[^1].ShadowFedAvgAccuracy) : "-",
                r.LastMerge is { } line
                    ? string.Create(CultureInfo.InvariantCulture, $"{line.Naive.LossBarrier:0.###} → {line.Aligned.LossBarrier:0.###}")
                    : "-",
                r.Seconds.ToString("0", CultureInfo.InvariantCulture)))];
    }

    internal static string Percent(double value) => double.IsNaN(value) ? "-" : value.ToString("P2", CultureInfo.InvariantCulture);

    internal static string Points(double value) => double.IsNaN(value) ? "-" : (value * 100).ToString("+0.00;-0.00;0.00", CultureInfo.InvariantCulture);

    /// <summary>Writes strategies by their compact names.</summary>
    private sealed class StrategyNameConverter : JsonConverter<StrategySpec>
    {
        public override StrategySpec Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
            StrategySpec.Parse(reader.GetString() ?? string.Empty);

        public override void Write(Utf8JsonWriter writer, StrategySpec value, JsonSerializerOptions options)
        {
            ArgumentNullException.ThrowIfNull(writer);
            ArgumentNullException.ThrowIfNull(value);
            writer.WriteStringValue(value.ToString());
        }
    }
}
