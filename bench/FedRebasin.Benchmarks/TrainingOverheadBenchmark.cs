using System.Diagnostics;
using System.Globalization;
using FedRebasin.Data;
using FedRebasin.Models;
using FedRebasin.Torch.Native;
using FedRebasin.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace FedRebasin.Benchmarks;

/// <summary>
/// Data-pipeline overhead of local training: one epoch of the default MLP on Fashion-MNIST through
/// <see cref="Trainer.Train"/> (wall time), against the pure forward+backward+step time of the very same batches
/// gathered beforehand. Both runs start from the same weights; they alternate to share the machine's noise.
/// </summary>
internal static class TrainingOverheadBenchmark
{
    public static int Run(string[] args)
    {
        var options = new Options(args);
        int repeats = options.GetInt("repeats", 3);
        int batchSize = options.GetInt("batch-size", 128);
        string dataset = options.Get("dataset", "fashion-mnist");
        TorchNativeLoader.EnsureLoaded();

        var train = DatasetCatalog.Load(dataset, DataSplit.Train, options.Has("data") ? options.Get("data", "") : null);
        var spec = ModelRegistry.DefaultSpec("mlp", train.Channels, train.Height, train.Width, train.ClassCount);
        using var data = TensorData.From(train);
        var trainingOptions = new TrainingOptions { Epochs = 1, BatchSize = batchSize, Seed = 1 };
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"One epoch of {spec.Describe()} on {dataset} ({train.Count} examples, batch {batchSize}, Adam), {torch.get_num_threads()} torch threads, best of {repeats}."));

        // Warm-up on 20 batches: JIT, LibTorch kernels and allocator caches.
        using (var warmUp = TensorData.From(train, Enumerable.Range(0, batchSize * 20).ToArray()))
        {
            TimeTrainer(spec, warmUp, trainingOptions);
            TimePure(spec, warmUp, trainingOptions);
        }

        var wall = new List<double>();
        var pure = new List<double>();
        for (int r = 0; r < repeats; r++)
        {
            wall.Add(TimeTrainer(spec, data, trainingOptions));
            pure.Add(TimePure(spec, data, trainingOptions));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  run {r + 1}: Trainer.Train {wall[^1]:F2} s, pure step loop {pure[^1]:F2} s, ratio {wall[^1] / pure[^1]:F3}"));
        }

        double ratio = wall.Min() / pure.Min();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"overhead ratio (best wall / best pure) = {ratio:F3}  (target <= 1.15)"));
        return 0;
    }

    private static double TimeTrainer(ModelSpec spec, TensorData data, TrainingOptions options)
    {
        using var model = ModelRegistry.Create(spec, seed: 7);
        var clock = Stopwatch.StartNew();
        Trainer.Train(model, data, options);
        return clock.Elapsed.TotalSeconds;
    }

    private static double TimePure(ModelSpec spec, TensorData data, TrainingOptions options)
    {
        using var model = ModelRegistry.Create(spec, seed: 7);
        int n = data.Count;
        // The same batch order Trainer draws: a generator seeded with the options' seed.
        using var generator = new Generator((ulong)options.Seed, CPU);
        using var order = randperm(data.Count, generator: generator);
        var batches = new List<(Tensor X, Tensor Y)>();
        for (int start = 0; start < n; start += options.BatchSize)
        {
            using var index = order.narrow(0, start, Math.Min(options.BatchSize, n - start));
            batches.Add((data.Features.index_select(0, index), data.Labels.index_select(0, index)));
        }

        using var optimizer = optim.Adam(model.parameters(), options.LearningRate);
        model.train();
        var clock = Stopwatch.StartNew();
        foreach (var (x, y) in batches)
        {
            using var scope = NewDisposeScope();
            optimizer.zero_grad();
            var loss = nn.functional.cross_entropy(model.call(x), y);
            loss.backward();
            optimizer.step();
        }

        double seconds = clock.Elapsed.TotalSeconds;
        foreach (var (x, y) in batches)
        {
            x.Dispose();
            y.Dispose();
        }

        return seconds;
    }
}
