using System.CommandLine;
using System.Globalization;
using FedRebasin.Data;
using FedRebasin.Models;
using FedRebasin.Torch;
using FedRebasin.Training;

namespace FedRebasin.Cli.Commands;

/// <summary><c>fedrebasin train</c>: trains one model, optionally on one client's split, and saves it as safetensors.</summary>
internal static class TrainCommand
{
    public static Command Create(TextWriter output, TextWriter error)
    {
        var model = new Option<string>("--model") { Description = $"Architecture: {string.Join(", ", ModelRegistry.Names)}.", DefaultValueFactory = _ => "mlp" };
        var hidden = new Option<string>("--hidden") { Description = "MLP hidden widths.", DefaultValueFactory = _ => "512,512,512" };
        var width = new Option<double>("--width") { Description = "Channel multiplier of convolutional models.", DefaultValueFactory = _ => 1.0 };
        var norm = new Option<string>("--norm") { Description = "Norm of convolutional models: none, batch or layer.", DefaultValueFactory = _ => "layer" };
        var dataset = CommonOptions.Dataset();
        var data = CommonOptions.Data();
        var partition = new Option<string?>("--partition") { Description = "Train on one client's split: iid, dirichlet:ALPHA[,min=M] or shards:K (needs --clients and --client)." };
        var clients = new Option<int?>("--clients") { Description = "Number of clients the training set is split among." };
        var client = new Option<int?>("--client") { Description = "Which client's split to train on (0-based)." };
        var epochs = new Option<int>("--epochs") { Description = "Passes over the data.", DefaultValueFactory = _ => 3 };
        var seed = CommonOptions.Seed();
        var optimizer = new Option<string>("--optimizer") { Description = "sgd or adam.", DefaultValueFactory = _ => "adam" };
        var lr = new Option<double>("--lr") { Description = "Learning rate.", DefaultValueFactory = _ => CommonOptions.Defaults.LearningRate };
        var momentum = new Option<double>("--momentum") { Description = "SGD momentum.", DefaultValueFactory = _ => CommonOptions.Defaults.Momentum };
        var weightDecay = new Option<double>("--weight-decay") { Description = "L2 weight decay.", DefaultValueFactory = _ => 0.0 };
        var schedule = new Option<string>("--schedule") { Description = "Learning-rate schedule: constant, cosine or step.", DefaultValueFactory = _ => "constant" };
        var batchSize = CommonOptions.BatchSize(CommonOptions.Defaults.BatchSize);
        var device = CommonOptions.Device();
        var outPath = new Option<string>("--out") { Description = "Where to write the trained model (.safetensors).", Required = true };

        var command = new Command("train", "Train a model on a data set (or one client's split of it) and save it as safetensors.")
        {
            model, hidden, width, norm, dataset, data, partition, clients, client, epochs, seed,
            optimizer, lr, momentum, weightDecay, schedule, batchSize, device, outPath,
        };

        command.SetAction(parse =>
        {
            var ui = ConsoleUi.For(output);
            var options = new TrainingOptions
            {
                Optimizer = TrainingOptions.ParseOptimizer(parse.GetValue(optimizer)!),
                LearningRate = parse.GetValue(lr),
                Momentum = parse.GetValue(momentum),
                WeightDecay = parse.GetValue(weightDecay),
                Schedule = TrainingOptions.ParseSchedule(parse.GetValue(schedule)!),
                BatchSize = parse.GetValue(batchSize),
                Epochs = parse.GetValue(epochs),
                Seed = parse.GetValue(seed),
            };
            options.Validate();
            string target = parse.GetValue(outPath)!;
            string? targetDirectory = Path.GetDirectoryName(Path.GetFullPath(target));
            if (targetDirectory is not null && !Directory.Exists(targetDirectory))
            {
                throw new DirectoryNotFoundException($"--out {target}: folder {targetDirectory} does not exist.");
            }

            var (indices, splitLabel) = ResolveSplit(parse.GetValue(partition), parse.GetValue(clients), parse.GetValue(client), parse.GetValue(seed));
            string datasetName = parse.GetValue(dataset)!;
            var train = CommonOptions.LoadDataset(datasetName, DataSplit.Train, parse.GetValue(data));
            var test = CommonOptions.LoadDataset(datasetName, DataSplit.Test, parse.GetValue(data));
            int[] chosen = indices?.Invoke(train) ?? Enumerable.Range(0, train.Count).ToArray();
            var spec = ModelRegistry.DefaultSpec(
                parse.GetValue(model)!, train.Channels, train.Height, train.Width, train.ClassCount,
                CommonOptions.ParseWidths(parse.GetValue(hidden)!, "--hidden"), parse.GetValue(width), ModelSpec.ParseNorm(parse.GetValue(norm)!));
            var torchDevice = TorchDevices.Resolve(parse.GetValue(device)!);

            ui.Line($"Training {spec.Describe()} on {datasetName} {splitLabel}: {chosen.Length} examples, {options.Epochs} epoch(s), {options.Optimizer} lr {options.LearningRate.ToString(CultureInfo.InvariantCulture)}, device {torchDevice}.");
            if (indices is not null)
            {
                var histogram = new int[train.ClassCount];
                foreach (int i in chosen)
                {
                    histogram[train.Labels[i]]++;
                }

                ui.Line($"  labels of this split (class: examples): {string.Join("  ", histogram.Select((n, c) => $"{c}:{n}"))}");
            }

            using var net = ModelRegistry.Create(spec, torchDevice, parse.GetValue(seed));
            using var trainData = TensorData.From(train, chosen, torchDevice);
            using var testData = TensorData.From(test, null, torchDevice);
            int batches = (chosen.Length + options.BatchSize - 1) / options.BatchSize;
            var report = ui.WithProgress("train", (double)batches * options.Epochs, update =>
                Trainer.Train(net, trainData, options, new Progress(update, batches)));
            foreach (var epoch in report.Epochs)
            {
                ui.Line($"  epoch {epoch.Epoch}: train loss {CommonOptions.Number(epoch.Loss)}, train accuracy {CommonOptions.Percent(epoch.Accuracy)}, {epoch.Seconds.ToString("F1", CultureInfo.InvariantCulture)} s");
            }

            TrainingDivergedException.ThrowIfDiverged(report, net);
            var evaluation = Evaluator.Evaluate(net, testData);
            ui.Line($"Test ({evaluation.Count} examples): loss {CommonOptions.Number(evaluation.Loss)}, accuracy {CommonOptions.Percent(evaluation.Accuracy)}.");
            ModelFile.Save(net, target, new Dictionary<string, string>
            {
                ["fedrebasin.trained_on"] = $"{datasetName} {splitLabel}",
                ["fedrebasin.examples"] = chosen.Length.ToString(CultureInfo.InvariantCulture),
                ["fedrebasin.epochs"] = options.Epochs.ToString(CultureInfo.InvariantCulture),
                ["fedrebasin.seed"] = options.Seed.ToString(CultureInfo.InvariantCulture),
                ["fedrebasin.test_accuracy"] = evaluation.Accuracy.ToString("R", CultureInfo.InvariantCulture),
            });
            ui.Line($"Saved {target}");
            return ExitCodes.Success;
        });
        return command;
    }

    /// <summary>Which training examples to use: all, or one client's split.</summary>
    private static (Func<ImageDataset, int[]>? Indices, string Label) ResolveSplit(string? partition, int? clients, int? client, int seed)
    {
        if (partition is null && clients is null && client is null)
        {
            return (null, "(all training examples)");
        }

        if (partition is null || clients is null || client is null)
        {
            throw new ArgumentException("--partition, --clients and --client go together: e.g. --partition dirichlet:0.5 --clients 10 --client 3.");
        }

        var spec = PartitionSpec.Parse(partition);
        if (clients < 1)
        {
            throw new ArgumentException($"--clients must be at least 1, not {clients}.");
        }

        if (client < 0 || client >= clients)
        {
            throw new ArgumentException($"--client must be in [0, {clients - 1}] for --clients {clients}, not {client}.");
        }

        return (dataset => Partitioner.Partition(dataset, clients.Value, spec, seed)[client.Value], $"client {client} of {clients} ({spec})");
    }

    private sealed class Progress(Action<double, string> update, int batchesPerEpoch) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) =>
            update(((value.Epoch - 1) * (double)batchesPerEpoch) + value.Batch, $"epoch {value.Epoch} loss {CommonOptions.Number(value.Loss)}");
    }
}
