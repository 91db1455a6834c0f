using System.CommandLine;
using System.Globalization;
using FedRebasin.Federation.Strategies;
using FedRebasin.Simulation;
using Spectre.Console;

namespace FedRebasin.Cli.Commands;

/// <summary><c>fedrebasin simulate</c>: the real coordinator and N real clients in this process, once per strategy, compared.</summary>
internal static class SimulateCommand
{
    public static Command Create(TextWriter output, TextWriter error)
    {
        var defaults = new SimulationOptions();
        var dataset = CommonOptions.Dataset();
        var data = CommonOptions.Data();
        var model = new Option<string>("--model") { Description = "Architecture: mlp, vgg11, vgg16, resnet20.", DefaultValueFactory = _ => defaults.Model };
        var hidden = new Option<string?>("--hidden") { Description = "MLP hidden widths, e.g. 256,256 (default 512,512,512)." };
        var width = new Option<double>("--width") { Description = "Channel multiplier of convolutional models (e.g. 0.5 for a small ResNet-20).", DefaultValueFactory = _ => defaults.WidthMultiplier };
        var clients = new Option<int>("--clients") { Description = "Number of clients; the training split is divided among them.", DefaultValueFactory = _ => defaults.Clients };
        var partition = new Option<string>("--partition") { Description = "iid, dirichlet:ALPHA[,min=M] or shards:K.", DefaultValueFactory = _ => defaults.Partition };
        var fraction = new Option<double>("--fraction") { Description = "Fraction of the clients picked per round.", DefaultValueFactory = _ => defaults.FractionPerRound };
        var rounds = new Option<int>("--rounds") { Description = "Rounds per strategy.", DefaultValueFactory = _ => defaults.Rounds };
        var localEpochs = new Option<int>("--local-epochs") { Description = "Local epochs per round.", DefaultValueFactory = _ => defaults.LocalEpochs };
        var batchSize = new Option<int>("--batch-size") { Description = "Client mini-batch size.", DefaultValueFactory = _ => defaults.BatchSize };
        var lr = new Option<double>("--lr") { Description = "Client learning rate (SGD, momentum 0.9).", DefaultValueFactory = _ => defaults.LearningRate };
        var strategies = new Option<string>("--strategies") { Description = "Strategies to compare, e.g. fedavg,wm,wm+repair,fedavg+repair,wm+rescale.", DefaultValueFactory = _ => string.Join(",", defaults.Strategies) };
        var seed = CommonOptions.Seed();
        var concurrent = new Option<int>("--max-concurrent-clients") { Description = "Clients that train at once (the rest wait: memory and cores of one device).", DefaultValueFactory = _ => defaults.MaxConcurrentClients };
        var torchThreads = new Option<int>("--torch-threads") { Description = "LibTorch threads of each client's training (0: this machine's cores shared out among --max-concurrent-clients, at least 1). Results differ in the last digits with it: settings.json records the value used.", DefaultValueFactory = _ => defaults.TorchThreadsPerClient };
        var calibration = new Option<int>("--calibration") { Description = "Training examples the coordinator holds to measure merged models for repair (0: clients answer statistics tasks).", DefaultValueFactory = _ => 0 };
        var repairRounds = new Option<int>("--repair-rounds") { Description = "Repair only in rounds 1 to this one, then merge without it; 0 repairs every round (long runs can diverge, docs/EXPERIMENTS.md).", DefaultValueFactory = _ => defaults.RepairRounds };
        var repairStrength = new Option<double>("--repair-strength") { Description = "How far each repair moves the merged model's statistics toward the targets, in (0, 1]: stds by (target/merged)^a, means by the fraction a; 1 is REPAIR.", DefaultValueFactory = _ => defaults.RepairStrength };
        var repairMaxScale = new Option<double>("--repair-max-scale") { Description = "Largest per-channel repair scale c (kept in [1/c, c]); 0: no cap.", DefaultValueFactory = _ => defaults.RepairMaxScale };
        var repairTargets = new Option<string>("--repair-targets") { Description = "How clients' moments become repair targets: pool (one population over all clients' data) or mix (REPAIR's weighted mean of stds).", DefaultValueFactory = _ => defaults.RepairTargets };
        var evalExamples = new Option<int>("--eval-examples") { Description = "Test examples each published model is evaluated on.", DefaultValueFactory = _ => defaults.EvaluationExamples };
        var noUpdateEvaluation = new Option<bool>("--no-update-evaluation") { Description = "Do not evaluate every client's update (one evaluation per update and round; the merge-barrier columns are then empty)." };
        var device = CommonOptions.Device();
        var metricsPort = new Option<int?>("--metrics-port") { Description = "Serve the coordinators' and clients' Prometheus metrics (plain HTTP) at http://HOST:PORT/metrics while the simulation runs." };
        var oneShot = new Option<bool>("--one-shot") { Description = "Instead of rounds: every client trains its own model from its own initialisation for --local-epochs epochs, then the models are merged once with each strategy and MergeMany and compared with the best single client and the ensemble." };
        var saveClientModels = new Option<bool>("--save-client-models") { Description = "With --one-shot: also write each client's trained model to OUT/clients/client-I.safetensors (for fedrebasin merge or eval)." };
        var seedTrials = CommonOptions.SeedTrials();
        var validation = CommonOptions.Validation();
        var outDir = new Option<string>("--out") { Description = "Folder for settings.json, results.json, per-strategy CSV files, plots and checkpoints.", Required = true };
        var command = new Command("simulate", "Simulate a federation on this machine: the real coordinator and N clients over loopback gRPC, once per strategy, with the same initial model and splits.")
        {
            dataset, data, model, hidden, width, clients, partition, fraction, rounds, localEpochs, batchSize, lr, strategies, seed, concurrent, torchThreads, calibration, repairTargets, repairRounds, repairStrength, repairMaxScale, evalExamples, noUpdateEvaluation, device, metricsPort, oneShot, saveClientModels, seedTrials, validation, outDir,
        };

        command.SetAction(async (parse, cancellationToken) =>
        {
            var ui = ConsoleUi.For(output);
            IReadOnlyList<StrategySpec> compared;
            try
            {
                compared = StrategySpec.ParseList(parse.GetValue(strategies)!);
            }
            catch (FormatException e)
            {
                throw new ArgumentException($"--strategies: {e.Message}", e);
            }

            var options = new SimulationOptions
            {
                Dataset = parse.GetValue(dataset)!,
                DataDirectory = parse.GetValue(data),
                Model = parse.GetValue(model)!,
                Hidden = parse.GetValue(hidden) is { } widths ? CommonOptions.ParseWidths(widths, "--hidden") : [],
                WidthMultiplier = parse.GetValue(width),
                Clients = parse.GetValue(clients),
                Partition = parse.GetValue(partition)!,
                FractionPerRound = parse.GetValue(fraction),
                Rounds = parse.GetValue(rounds),
                LocalEpochs = parse.GetValue(localEpochs),
                BatchSize = parse.GetValue(batchSize),
                LearningRate = parse.GetValue(lr),
                Strategies = compared,
                Seed = parse.GetValue(seed),
                MaxConcurrentClients = parse.GetValue(concurrent),
                TorchThreadsPerClient = parse.GetValue(torchThreads),
                CalibrationExamples = parse.GetValue(calibration),
                RepairTargets = parse.GetValue(repairTargets)!,
                RepairRounds = parse.GetValue(repairRounds),
                RepairStrength = parse.GetValue(repairStrength),
                RepairMaxScale = parse.GetValue(repairMaxScale),
                EvaluationExamples = parse.GetValue(evalExamples),
                EvaluateUpdates = !parse.GetValue(noUpdateEvaluation),
                Device = parse.GetValue(device)!,
                OneShot = parse.GetValue(oneShot),
                SaveClientModels = parse.GetValue(saveClientModels),
                SeedTrials = parse.GetValue(seedTrials),
                ValidationExamples = parse.GetValue(validation),
                OutputDirectory = parse.GetValue(outDir)!,
            };
            options.Validate();
            if (options.OneShot)
            {
                return await RunOneShotAsync(ui, options, cancellationToken);
            }

            ui.Line(string.Create(CultureInfo.InvariantCulture,
                $"Simulating {options.Clients} clients ({options.Partition}) on {options.Dataset}, {options.Rounds} rounds of {options.LocalEpochs} local epoch(s), strategies {string.Join(", ", options.Strategies)}; {options.MaxConcurrentClients} client(s) training at once, {options.EffectiveTorchThreadsPerClient} LibTorch thread(s) each."));
            var progress = new SynchronousProgress<SimulationProgress>(p => ui.Line(p.Failure is not null
                ? $"[{p.StrategyIndex + 1}/{p.Strategies}] {p.Strategy}: {p.Failure}"
                : p.Round == 0
                ? string.Create(CultureInfo.InvariantCulture, $"[{p.StrategyIndex + 1}/{p.Strategies}] {p.Strategy}: starting the coordinator and {options.Clients} clients")
                : string.Create(CultureInfo.InvariantCulture, $"[{p.StrategyIndex + 1}/{p.Strategies}] {p.Strategy}: round {p.Round}/{p.Rounds}, test accuracy {p.Accuracy:P2}")));
            int? port = parse.GetValue(metricsPort);
            if (port is not (null or (>= 1 and <= 65535)))
            {
                throw new ArgumentException($"--metrics-port must be a port in [1, 65535], not {port}.");
            }

            // The coordinators run one after another in this process; one listener exports them and the clients.
            await using var metrics = port is int p
                ? await MetricsServer.StartAsync(p, [Coordinator.CoordinatorHosting.CoordinatorMeterName, Client.ClientMetrics.MeterName], cancellationToken)
                : null;
            var result = await SimulationRunner.RunAsync(options, progress, cancellationToken, metrics?.Metrics);
            var files = SimulationReport.Write(result);

            var table = new Table().AddColumns("strategy", "final", "best", "vs FedAvg", "last-merge barrier", "seconds");
            foreach (var row in SimulationReport.Ranking(result))
            {
                table.AddRow(Markup.Escape(row.Strategy), row.Final, row.Best, row.ShadowGap, row.LastMergeBarrier, row.Seconds);
            }

            ui.Line(string.Empty);
            ui.Console.Write(table);
            ui.Line("final, best: test accuracy after the last round and at its best round; vs FedAvg: points over plain FedAvg of the same updates; "
                + "last-merge barrier: test-loss barrier on the line between the last round's two largest clients' models, as trained → weight-matched.");
            ui.Line(string.Create(CultureInfo.InvariantCulture,
                $"{result.Seconds:0} s in all, peak working set {result.PeakWorkingSetBytes / (1024.0 * 1024.0):0} MiB. Results: {Path.Combine(options.OutputDirectory, "results.json")}; plots: {string.Join(", ", files.Where(f => f.EndsWith(".png", StringComparison.Ordinal)))}"));
            return ExitCodes.Success;
        });
        return command;
    }

