using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using FedRebasin.Data;
using FedRebasin.Merging;
using FedRebasin.Merging.Averaging;
using FedRebasin.Merging.Interpolation;
using FedRebasin.Merging.Matching;
using FedRebasin.Merging.Repair;
using FedRebasin.Models;
using FedRebasin.Models.Permutations;
using FedRebasin.Reporting;
using FedRebasin.Torch;
using FedRebasin.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace FedRebasin.Cli.Commands;

/// <summary><c>fedrebasin interpolate</c>: loss and accuracy along the line between two models, and the barriers.</summary>
internal static class InterpolateCommand
{
    private static readonly JsonSerializerOptions s_indented = new() { WriteIndented = true };

    public static Command Create(TextWriter output, TextWriter error)
    {
        var first = new Argument<string>("a") { Description = "Model A (.safetensors); alpha = 0." };
        var second = new Argument<string>("b") { Description = "Model B (.safetensors); alpha = 1." };
        var align = new Option<string>("--align") { Description = "none, or wm (align B to A by weight matching first).", DefaultValueFactory = _ => "wm" };
        var repair = new Option<string>("--repair") { Description = $"Repair at every alpha toward (1-alpha)*A + alpha*B statistics: {string.Join(", ", RepairModes.Names)}.", DefaultValueFactory = _ => "none" };
        var steps = new Option<int>("--steps") { Description = "Number of alphas, evenly spaced in [0, 1].", DefaultValueFactory = _ => 11 };
        var dataset = CommonOptions.Dataset();
        var data = CommonOptions.Data();
        var calibration = new Option<int>("--calibration") { Description = "Training examples used to measure channel statistics for repair.", DefaultValueFactory = _ => 5000 };
        var seed = CommonOptions.Seed();
        var device = CommonOptions.Device();
        var json = new Option<string?>("--json") { Description = "Write the curve as JSON (alphas, loss, accuracy, loss_barrier, accuracy_barrier)." };
        var png = new Option<string?>("--png") { Description = "Draw the curve (accuracy and loss against alpha) as a PNG." };
        var command = new Command("interpolate", "Evaluate models along the line from A to B (optionally aligned and repaired) and report the barriers.")
        {
            first, second, align, repair, steps, dataset, data, calibration, seed, device, json, png,
        };

        command.SetAction(parse =>
        {
            var ui = ConsoleUi.For(output);
            string pathA = parse.GetValue(first)!;
            string pathB = parse.GetValue(second)!;
            string alignName = parse.GetValue(align)!.Trim().ToLowerInvariant();
            if (alignName is not ("none" or "wm"))
            {
                throw new ArgumentException($"--align must be none or wm, not '{parse.GetValue(align)}'.");
            }

            int stepCount = parse.GetValue(steps);
            if (stepCount is < 2 or > 1001)
            {
                throw new ArgumentException($"--steps must be in [2, 1001], not {stepCount}.");
            }

            var repairMode = RepairModes.Parse(parse.GetValue(repair)!);
            foreach (string path in new[] { pathA, pathB })
            {
                if (!File.Exists(path))
                {
                    throw new FileNotFoundException($"{path}: no such model file.");
                }
            }

            var torchDevice = TorchDevices.Resolve(parse.GetValue(device)!);
            using var modelA = ModelFile.Load(pathA, torchDevice);
            using var modelB = ModelFile.Load(pathB, torchDevice);
            StateDicts.RequireSameLayout([modelA.state_dict(), modelB.state_dict()], [pathA, pathB]);
            string datasetName = parse.GetValue(dataset)!;
            var test = CommonOptions.LoadDataset(datasetName, DataSplit.Test, parse.GetValue(data));
            CommonOptions.RequireCompatible(modelA.Spec, test, pathA);
            using var testData = TensorData.From(test, null, torchDevice);

            var spec = PermutationSpecs.For(modelA);
            var permutations = spec.Identity();
            Dictionary<string, Tensor>? aligned = null;
            try
            {
                if (alignName == "wm")
                {
                    var match = WeightMatching.Match(spec, modelA.state_dict(), modelB.state_dict(), new WeightMatchingOptions { Seed = parse.GetValue(seed) });
                    permutations = match.Permutations;
                    aligned = spec.Permute(modelB.state_dict(), permutations);
                    ui.Line($"Aligned B to A: objective {match.ObjectiveBefore:G6} -> {match.ObjectiveAfter:G6} in {match.Sweeps} sweeps ({match.Seconds:F1} s).");
                }

                using var calibrationData = repairMode == RepairMode.None
                    ? null
                    : CalibrationData.Create(CommonOptions.LoadDataset(datasetName, DataSplit.Train, parse.GetValue(data)), parse.GetValue(calibration), parse.GetValue(seed), torchDevice);
                InterpolationRepair? repairSettings = null;
                if (calibrationData is not null)
                {
                    var momentsA = MomentCollector.Collect(modelA, calibrationData.Batches());
                    var momentsB = MomentAlignment.Permute(modelB.RepairPoints, MomentCollector.Collect(modelB, calibrationData.Batches()), permutations);
                    repairSettings = new InterpolationRepair(repairMode, momentsA, momentsB, calibrationData.Batches);
                }

                double[] alphas = Alphas.Linspace(stepCount);
                var result = ui.WithProgress("interpolate", alphas.Length, update =>
                    InterpolationCurve.Compute(
                        modelA.Spec,
                        modelA.state_dict(),
                        (IReadOnlyDictionary<string, Tensor>?)aligned ?? modelB.state_dict(),
                        alphas,
                        model =>
                        {
                            var e = Evaluator.Evaluate(model, testData);
                            return (e.Loss, e.Accuracy);
                        },
                        repairSettings,
                        new SynchronousProgress<int>(done => update(done, $"alpha {done}/{alphas.Length}"))));

                ui.Line($"{"alpha",6} {"loss",8} {"accuracy",9}");
                for (int i = 0; i < result.Alphas.Length; i++)
                {
                    ui.Line(string.Create(CultureInfo.InvariantCulture, $"{result.Alphas[i],6:F3} {result.Loss[i],8:F4} {result.Accuracy[i] * 100,8:F2}%"));
                }

                ui.Line(string.Create(CultureInfo.InvariantCulture, $"Loss barrier {result.LossBarrier:F4}; accuracy barrier {result.AccuracyBarrier * 100:F2} points (align {alignName}, repair {RepairModes.ToName(repairMode)})."));
                if (parse.GetValue(json) is { } jsonPath)
                {
                    File.WriteAllText(jsonPath, JsonSerializer.Serialize(new
                    {
                        a = pathA,
                        b = pathB,
                        align = alignName,
                        repair = RepairModes.ToName(repairMode),
                        dataset = datasetName,
                        alphas = result.Alphas,
                        loss = result.Loss.Select(JsonNumbers.Finite).ToArray(),
                        accuracy = result.Accuracy,
                        loss_barrier = JsonNumbers.Finite(result.LossBarrier),
                        accuracy_barrier = result.AccuracyBarrier,
                    }, s_indented));
                    ui.Line($"Curve {jsonPath}");
                }

                if (parse.GetValue(png) is { } pngPath)
                {
                    Charts.SaveLines(
                        pngPath,
                        $"{Path.GetFileName(pathA)} -> {Path.GetFileName(pathB)} (align {alignName}, repair {RepairModes.ToName(repairMode)})",
                        "alpha",
                        "test accuracy (%)",
                        [
                            new LineSeries("accuracy", result.Alphas, result.Accuracy.Select(a => a * 100).ToArray()),
                            new LineSeries("loss", result.Alphas, result.Loss, RightAxis: true),
                        ],
                        rightLabel: "test loss");
                    ui.Line($"Plot {pngPath}");
                }
            }
            finally
            {
                if (aligned is not null)
                {
                    StateDicts.DisposeAll([aligned]);
                }
            }

            return ExitCodes.Success;
        });
        return command;
    }
}
