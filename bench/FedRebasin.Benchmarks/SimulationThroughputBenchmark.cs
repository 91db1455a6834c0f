using System.Diagnostics;
using System.Globalization;
using FedRebasin.Data;
using FedRebasin.Federation.Strategies;
using FedRebasin.Merging.Averaging;
using FedRebasin.Models;
using FedRebasin.Simulation;
using FedRebasin.Torch;
using FedRebasin.Torch.Native;
using FedRebasin.Training;

namespace FedRebasin.Benchmarks;

/// <summary>
/// Simulation throughput (issue: ratio ≥ 0.9): client-epochs per second of <c>fedrebasin simulate</c> (the real
/// coordinator and N client workers over loopback gRPC) against the same job in a plain loop: load the training set,
/// split it, make each client's tensors, then the same trainings back to back (<see cref="Trainer.Train"/> on each
/// client's split, from the same start, with the same hyper-parameters). The plain loop and the simulations
/// alternate; best of the repeats each, and the median of the paired runs.
/// </summary>
internal static class SimulationThroughputBenchmark
{
    public static int Run(string[] args)
    {
        var options = new Options(args, "plain-fedavg");
        int clients = options.GetInt("clients", 20);
        int rounds = options.GetInt("rounds", 2);
        int repeats = options.GetInt("repeats", 2);
        // The simulation as users get it: its default concurrency and its share of the cores per client. --variants
        // C1xT1,C2xT2,... measures several (clients computing at once x LibTorch threads each, 0 = their share) against
        // the same plain loops, in turn within each run, so the machine's drift between runs falls on all of them alike.
        var defaults = new SimulationOptions();
        var variants = options.Has("variants")
            ? [.. options.Get("variants", string.Empty).Split(',').Select(ParseVariant)]
            : new[] { (Concurrent: options.GetInt("max-concurrent-clients", defaults.MaxConcurrentClients), Threads: options.GetInt("torch-threads", defaults.TorchThreadsPerClient)) };
        int warmups = options.GetInt("warmup", 1);
        string dataset = options.Get("dataset", "fashion-mnist");
        string partition = options.Get("partition", "iid");
        // Experiment: the plain loop trains round r > 1 from the sample-weighted mean of round r - 1 (FedAvg in a loop,
        // the simulation's own starting points) instead of a fresh model every round.
        bool plainFedAvg = options.Has("plain-fedavg");
        TorchNativeLoader.EnsureLoaded();
        // A plain training script runs with LibTorch's default; the simulation sets its own count on the threads it uses,
        // this one included, so the plain loop sets its count back each time.
        int plainThreads = TorchSharp.torch.get_num_threads();

        var train = DatasetCatalog.Load(dataset, DataSplit.Train, null);
        var spec = ModelRegistry.DefaultSpec("mlp", train.Channels, train.Height, train.Width, train.ClassCount);
        var simulation = new SimulationOptions
        {
            Dataset = dataset,
            Clients = clients,
            Partition = partition,
            Rounds = rounds,
            LocalEpochs = 1,
            Strategies = [StrategySpec.FedAvg],
            EvaluationExamples = 1000,
            OutputDirectory = Path.Combine(Path.GetTempPath(), "fedrebasin-bench-sim-" + Guid.NewGuid().ToString("N")),
        };
        var configured = variants.Select(v => simulation with { MaxConcurrentClients = v.Concurrent, TorchThreadsPerClient = v.Threads }).ToList();
        var names = configured.Select(c => string.Create(CultureInfo.InvariantCulture, $"{c.MaxConcurrentClients} client(s) computing at once x {c.EffectiveTorchThreadsPerClient} LibTorch thread(s)")).ToList();
        int clientEpochs = clients * rounds;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{clients} clients ({partition}) x {rounds} rounds x 1 local epoch of {spec.Describe()} on {dataset}: {clientEpochs} client-epochs; plain loop with {plainThreads} LibTorch threads; simulation ({string.Join("; ", names)}), fedavg, evaluation on 1,000 test images; best of {repeats}."));

        // Per-update evaluation (the merge barrier) is analysis, not federation machinery: measured both ways.
        var plain = new List<PlainTimes>();
        var simulated = configured.Select(_ => new List<SimulationTimes>()).ToList();
        var simulatedLean = configured.Select(_ => new List<SimulationTimes>()).ToList();
        try
        {
            for (int w = 0; w < warmups; w++)
            {
                // JIT, Kestrel and the first connections: a process's first simulation pays for them once.
                SimulationRunner.RunAsync(configured[0] with { Rounds = 1 }, null, CancellationToken.None).GetAwaiter().GetResult();
            }

            for (int r = 0; r < repeats; r++)
            {
                TorchThreads.UseOnThisThread(plainThreads);
                plain.Add(TimePlain(spec, dataset, partition, clients, rounds, simulation, plainFedAvg));
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  run {r + 1}: plain loop {plain[^1].Whole:F2} s ({clientEpochs / plain[^1].Whole:F2} client-epochs/s)"));
                Console.WriteLine("    plain loop: " + plain[^1].Breakdown);
                for (int v = 0; v < configured.Count; v++)
                {
                    simulated[v].Add(TimeSimulation(configured[v]));
                    simulatedLean[v].Add(TimeSimulation(configured[v] with { EvaluateUpdates = false }));
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"    {names[v]}: simulation {simulated[v][^1].Whole:F2} s ({clientEpochs / simulated[v][^1].Whole:F2} client-epochs/s, final accuracy {simulated[v][^1].FinalAccuracy:P1}), ratio {plain[^1].Whole / simulated[v][^1].Whole:F3}; without update evaluation {simulatedLean[v][^1].Whole:F2} s, ratio {plain[^1].Whole / simulatedLean[v][^1].Whole:F3}"));
                    Console.WriteLine("      simulation: " + simulated[v][^1].Breakdown);
                    Console.WriteLine("      without update evaluation: " + simulatedLean[v][^1].Breakdown);
                }
            }
        }
        finally
        {
            if (Directory.Exists(simulation.OutputDirectory))
            {
                Directory.Delete(simulation.OutputDirectory, recursive: true);
            }
        }

        for (int v = 0; v < configured.Count; v++)
        {
            Summarise(names[v], plain, simulated[v], simulatedLean[v]);
        }

        return 0;
    }

    private static (int Concurrent, int Threads) ParseVariant(string text)
    {
        string[] parts = text.Split('x');
        if (parts.Length != 2 || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int concurrent) || concurrent < 1
            || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int threads))
        {
            throw new ArgumentException($"--variants: '{text}' is not CONCURRENTxTHREADS (e.g. 2x1; threads 0 = the machine's share).");
        }

        return (concurrent, threads);
    }

    private static void Summarise(string name, List<PlainTimes> plain, List<SimulationTimes> simulated, List<SimulationTimes> simulatedLean)
    {
        double plainWhole = plain.Min(p => p.Whole);
        double plainTraining = plain.Min(p => p.Training);
        Console.WriteLine(name + ":");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  throughput ratio, whole job (load, split, train; simulation / plain loop, best of each) = {plainWhole / simulated.Min(s => s.Whole):F3}  (target >= 0.9); without per-update evaluation = {plainWhole / simulatedLean.Min(s => s.Whole):F3}"));
        // Each run pairs a plain loop with the simulations right after it: on a machine whose speed drifts between runs,
        // the median of the paired ratios is steadier than the ratio of the two best times.
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  median of the runs' paired ratios, whole job = {Statistics.Median(plain.Zip(simulated, (p, s) => p.Whole / s.Whole)):F3}; without per-update evaluation = {Statistics.Median(plain.Zip(simulatedLean, (p, s) => p.Whole / s.Whole)):F3}"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  rounds only (the plain loop's Trainer.Train calls / the simulation's rounds, start to publication) = {plainTraining / simulated.Min(s => s.Rounds):F3}; without per-update evaluation = {plainTraining / simulatedLean.Min(s => s.Rounds):F3}"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  as measured up to 2026-12-07 (plain loop without its data preparation / whole simulation) = {plain.Min(p => p.Trainings) / simulated.Min(s => s.Whole):F3}; without per-update evaluation = {plain.Min(p => p.Trainings) / simulatedLean.Min(s => s.Whole):F3}"));
    }

    /// <summary>The plain loop's times: the whole job, its trainings with model creation, and the Trainer.Train calls alone.</summary>
    private sealed record PlainTimes(double Whole, double Trainings, double Training, string Breakdown);

    /// <summary>A simulation's times: the whole call, its rounds (start to publication, summed) and its final accuracy.</summary>
    private sealed record SimulationTimes(double Whole, double Rounds, double FinalAccuracy, string Breakdown);

    /// <summary>
    /// Times one whole simulation and says where its time went: loading the data, the strategy's run (coordinator
    /// start, rounds, clients winding down), the rounds themselves, the clients' own training inside them, and what
    /// follows the run (the interpolation of the last merge).
    /// </summary>
    private static SimulationTimes TimeSimulation(SimulationOptions simulation)
    {
        var costs = ProcessCosts.Now();
        var clock = Stopwatch.StartNew();
        var result = SimulationRunner.RunAsync(simulation, null, CancellationToken.None).GetAwaiter().GetResult();
        double seconds = clock.Elapsed.TotalSeconds;
        var spent = ProcessCosts.Now() - costs;
        var run = result.Runs[0];
        double rounds = run.Rounds.Sum(r => r.Seconds);
        double training = run.Rounds.Sum(r => r.ClientTrainingSeconds);
        string breakdown = string.Create(CultureInfo.InvariantCulture,
            $"{seconds:F2} s = data load {seconds - result.Seconds:F2} + strategy run {run.Seconds:F2} (rounds {rounds:F2}, of which clients' Trainer.Train {training:F2}: {PerRound(run.Rounds.Select(r => r.ClientTrainingSeconds))}; outside the rounds {run.Seconds - rounds:F2}) + after the run {result.Seconds - run.Seconds:F2}; {spent}");
        return new SimulationTimes(seconds, rounds, run.FinalAccuracy, breakdown);
    }

    /// <summary>
    /// The same job with nothing around it: load the training set, split it as the simulation does, make each client's
    /// tensors, and per round train one model on every client's split, back to back: a fresh copy of the same initial
    /// model, or with <paramref name="fromMean"/> the previous round's sample-weighted mean (FedAvg without federation).
    /// </summary>
    private static PlainTimes TimePlain(ModelSpec spec, string dataset, string partition, int clients, int rounds, SimulationOptions simulation, bool fromMean)
    {
        var perRound = new List<double>();
        var costs = ProcessCosts.Now();
        var clock = Stopwatch.StartNew();
        var train = DatasetCatalog.Load(dataset, DataSplit.Train, null);
        var splits = Partitioner.Partition(train, clients, PartitionSpec.Parse(partition), simulation.Seed);
        var data = splits.Select(split => TensorData.From(train, split)).ToList();
        double preparation = clock.Elapsed.TotalSeconds;
        Dictionary<string, TorchSharp.torch.Tensor>? mean = null;
        try
        {
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
                double training = 0;
                using var sum = fromMean ? new RunningWeightedSum() : null;
                foreach (var clientData in data)
                {
                    using var model = ModelRegistry.Create(spec, seed: simulation.Seed);
                    if (mean is not null)
                    {
                        StateDicts.CopyInto(model.state_dict(), mean);
                    }

                    training += Trainer.Train(model, clientData, options).Seconds;
                    sum?.Add(model.state_dict(), clientData.Count);
                }

                perRound.Add(training);
                if (sum is not null)
                {
                    DisposeMean();
                    mean = sum.TakeMean();
                }
            }

            double seconds = clock.Elapsed.TotalSeconds;
            string breakdown = string.Create(CultureInfo.InvariantCulture,
                $"{seconds:F2} s = data load, split and tensors {preparation:F2} + trainings {seconds - preparation:F2} (Trainer.Train {perRound.Sum():F2}: {PerRound(perRound)}); {ProcessCosts.Now() - costs}");
            return new PlainTimes(seconds, seconds - preparation, perRound.Sum(), breakdown);
        }
        finally
        {
            DisposeMean();
            foreach (var d in data)
            {
                d.Dispose();
            }
        }

        void DisposeMean()
        {
            if (mean is not null)
            {
                StateDicts.DisposeAll([mean]);
            }
        }
    }

    /// <summary>Seconds per round, e.g. "rounds 4.61 / 5.02".</summary>
    private static string PerRound(IEnumerable<double> seconds) =>
        "rounds " + string.Join(" / ", seconds.Select(s => s.ToString("F2", CultureInfo.InvariantCulture)));

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
