using System.Globalization;
using System.Text;
using System.Text.Json;
using FedRebasin.Reporting;

namespace FedRebasin.Simulation;

/// <summary>
/// Writes a one-shot run's results into its output folder: <c>settings.json</c>, <c>results.json</c> (clients, every
/// method, per-group alignment, interpolation curves), <c>one-shot.csv</c> (one row per method), and the plots
/// <c>one-shot-accuracy.png</c>, <c>interpolation.png</c> and <c>alignment-gain.png</c>; and formats the ranking.
/// </summary>
public static class OneShotReport
{
    /// <summary>Writes every file; returns their paths.</summary>
    public static IReadOnlyList<string> Write(OneShotResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        string folder = Path.GetFullPath(result.Options.OutputDirectory);
        Directory.CreateDirectory(folder);
        var written = new List<string>();
        SimulationReport.WriteSettings(result.Options, written);
        string results = Path.Combine(folder, "results.json");
        File.WriteAllBytes(results, JsonSerializer.SerializeToUtf8Bytes(new
        {
            mode = "one-shot",
            seconds = result.Seconds,
            peak_working_set_bytes = result.PeakWorkingSetBytes,
            calibration_examples = result.CalibrationExamples,
            validation_examples = result.ValidationExamples,
            clients = result.Clients,
            methods = result.Methods.Select(m => new
            {
                m.Name,
                kind = KindName(m.Kind),
                m.Accuracy,
                m.Loss,
                gap_to_best_single = m.Accuracy - result.BestSingle.Accuracy,
                gap_to_ensemble = m.Accuracy - result.Ensemble.Accuracy,
                m.Seconds,
                m.ReferenceClient,
                m.MergeManyRounds,
                m.IdentityFraction,
                m.RepairPointsCorrected,
                m.MatchingSeed,
                seed_trials = m.SeedTrials?.Select(t => new
                {
                    t.Seed,
                    objective_after = t.Objective,
                    validation_loss = t.ValidationLoss,
                    validation_accuracy = t.ValidationAccuracy,
                    t.Seconds,
                }),
            }),
            groups = result.Groups,
            interpolation = result.Interpolation?.ToJson(),
        }, SimulationReport.Json));
        written.Add(results);

        string csv = Path.Combine(folder, "one-shot.csv");
        File.WriteAllText(csv, ToCsv(result));
        written.Add(csv);

        string bars = Path.Combine(folder, "one-shot-accuracy.png");
        Charts.SaveBars(bars, string.Create(CultureInfo.InvariantCulture, $"One-shot merge of {result.Clients.Count} clients: test accuracy"), "accuracy",
            [.. result.Methods.Select(m => m.Name)], [("accuracy", [.. result.Methods.Select(m => m.Accuracy)])]);
        written.Add(bars);

        if (result.Interpolation is { } line)
        {
            string interpolation = Path.Combine(folder, "interpolation.png");
            line.SavePlot(interpolation, $"{line.Describe()}: test accuracy and loss");
            written.Add(interpolation);
        }

        if (result.Groups.Count > 0)
        {
            string gain = Path.Combine(folder, "alignment-gain.png");
            Charts.SaveBars(gain, "Weight matching per permutation group (summed over the aligned clients)", "objective gain",
                [.. result.Groups.Select(g => g.Name)], [("gain", [.. result.Groups.Select(g => g.Gain)])]);
            written.Add(gain);
        }

        return written;
    }

    /// <summary>One row per method: name, kind, accuracy, loss, gaps to the best single client and the ensemble, merge figures.</summary>
    public static string ToCsv(OneShotResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        var text = new StringBuilder("method,kind,accuracy,loss,gap_to_best_single,gap_to_ensemble,seconds,reference_client,merge_many_rounds,identity_fraction,repair_points_corrected,matching_seed,seed_trials\n");
        foreach (var m in result.Methods)
        {
            text.Append(string.Create(CultureInfo.InvariantCulture,
                $"{m.Name},{KindName(m.Kind)},{m.Accuracy:R},{m.Loss:R},{m.Accuracy - result.BestSingle.Accuracy:R},{m.Accuracy - result.Ensemble.Accuracy:R},{m.Seconds:0.###},{m.ReferenceClient},{m.MergeManyRounds},{m.IdentityFraction:R},{m.RepairPointsCorrected},{m.MatchingSeed},{m.SeedTrials?.Count ?? (m.MatchingSeed is null ? 0 : 1)}\n"));
        }

        return text.ToString();
    }

    /// <summary>Every method ranked by test accuracy: name, accuracy, loss, points vs the best single client and vs the ensemble, seconds.</summary>
    public static IReadOnlyList<(string Method, string Accuracy, string Loss, string VsBestSingle, string VsEnsemble, string Seconds)> Ranking(OneShotResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        return [.. result.Methods
            .OrderByDescending(m => double.IsNaN(m.Accuracy) ? double.MinValue : m.Accuracy)
            .Select(m => (
                m.Kind == OneShotKind.BestSingle ? string.Create(CultureInfo.InvariantCulture, $"best-single (client {m.ReferenceClient})") : m.Name,
                SimulationReport.Percent(m.Accuracy),
                m.Loss.ToString("0.####", CultureInfo.InvariantCulture),
                SimulationReport.Points(m.Accuracy - result.BestSingle.Accuracy),
                SimulationReport.Points(m.Accuracy - result.Ensemble.Accuracy),
                m.Kind == OneShotKind.Merge ? m.Seconds.ToString("0.0", CultureInfo.InvariantCulture) : "-"))];
    }

    private static string KindName(OneShotKind kind) => kind switch
    {
        OneShotKind.Merge => "merge",
        OneShotKind.BestSingle => "best-single",
        OneShotKind.ClientMean => "client-mean",
        _ => "ensemble",
    };
}
