using System.Globalization;

namespace FedRebasin.Benchmarks;

/// <summary>
/// Entry point: <c>dotnet run -c Release --project bench/FedRebasin.Benchmarks -- VERB [options]</c>.
/// Each benchmark is a verb implemented in its own file and registered in <see cref="Verbs"/>.
/// </summary>
internal static class Program
{
    /// <summary>Registered verbs: name, one-line help, handler (receives the arguments after the verb).</summary>
    private static readonly (string Name, string Help, Func<string[], int> Run)[] Verbs =
    [
        ("train", "data-pipeline overhead of one training epoch (default MLP, Fashion-MNIST)  [--repeats 3] [--batch-size 128] [--dataset fashion-mnist] [--data DIR]", TrainingOverheadBenchmark.Run),
        ("lap", "linear assignment solver vs scipy.optimize.linear_sum_assignment  [--sizes 256,512,1024,2048] [--repeats 3] [--kinds uniform,lowrank] [--seed 42] [--no-scipy] [--python /usr/bin/python3]", LapBenchmark.Run),
        ("wm", "weight matching (WeightMatching.Match) vs NumPy+SciPy Git Re-Basin weight_matching, memory, profile  [--models mlp,resnet20x4] [--repeats 3] [--seed 0] [--a FILE --b FILE] [--norm layer] [--max-sweeps 100] [--threads N] [--no-python] [--no-replay] [--no-memory] [--keep] [--python /usr/bin/python3]", WeightMatchingBenchmark.Run),
        ("transfer", "~200 MB model download/upload over loopback gRPC vs a plain TCP copy of the same bytes  [--megabytes 200] [--repeats 3] [--no-close] [--no-profile] [--chunk-kib 64] [--upload-chunk-kib 64] [--http2-window-kib N] [--http2-frame-kib N] [--bare-upload-parts N]", TransferBenchmark.Run),
        ("coordinator-memory", "coordinator peak RSS (separate process) while 16 clients upload a ~50 MB model at once, over model size  [--megabytes 50] [--clients 16] [--strategies fedavg,wm] [--max-concurrent-uploads N] [--cli fedrebasin.dll] [--upload-chunk-kib 64] [--coordinator-env K=V;K=V]", CoordinatorMemoryBenchmark.Run),
        ("round-overhead", "per-round wall time minus merge time, 50 clients, tiny model, fedavg, no training  [--clients 50] [--rounds 10] [--warmup 2] [--tick-ms 10] [--max-concurrent-uploads N]", RoundOverheadBenchmark.Run),
        ("client-training", "why a client trains slower inside the simulation: the same trainings fresh / in an outer dispose scope / from serialised bytes / both, alternating  [--clients 20] [--repeats 3] [--other-torch-threads 20] [--dataset fashion-mnist]", ClientTrainingPathBenchmark.Run),
        ("simulate", "simulation throughput: client-epochs/s of fedrebasin simulate vs the same job (load, split, train) in a plain loop  [--clients 20] [--rounds 2] [--repeats 2] [--max-concurrent-clients 2] [--torch-threads 0] [--variants 2x1,2x2,1x2] [--warmup 1] [--dataset fashion-mnist] [--partition iid] [--plain-fedavg]", SimulationThroughputBenchmark.Run),
    ];

    public static int Main(string[] args)
    {
        if (args.Length == 0 || args[0] is "-h" or "--help" or "help")
        {
            PrintUsage();
            return args.Length == 0 ? 2 : 0;
        }

        foreach (var (name, _, run) in Verbs)
        {
            if (string.Equals(name, args[0], StringComparison.Ordinal))
            {
                return run(args[1..]);
            }
        }

        Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"Unknown verb '{args[0]}'."));
        PrintUsage();
        return 2;
    }

    private static void PrintUsage()
    {
        Console.WriteLine("usage: FedRebasin.Benchmarks VERB [options]");
        foreach (var (name, help, _) in Verbs)
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {name,-18} {help}"));
        }
    }
}
