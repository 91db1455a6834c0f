using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using FedRebasin.Data;
using FedRebasin.Merging;
using FedRebasin.Merging.Averaging;
using FedRebasin.Merging.Matching;
using FedRebasin.Merging.Repair;
using FedRebasin.Models;
using FedRebasin.Simulation;
using FedRebasin.Torch;
using FedRebasin.Training;

namespace FedRebasin.Cli.Commands;

/// <summary><c>fedrebasin merge</c>: merges safetensors models (naive, weight matching or MergeMany), optionally repaired.</summary>
internal static class MergeCommand
{
    private static readonly JsonSerializerOptions s_indented = new() { WriteIndented = true };

    public static Command Create(TextWriter output, TextWriter error)
    {
        var files = new Argument<string[]>("models") { Description = "Two or more model files (.safetensors) of one architecture.", Arity = new ArgumentArity(2, 1000) };
        var method = new Option<string>("--method") { Description = "naive (plain average), wm (align to a reference by weight matching) or mergemany.", DefaultValueFactory = _ => "wm" };
        var weights = new Option<string?>("--weights") { Description = "Averaging weights, one per model (e.g. sample counts: 6000,4000); default equal." };
        var aggregate = new Option<string>("--aggregate") { Description = "mean, median or trimmed-mean.", DefaultValueFactory = _ => "mean" };
        var reference = new Option<int?>("--reference") { Description = "0-based index of the reference model for wm (default: the largest weight, first on ties)." };
        var repair = new Option<string>("--repair") { Description = $"Repair after averaging: {string.Join(", ", RepairModes.Names)} (needs --dataset).", DefaultValueFactory = _ => "none" };
        var dataset = new Option<string?>("--dataset") { Description = "Data set for repair calibration (training split) and evaluation (test split)." };
        var data = CommonOptions.Data();
        var calibration = new Option<int>("--calibration") { Description = "Training examples used to measure channel statistics for repair.", DefaultValueFactory = _ => 5000 };
        var seed = CommonOptions.Seed();
        var restarts = new Option<int>("--restarts") { Description = "Weight-matching restarts (best objective kept).", DefaultValueFactory = _ => 1 };
        var seedTrials = CommonOptions.SeedTrials();
        var validation = CommonOptions.Validation();
        var device = CommonOptions.Device();
        var outPath = new Option<string>("--out") { Description = "Where to write the merged model (.safetensors).", Required = true };
        var reportPath = new Option<string?>("--report") { Description = "Write a JSON report (objectives, sweeps, per-group gain and identity fraction, accuracies)." };
        var command = new Command("merge", "Merge models: align (none, weight matching, MergeMany), average, optionally repair.")
        {
            files, method, weights, aggregate, reference, repair, dataset, data, calibration, seed, restarts, seedTrials, validation, device, outPath, reportPath,
        };

        command.SetAction(parse =>
        {
            var ui = ConsoleUi.For(output);
            string[] paths = parse.GetValue(files)!;
            var options = new MergeOptions
            {
                Method = MergeOptions.ParseMethod(parse.GetValue(method)!),
                Aggregation = Aggregation.Parse(parse.GetValue(aggregate)!),
                ReferenceIndex = parse.GetValue(reference),
                Matching = new WeightMatchingOptions { Seed = parse.GetValue(seed), Restarts = parse.GetValue(restarts) },
            };
            var repairMode = RepairModes.Parse(parse.GetValue(repair)!);
            double[] mergeWeights = ParseWeights(parse.GetValue(weights), paths.Length);
            string? datasetName = parse.GetValue(dataset);
            if (repairMode != RepairMode.None && datasetName is null)
            {
                throw new ArgumentException($"--repair {RepairModes.ToName(repairMode)} measures channel statistics on data: add --dataset (e.g. --dataset fashion-mnist).");
            }

            int trials = parse.GetValue(seedTrials);
            RequireSeedSearchSettings(trials, parse.GetValue(validation), options.Method, datasetName);
            if (options.ReferenceIndex is { } r && (r < 0 || r >= paths.Length))
            {
                throw new ArgumentException($"--reference must be in [0, {paths.Length - 1}], not {r}.");
            }

            var torchDevice = TorchDevices.Resolve(parse.GetValue(device)!);
            var models = new List<ClassifierModel>();
            try
            {
                foreach (string path in paths)
                {
                    if (!File.Exists(path))
                    {
                        throw new FileNotFoundException($"{path}: no such model file.");
                    }

                    models.Add(ModelFile.Load(path, torchDevice));
                }

                RequireSameArchitecture(models, paths);
                ImageDataset? train = datasetName is null ? null : CommonOptions.LoadDataset(datasetName, DataSplit.Train, parse.GetValue(data));
                ImageDataset? test = datasetName is null ? null : CommonOptions.LoadDataset(datasetName, DataSplit.Test, parse.GetValue(data));
                if (test is not null)
                {
                    CommonOptions.RequireCompatible(models[0].Spec, test, paths[0]);
                }

                using var calibrationData = repairMode == RepairMode.None || train is null
                    ? null
                    : CalibrationData.Create(train, parse.GetValue(calibration), parse.GetValue(seed), torchDevice);
                ui.Line($"Merging {paths.Length} x {models[0].Spec.Describe()} with {parse.GetValue(method)}, {Aggregation.ToName(options.Aggregation)}, repair {RepairModes.ToName(repairMode)}.");
                SeedSearchResult? search = null;
                MergedModel merged;
                if (trials > 1)
                {
                    // With repair, the validation examples follow the calibration ones in the same seeded order, so the two never overlap.
                    int calibrationCount = calibrationData is null ? 0 : parse.GetValue(calibration);
                    MatchingSeedSearch.RequireValidationRoom(train!.Count, calibrationCount);
                    using var validationData = TensorData.Sample(train, parse.GetValue(validation), parse.GetValue(seed), torchDevice, skip: calibrationCount);
                    ui.Line($"Trying matching seeds {options.Matching.Seed}..{options.Matching.Seed + trials - 1}, ranked on {validationData.Count} training examples.");
                    search = ui.WithProgress("seed search", trials, update =>
                    {
                        int done = 0;
                        return MatchingSeedSearch.Run(models, mergeWeights, options, repairMode, calibrationData is null ? null : calibrationData.Batches,
                            validationData, options.Matching.Seed, trials, new SynchronousProgress<string>(line =>
                            {
                                update(++done, "");
                                ui.Line("  " + line);
                            }));
                    });
                    merged = search.Best;
                    ui.Line($"  kept seed {search.BestSeed}");
                }
                else
                {
                    merged = ui.WithProgress("merge", paths.Length, update =>
                    {
                        int done = 0;
                        return ModelMerging.Merge(models, mergeWeights, options, repairMode,
                            calibrationData is null ? null : calibrationData.Batches, progress: new SynchronousProgress<string>(line =>
                            {
                                update(Math.Min(++done, paths.Length), "");
                                ui.Line("  " + line);
                            }));
                    });
                }

                using var mergedModel = merged.Model;
                var evaluations = new Dictionary<string, Evaluation>();
                if (test is not null)
                {
                    using var testData = TensorData.From(test, null, torchDevice);
                    for (int i = 0; i < models.Count; i++)
                    {
                        evaluations[paths[i]] = Evaluator.Evaluate(models[i], testData);
                    }

                    evaluations["merged"] = Evaluator.Evaluate(mergedModel, testData);
                    foreach (var (name, e) in evaluations)
                    {
                        ui.Line($"  {name}: test loss {CommonOptions.Number(e.Loss)}, accuracy {CommonOptions.Percent(e.Accuracy)}");
                    }
                }

                string target = parse.GetValue(outPath)!;
                ModelFile.Save(mergedModel, target, new Dictionary<string, string>
                {
                    ["fedrebasin.merged_from"] = string.Join(',', paths.Select(Path.GetFileName)),
                    ["fedrebasin.merge_method"] = parse.GetValue(method)!,
                    ["fedrebasin.repair"] = RepairModes.ToName(repairMode),
                    ["fedrebasin.matching_seed"] = (search?.BestSeed ?? options.Matching.Seed).ToString(CultureInfo.InvariantCulture),
                });
                ui.Line($"Saved {target}");
                if (parse.GetValue(reportPath) is { } report)
                {
                    File.WriteAllText(report, BuildReport(paths, mergeWeights, options, repairMode, merged, search, evaluations));
                    ui.Line($"Report {report}");
                }

                return ExitCodes.Success;
            }
            finally
            {
                foreach (var model in models)
                {
                    model.Dispose();
                }
            }
        });
        return command;
    }

