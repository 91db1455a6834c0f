using System.Globalization;
using FedRebasin.Data;
using FedRebasin.Models;
using FedRebasin.Tensors;
using FedRebasin.Torch.Native;
using FedRebasin.Training;
using static TorchSharp.torch;

namespace FedRebasin.Benchmarks;

/// <summary>
/// Why does a client's training run slower inside the simulation than in a plain loop (issue #5)? The same client
/// trainings through four routes, alternating client by client in one process, no gRPC: a model made fresh (the
/// plain loop), the training inside an outer dispose scope (as <c>ClientWorker</c> trains), the model rebuilt from the
/// serialised start (as a client loads the global model), both, and a fresh model while other threads that each ran
/// one multi-threaded LibTorch op wait idle (as the simulation's coordinator and other clients do). Only
/// <see cref="Trainer.Train"/>'s own seconds are compared, so a difference is the training itself running slower.
/// </summary>
/// <remarks>
/// LibTorch parallelises with GNU OpenMP: every thread that ran a parallel op leads a thread team of its own for as
/// long as it lives, and once the process holds more OpenMP threads than cores, libgomp's workers stop spinning between
/// ops ("throttled" spinning). docs/BENCHMARKS.md has what that costs and why the simulation keeps it.
/// </remarks>
internal static class ClientTrainingPathBenchmark
{
    private static readonly Route[] s_routes =
    [
        new("fresh model", Scoped: false, FromBytes: false, BesideIdleThreads: false),
        new("outer dispose scope", Scoped: true, FromBytes: false, BesideIdleThreads: false),
        new("model from bytes", Scoped: false, FromBytes: true, BesideIdleThreads: false),
        new("from bytes + scope", Scoped: true, FromBytes: true, BesideIdleThreads: false),
        new("fresh, other torch threads", Scoped: false, FromBytes: false, BesideIdleThreads: true),
    ];

    public static int Run(string[] args)
    {
        var options = new Options(args);
        int clients = options.GetInt("clients", 20);
        int repeats = options.GetInt("repeats", 3);
        // The last route trains while this many other threads, each of which has run one multi-threaded LibTorch op
        // (so each leads an OpenMP thread team of its own), wait idle, as the simulation's other client workers and
        // the coordinator do.
        int otherThreads = options.GetInt("other-torch-threads", 20);
        string dataset = options.Get("dataset", "fashion-mnist");
        TorchNativeLoader.EnsureLoaded();

        var train = DatasetCatalog.Load(dataset, DataSplit.Train, null);
        var spec = ModelRegistry.DefaultSpec("mlp", train.Channels, train.Height, train.Width, train.ClassCount);
        var splits = Partitioner.Partition(train, clients, PartitionSpec.Parse("iid"), 0);
        var data = splits.Select(split => TensorData.From(train, split)).ToList();
        byte[] start;
        using (var initial = ModelRegistry.Create(spec, seed: 0))
        {
            start = ModelFile.ToBytes(initial);
        }

        var training = new TrainingOptions { Epochs = 1, BatchSize = 64, LearningRate = 0.05, Optimizer = OptimizerKind.Sgd, Momentum = 0.9, Seed = 1 };
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{clients} clients x {repeats} passes x {s_routes.Length} routes, one epoch of {spec.Describe()} each, {get_num_threads()} torch threads; routes alternate client by client."));
        var seconds = s_routes.Select(_ => new List<double>()).ToArray();
        try
        {
            TrainOnce(spec, start, data[0], training, s_routes[3], otherThreads: 0); // warm-up: JIT and LibTorch's caches
            for (int pass = 0; pass < repeats; pass++)
            {
                for (int client = 0; client < data.Count; client++)
                {
                    // Rotate the order per client so no route always runs first or after the same neighbour.
                    for (int k = 0; k < s_routes.Length; k++)
                    {
                        int route = (k + pass + client) % s_routes.Length;
                        seconds[route].Add(TrainOnce(spec, start, data[client], training, s_routes[route], otherThreads));
                    }
                }
            }
        }
        finally
        {
            foreach (var d in data)
            {
                d.Dispose();
            }
        }

        double baseline = seconds[0].Sum();
        for (int route = 0; route < s_routes.Length; route++)
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  {s_routes[route].Name,-22} Trainer.Train total {seconds[route].Sum():F2} s, median {Statistics.Median(seconds[route]) * 1000:F1} ms per client; fresh / this = {baseline / seconds[route].Sum():F3}"));
        }

        return 0;
    }

    private static double TrainOnce(ModelSpec spec, byte[] start, TensorData data, TrainingOptions options, Route route, int otherThreads)
    {
        using var others = route.BesideIdleThreads ? new IdleTorchThreads(otherThreads) : null;
        using var scope = route.Scoped ? NewDisposeScope() : null;
        using var model = route.FromBytes ? ModelFile.FromSafeTensors(SafeTensors.Parse(start, "start"), "start") : ModelRegistry.Create(spec, seed: 0);
        return Trainer.Train(model, data, options).Seconds;
    }

    /// <summary>How one route trains: inside an outer dispose scope, from the serialised start, beside idle torch threads.</summary>
    private sealed record Route(string Name, bool Scoped, bool FromBytes, bool BesideIdleThreads);

    /// <summary>Threads that each ran one multi-threaded LibTorch op and then wait until disposed.</summary>
    private sealed class IdleTorchThreads : IDisposable
    {
        private readonly ManualResetEventSlim _release = new();
        private readonly List<Thread> _threads = [];

        public IdleTorchThreads(int count)
        {
            using var ready = new CountdownEvent(count);
            for (int i = 0; i < count; i++)
            {
                var thread = new Thread(() =>
                {
                    using (var a = rand(512, 512))
                    using (var product = a.mm(a))
                    {
                    }

                    ready.Signal();
                    _release.Wait();
                });
                thread.Start();
                _threads.Add(thread);
            }

            ready.Wait();
        }

        public void Dispose()
        {
            _release.Set();
            foreach (var thread in _threads)
            {
                thread.Join();
            }

            _release.Dispose();
        }
    }
}