    private static async Task<int> RunOneShotAsync(ConsoleUi ui, SimulationOptions options, CancellationToken cancellationToken)
    {
        ui.Line(string.Create(CultureInfo.InvariantCulture,
            $"One-shot merging: {options.Clients} clients ({options.Partition}) on {options.Dataset}, each trained {options.LocalEpochs} epoch(s) from its own initialisation, then merged with {string.Join(", ", options.Strategies)} and MergeMany{(options.SeedTrials > 1 ? $" (each aligned merge: the best of {options.SeedTrials} matching seeds on {options.ValidationExamples} training examples)" : "")}; {options.MaxConcurrentClients} client(s) training at once, {options.EffectiveTorchThreadsPerClient} LibTorch thread(s) each."));
        // Clients report from their own training threads.
        var gate = new object();
        var result = await OneShotRunner.RunAsync(options, new SynchronousProgress<string>(line =>
        {
            lock (gate)
            {
                ui.Line(line);
            }
        }), cancellationToken);
        var files = OneShotReport.Write(result);
        var table = new Table().AddColumns("method", "test accuracy", "test loss", "vs best single (points)", "vs ensemble (points)", "merge seconds");
        foreach (var row in OneShotReport.Ranking(result))
        {
            table.AddRow(Markup.Escape(row.Method), row.Accuracy, row.Loss, row.VsBestSingle, row.VsEnsemble, row.Seconds);
        }

        ui.Line(string.Empty);
        ui.Console.Write(table);
        ui.Line(string.Create(CultureInfo.InvariantCulture,
            $"{result.Seconds:0} s in all, peak working set {result.PeakWorkingSetBytes / (1024.0 * 1024.0):0} MiB. Best single client is the oracle pick by test accuracy. Results: {Path.Combine(options.OutputDirectory, "results.json")}; plots: {string.Join(", ", files.Where(f => f.EndsWith(".png", StringComparison.Ordinal)))}"));
        return ExitCodes.Success;
    }
}
