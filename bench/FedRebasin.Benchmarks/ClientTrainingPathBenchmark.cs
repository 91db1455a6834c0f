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
    private static readonly string[] s_routes = ["fresh model", "outer dispose scope", "model from bytes", "from bytes + scope", "fresh, other torch threads"];

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
            TrainOnce(spec, start, data[0], training, route: 3, otherThreads: 0); // warm-up: JIT and LibTorch's caches
            for (int pass = 0; pass < repeats; pass++)
            {
                foreach (var clientData in data)
                {
                    // Rotate the order per client so no route always runs first or after the same neighbour.
                    for (int k = 0; k < s_routes.Length; k++)
                    {
                        int route = (k + pass + data.IndexOf(clientData)) % s_routes.Length;
                        seconds[route].Add(TrainOnce(spec, start, clientData, training, route, otherThreads));
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
                $"  {s_routes[route],-22} Trainer.Train total {seconds[route].Sum():F2} s, median {Median(seconds[route]) * 1000:F1} ms per client; fresh / this = {baseline / seconds[route].Sum():F3}"));
        }

        return 0;
    }

    private static double TrainOnce(ModelSpec spec, byte[] start, TensorData data, TrainingOptions options, int route, int otherThreads)
    {
        bool scoped = route is 1 or 3;
        bool fromBytes = route is 2 or 3;
        using var others = route == 4 ? new IdleTorchThreads(otherThreads) : null;
        using var scope = scoped ? NewDisposeScope() : null;
        using var model = fromBytes ? ModelFile.FromSafeTensors(SafeTensors.Parse(start, "start"), "start") : ModelRegistry.Create(spec, seed: 0);
        return Trainer.Train(model, data, options).Seconds;
    }

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

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[(sorted.Length / 2) - 1] + sorted[sorted.Length / 2]) / 2;
    }
}