    private static double[] ParseWeights(string? text, int count)
    {
        if (text is null)
        {
            return Enumerable.Repeat(1.0, count).ToArray();
        }

        var parts = text.Split(',', StringSplitOptions.TrimEntries);
        if (parts.Length != count)
        {
            throw new ArgumentException($"--weights has {parts.Length} values for {count} models.");
        }

        return parts.Select(p => double.TryParse(p, NumberStyles.Float, CultureInfo.InvariantCulture, out double w) && w > 0 && double.IsFinite(w)
            ? w
            : throw new ArgumentException($"--weights must be positive numbers separated by commas, not '{text}'.")).ToArray();
    }

    private static void RequireSeedSearchSettings(int trials, int validationExamples, MergeMethod method, string? datasetName)
    {
        if (trials < 1)
        {
            throw new ArgumentException($"--seed-trials must be at least 1, not {trials}.");
        }

        if (trials == 1)
        {
            return;
        }

        if (method == MergeMethod.Naive)
        {
            throw new ArgumentException("--seed-trials needs --method wm or mergemany: a naive average aligns nothing, so it has no matching seed.");
        }

        if (datasetName is null)
        {
            throw new ArgumentException("--seed-trials ranks the merges on training examples: add --dataset (e.g. --dataset fashion-mnist).");
        }

        if (validationExamples < 1)
        {
            throw new ArgumentException($"--validation must be at least 1 example, not {validationExamples}.");
        }
    }

