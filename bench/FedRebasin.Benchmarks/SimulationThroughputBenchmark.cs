using System.Diagnostics;
using System.Globalization;
using FedRebasin.Data;
using FedRebasin.Federation.Strategies;
using FedRebasin.Models;
using FedRebasin.Simulation;
using FedRebasin.Torch.Native;
using FedRebasin.Training;

namespace FedRebasin.Benchmarks;

/// <summary>
/// Simulation throughput (issue: ratio ≥ 0.9): client-epochs per second of <c>fedrebasin simulate</c> (the real
/// coordinator and N client workers over loopback gRPC) against the same trainings run back to back in a plain loop
/// (<see cref="Trainer.Train"/> on each client's split, from the same start, with the same hyper-parameters). The
/// plain loop and the simulation alternate, best of the repeats each.
/// </summary>
internal static class SimulationThroughputBenchmark
{
    public static int Run(string[] args)
    {
        var options = new Options(args);
        int clients = options.GetInt("clients", 20);
        int rounds = options.GetInt("rounds", 2);
        int repeats = options.GetInt("repeats", 2);
        int concurrent = options.GetInt("max-concurrent-clients", 1);
        int warmups = options.GetInt("warmup", 1);
        string dataset = options.Get("dataset", "fashion-mnist");
        string partition = options.Get("partition", "iid");
        TorchNativeLoader.EnsureLoaded();

        var train = DatasetCatalog.Load(dataset, DataSplit.Train, null);
        var spec = ModelRegistry.DefaultSpec("mlp", train.Channels, train.Height, train.Width, train.ClassCount);
        var splits = Partitioner.Partition(train, clients, PartitionSpec.Parse(partition), 0);
        var simulation = new SimulationOptions
        {
            Dataset = dataset,
            Clients = clients,
            Partition = partition,
            Rounds = rounds,
            LocalEpochs = 1,
            Strategies = [StrategySpec.FedAvg],
            MaxConcurrentClients = concurrent,
            EvaluationExamples = 1000,
            OutputDirectory = Path.Combine(Path.GetTempPath(), "fedrebasin-bench-sim-" + Guid.NewGuid().ToString("N")),
        };
        int clientEpochs = clients * rounds;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{clients} clients ({partition}) x {rounds} rounds x 1 local epoch of {spec.Describe()} on {dataset}: {clientEpochs} client-epochs; simulation with {concurrent} client(s) computing at once, fedavg, evaluation on 1,000 test images; best of {repeats}."));

        // Per-update evaluation (the merge barrier) is analysis, not federation machinery: measured both ways.
        var withoutUpdateEvaluation = simulation with { EvaluateUpdates = false };
        var plain = new List<double>();
        var simulated = new List<double>();
        var simulatedLean = new List<double>();
        try
        {
            for (int w = 0; w < warmups; w++)
            {
                // JIT, Kestrel and the first connections: a process's first simulation pays for them once.
                SimulationRunner.RunAsync(simulation with { Rounds = 1 }, null, CancellationToken.None).GetAwaiter().GetResult();
            }

            for (int r = 0; r < repeats; r++)
            {
                plain.Add(TimePlain(spec, train, splits, rounds, simulation, out double plainTraining));
                simulated.Add(TimeSimulation(simulation, out double accuracy, out string breakdown));
                simulatedLean.Add(TimeSimulation(withoutUpdateEvaluation, out _, out string leanBreakdown));
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"    plain loop: Trainer.Train {plainTraining:F2} s of {plain[^1]:F2} s"));
                Console.WriteLine("    simulation: " + breakdown);
                Console.WriteLine("    without update evaluation: " + leanBreakdown);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"  run {r + 1}: plain loop {plain[^1]:F2} s ({clientEpochs / plain[^1]:F2} client-epochs/s), simulation {simulated[^1]:F2} s ({clientEpochs / simulated[^1]:F2} client-epochs/s, final accuracy {accuracy:P1}), ratio {plain[^1] / simulated[^1]:F3}; without update evaluation {simulatedLean[^1]:F2} s, ratio {plain[^1] / simulatedLean[^1]:F3}"));
            }
        }
        finally
        {
            if (Directory.Exists(simulation.OutputDirectory))
            {
                Directory.Delete(simulation.OutputDirectory, recursive: true);
            }
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"throughput ratio (simulation / plain loop, best of each) = {plain.Min() / simulated.Min():F3}  (target >= 0.9); without per-update evaluation = {plain.Min() / simulatedLean.Min():F3}"));
        return 0;
    }

    /// <summary>
    /// Times one whole simulation and says where its time went: loading the data, the strategy's run (coordinator
    /// start, rounds, clients winding down), the rounds themselves, the clients' own training inside them, and what
    /// follows the run (the interpolation of the last merge).
    /// </summary>
    private static double TimeSimulation(SimulationOptions simulation, out double finalAccuracy, out string breakdown)
    {
        var costs = ProcessCosts.Now();
        var clock = Stopwatch.StartNew();
        var result = SimulationRunner.RunAsync(simulation, null, CancellationToken.None).GetAwaiter().GetResult();
        double seconds = clock.Elapsed.TotalSeconds;
        var spent = ProcessCosts.Now() - costs;
        var run = result.Runs[0];
        finalAccuracy = run.FinalAccuracy;
        double rounds = run.Rounds.Sum(r => r.Seconds);
        double training = run.Rounds.Sum(r => r.ClientTrainingSeconds);
        breakdown = string.Create(CultureInfo.InvariantCulture,
            $"{seconds:F2} s = data load {seconds - result.Seconds:F2} + strategy run {run.Seconds:F2} (rounds {rounds:F2}, of which clients' Trainer.Train {training:F2}; outside the rounds {run.Seconds - rounds:F2}) + after the run {result.Seconds - run.Seconds:F2}; {spent}");
        return seconds;
    }

    /// <summary>The same trainings with nothing around them: per round, every client trains a copy of one model on its split.</summary>
    private static double TimePlain(ModelSpec spec, ImageDataset train, IReadOnlyList<int[]> splits, int rounds, SimulationOptions simulation, out double trainingSeconds)
    {
        trainingSeconds = 0;
        var costs = ProcessCosts.Now();
        var data = splits.Select(split => TensorData.From(train, split)).ToList();
        try
        {
            var clock = Stopwatch.StartNew();
            for (int round = 1; round <= rounds; round++)
            {
                var options = new TrainingOptions
                {
                    Epochs = 1,
                    BatchSize = simulation.BatchSize,
                    LearningRate = simulation.LearningRate,
                    Optimizer = TrainingOptions.ParseOptimizer("sgd"),
                    Momentum = 0.9,
                    Seed = round,
                };
                foreach (var clientData in data)
                {
                    using var model = ModelRegistry.Create(spec, seed: simulation.Seed);
                    trainingSeconds += Trainer.Train(model, clientData, options).Seconds;
                }
            }

            double seconds = clock.Elapsed.TotalSeconds;
            Console.WriteLine("    plain loop: " + (ProcessCosts.Now() - costs));
            return seconds;
        }
        finally
        {
            foreach (var d in data)
            {
                d.Dispose();
            }
        }
    }

    /// <summary>What the process paid so far in page faults, CPU time and garbage collections (differences say what a step cost).</summary>
    private readonly record struct ProcessCosts(long MinorFaults, double CpuSeconds, int Gen0, int Gen1, int Gen2, TimeSpan GcPause)
    {
        public static ProcessCosts Now()
        {
            // /proc/self/stat: field 10 is minflt (after the command in parentheses, which may hold spaces).
            string stat = File.ReadAllText("/proc/self/stat");
            string[] fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            using var self = Process.GetCurrentProcess();
            return new ProcessCosts(
                long.Parse(fields[7], CultureInfo.InvariantCulture), self.TotalProcessorTime.TotalSeconds,
                GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2), GC.GetTotalPauseDuration());
        }

        public static ProcessCosts operator -(ProcessCosts a, ProcessCosts b) =>
            new(a.MinorFaults - b.MinorFaults, a.CpuSeconds - b.CpuSeconds, a.Gen0 - b.Gen0, a.Gen1 - b.Gen1, a.Gen2 - b.Gen2, a.GcPause - b.GcPause);

        public override string ToString() => string.Create(CultureInfo.InvariantCulture,
            $"{MinorFaults:N0} minor page faults, CPU {CpuSeconds:F2} s, GCs gen0/1/2 {Gen0}/{Gen1}/{Gen2} (pauses {GcPause.TotalSeconds:F3} s)");
    }
}
