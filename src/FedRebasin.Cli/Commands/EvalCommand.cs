using System.CommandLine;
using System.Text.Json;
using FedRebasin.Data;
using FedRebasin.Models;
using FedRebasin.Torch;
using FedRebasin.Training;

namespace FedRebasin.Cli.Commands;

/// <summary><c>fedrebasin eval</c>: loss and accuracy of a model file on a data set's test split.</summary>
internal static class EvalCommand
{
    public static Command Create(TextWriter output, TextWriter error)
    {
        var file = new Argument<string>("model") { Description = "A model file (.safetensors) written by FedRebasin or by PyTorch (nn.Sequential MLP)." };
        var dataset = CommonOptions.Dataset();
        var data = CommonOptions.Data();
        var json = new Option<string?>("--json")
        {
            Description = "Print {\"loss\": ..., \"accuracy\": ...} as JSON instead of text; with a path, write the JSON there.",
            Arity = ArgumentArity.ZeroOrOne,
        };
        var device = CommonOptions.Device();
        var batchSize = CommonOptions.BatchSize(Evaluator.DefaultBatchSize);
        var command = new Command("eval", "Evaluate a model file on the test split of a data set.") { file, dataset, data, json, device, batchSize };

        command.SetAction(parse =>
        {
            string path = parse.GetValue(file)!;
            if (!File.Exists(path))
            {
                throw new FileNotFoundException($"{path}: no such model file.");
            }

            var torchDevice = TorchDevices.Resolve(parse.GetValue(device)!);
            using var model = ModelFile.Load(path, torchDevice);
            var test = CommonOptions.LoadDataset(parse.GetValue(dataset)!, DataSplit.Test, parse.GetValue(data));
            CommonOptions.RequireCompatible(model.Spec, test, path);
            using var testData = TensorData.From(test, null, torchDevice);
            var result = Evaluator.Evaluate(model, testData, parse.GetValue(batchSize));
            var jsonResult = parse.GetResult(json);
            if (jsonResult is null)
            {
                output.WriteLine($"{path}: {model.Spec.Describe()} on {test.Name} test ({result.Count} examples): loss {CommonOptions.Number(result.Loss)}, accuracy {CommonOptions.Percent(result.Accuracy)}");
                return ExitCodes.Success;
            }

            string text = JsonSerializer.Serialize(new { loss = result.Loss, accuracy = result.Accuracy, examples = result.Count, model = model.Spec.Describe(), dataset = test.Name });
            string? jsonPath = parse.GetValue(json);
            if (string.IsNullOrEmpty(jsonPath))
            {
                output.WriteLine(text);
            }
            else
            {
                File.WriteAllText(jsonPath, text + Environment.NewLine);
            }

            return ExitCodes.Success;
        });
        return command;
    }
}