    private static void RequireSameArchitecture(IReadOnlyList<ClassifierModel> models, IReadOnlyList<string> paths)
    {
        var states = models.Select(m => (IReadOnlyDictionary<string, TorchSharp.torch.Tensor>)m.state_dict()).ToList();
        StateDicts.RequireSameLayout(states, paths);
        for (int i = 1; i < models.Count; i++)
        {
            if (!models[i].Spec.Equals(models[0].Spec))
            {
                throw new ArgumentException($"{paths[i]} is {models[i].Spec.Describe()} but {paths[0]} is {models[0].Spec.Describe()}.");
            }
        }
    }

    private static string BuildReport(
        IReadOnlyList<string> paths,
        IReadOnlyList<double> weights,
        MergeOptions options,
        RepairMode repair,
        MergedModel merged,
        SeedSearchResult? search,
        IReadOnlyDictionary<string, Evaluation> evaluations)
    {
        var matches = merged.Merge.Matches.Where(m => m is not null).Select(m => m!).ToList();
        var groups = matches.Count == 0
            ? []
            : matches[0].Groups.Select((g, k) => new
            {
                name = g.Name,
                size = g.Size,
                gain = matches.Sum(m => m.Groups[k].Gain),
                identity_fraction = matches.Average(m => m.Groups[k].IdentityFraction),
            }).ToList<object>();
        var report = new
        {
            method = MergeOptions.MethodName(options.Method),
            aggregation = Aggregation.ToName(options.Aggregation),
            repair = RepairModes.ToName(repair),
            reference = merged.Merge.ReferenceIndex is { } r ? paths[r] : null,
            matching_seed = search?.BestSeed ?? options.Matching.Seed,
            seed_trials = search?.Trials.Select(t => new
            {
                seed = t.Seed,
                objective_after = t.Objective,
                validation_loss = t.ValidationLoss,
                validation_accuracy = t.ValidationAccuracy,
                seconds = t.Seconds,
            }).ToList(),
            objective_before = matches.Sum(m => m.ObjectiveBefore),
            objective_after = matches.Sum(m => m.ObjectiveAfter),
            sweeps = matches.Count == 0 ? 0 : matches.Max(m => m.Sweeps),
            merge_many_rounds = merged.Merge.Rounds,
            seconds = merged.Merge.Seconds,
            groups,
            models = paths.Select((p, i) => new
            {
                file = p,
                weight = weights[i],
                objective_before = merged.Merge.Matches[i]?.ObjectiveBefore,
                objective_after = merged.Merge.Matches[i]?.ObjectiveAfter,
                sweeps = merged.Merge.Matches[i]?.Sweeps,
                test_loss = evaluations.TryGetValue(p, out var e) ? e.Loss : (double?)null,
                test_accuracy = evaluations.TryGetValue(p, out var f) ? f.Accuracy : (double?)null,
            }).ToList(),
            merged = evaluations.TryGetValue("merged", out var m) ? new { test_loss = m.Loss, test_accuracy = m.Accuracy } : null,
            repair_points = merged.Repair?.Points.Select(p => new
            {
                name = p.Name,
                corrected = p.Corrected,
                variance_ratio_before = JsonNumbers.Finite(p.VarianceRatioBefore),
                variance_ratio_after = JsonNumbers.Finite(p.VarianceRatioAfter),
            }).ToList(),
        };
        return JsonSerializer.Serialize(report, s_indented);
    }
}
