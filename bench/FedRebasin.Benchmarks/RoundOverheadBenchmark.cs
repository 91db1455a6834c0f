using FedRebasin.Coordinator;
using System.Diagnostics;
using System.Globalization;
using FedRebasin.Contracts;
using FedRebasin.Federation.Strategies;
using FedRebasin.Federation.Updates;
using FedRebasin.Merging.Averaging;
using FedRebasin.Models;
using FedRebasin.Models.Permutations;
using FedRebasin.Tensors;
using FedRebasin.Torch;
using Grpc.Core;
using static TorchSharp.torch;

namespace FedRebasin.Benchmarks;

/// <summary>
/// <c>round-overhead</c> verb: the coordinator's fixed cost per round. <c>--clients</c> (50) clients with a tiny model
/// run <c>--rounds</c> (10) measured rounds of fedavg without training (each uploads the downloaded model unchanged);
/// round wall time minus the merge work, measured side by side in the same run. Target: overhead &lt; 100 ms.
/// </summary>
/// <remarks>
/// <para>The coordinator runs in this process (Kestrel on 127.0.0.1:0, HTTP/2; TickInterval <c>--tick-ms</c>, 10 ms),
/// MLP 64-16-4 (1×8×8 inputs, 4 classes). Each client has its own channel (its own HTTP/2 connection) and loops
/// GetTask (long poll) → DownloadModel → SubmitUpdate. A round's wall time runs from the first client receiving the
/// round's TrainTask to the first client receiving the next round's TrainTask (for the last round: the first DoneTask),
/// that is until the next model version is published and handed out; it is split at the last accepted upload (before:
/// clients polling, downloading and uploading; after: closing the round, aggregating, publishing, starting the next
/// round and waking the long polls). <c>--warmup</c> (2) rounds are not counted.</para>
/// <para>Merge time: the same work the coordinator does for a round, run directly here after the federation: validate
/// (<see cref="UpdateValidator"/>) and fold (<see cref="RoundAggregator"/>) the same number of updates of the same
/// model, <see cref="RoundAggregator.Finish"/>, then build the next model, snapshot its state and serialise and hash
/// the new version, as <c>CoordinatorRuntime</c> does when it publishes.</para>
/// </remarks>
internal static class RoundOverheadBenchmark
{
    private const double TargetMs = 100;

    private sealed record Step(int Round, long Task, long Downloaded, long Replied);

    public static int Run(string[] args) => RunAsync(args).GetAwaiter().GetResult();

    private static async Task<int> RunAsync(string[] args)
    {
        var options = new Options(args);
        int clientCount = options.GetInt("clients", 50);
        int rounds = Math.Max(1, options.GetInt("rounds", 10));
        int warmup = Math.Max(0, options.GetInt("warmup", 2));
        int tickMs = options.GetInt("tick-ms", 10);
        var (hasLimit, limitDefault) = FederationCalls.CoordinatorSetting("MaxConcurrentUploads");
        string? limit = options.Has("max-concurrent-uploads") ? options.Get("max-concurrent-uploads", "") : null;
        if (limit is not null && !hasLimit)
        {
            Console.Error.WriteLine("--max-concurrent-uploads: this coordinator build has no Coordinator:MaxConcurrentUploads setting.");
            return 2;
        }

        var settings = new Dictionary<string, string?>
        {
            ["Coordinator:Strategy"] = "fedavg",
            ["Coordinator:Rounds"] = (warmup + rounds).ToString(CultureInfo.InvariantCulture),
            ["Coordinator:MinClients"] = clientCount.ToString(CultureInfo.InvariantCulture),
            ["Coordinator:PollWindow"] = "00:00:05",
            ["Coordinator:TickInterval"] = TimeSpan.FromMilliseconds(tickMs).ToString("c", CultureInfo.InvariantCulture),
            ["Coordinator:TrainingDeadline"] = "00:05:00",
            ["Coordinator:Seed"] = "7",
            ["Coordinator:Model:Architecture"] = "mlp",
            ["Coordinator:Model:InputShape"] = "1,8,8",
            ["Coordinator:Model:Classes"] = "4",
            ["Coordinator:Model:Hidden:0"] = "16",
        };
        if (limit is not null)
        {
            settings["Coordinator:MaxConcurrentUploads"] = limit;
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"In-process coordinator: fedavg, MLP 64-16-4, {clientCount} clients (one channel each), {warmup} warm-up + {rounds} measured rounds, TickInterval {tickMs} ms, MaxConcurrentUploads {(hasLimit ? limit ?? limitDefault + " (default)" : "n/a (not in this build)")}."));
        var steps = new List<Step>();
        var done = new List<long>();
        int refused = 0;
        byte[] model = [];
        await using (var host = await CoordinatorServer.StartAsync(settings))
        {
            var clients = Enumerable.Range(0, clientCount)
                .Select(i => new FederationCalls.Client(host.Address, string.Create(CultureInfo.InvariantCulture, $"client-{i:D2}")))
                .ToArray();
            using var stopHeartbeats = new CancellationTokenSource();
            Task[] heartbeats = [];
            try
            {
                var ct = CancellationToken.None;
                await Task.WhenAll(clients.Select(c => FederationCalls.RegisterAsync(c, 1000, ct)));
                heartbeats = clients.Select(c => FederationCalls.HeartbeatLoopAsync(c, stopHeartbeats.Token)).ToArray();
                void OnRefused() => Interlocked.Increment(ref refused);
                var loops = clients.Select(c => Task.Run(async () =>
                {
                    var mine = new List<Step>();
                    long last = 0;
                    byte[] buffer = [];
                    while (await FederationCalls.NextTrainTaskAsync(c, last, ct, OnRefused) is { } task)
                    {
                        long received = Stopwatch.GetTimestamp();
                        if (buffer.Length != task.ModelBytes)
                        {
                            buffer = new byte[task.ModelBytes];
                        }

                        await RetryRefusedAsync(() => FederationCalls.DownloadAsync(c, task, buffer, ct), OnRefused);
                        long downloaded = Stopwatch.GetTimestamp();
                        var upload = await RetryRefusedAsync(() => FederationCalls.UploadAsync(c, task, buffer, 1000, ct), OnRefused);
                        if (!upload.Reply.Accepted)
                        {
                            throw new InvalidOperationException($"{c.Id}, round {task.Round}: upload not accepted: {upload.Reply.Message}");
                        }

                        mine.Add(new Step((int)task.Round, received, downloaded, Stopwatch.GetTimestamp()));
                        last = task.Round;
                    }

                    return (Steps: mine, Model: buffer, Done: Stopwatch.GetTimestamp());
                })).ToArray();
                foreach (var (mine, buffer, finished) in await Task.WhenAll(loops))
                {
                    steps.AddRange(mine);
                    done.Add(finished);
                    model = buffer;
                }
            }
            finally
            {
                await stopHeartbeats.CancelAsync();
                await Task.WhenAll(heartbeats);
                foreach (var client in clients)
                {
                    client.Dispose();
                }
            }
        }

        // Per round: from the first TrainTask received to the first task of the next round (or DoneTask) received.
        var starts = steps.GroupBy(s => s.Round).ToDictionary(g => g.Key, g => g.Min(s => s.Task));
        long runDone = done.Min();
        var perRound = steps.GroupBy(s => s.Round).OrderBy(g => g.Key).Select(g =>
        {
            long start = starts[g.Key];
            long end = starts.TryGetValue(g.Key + 1, out long next) ? next : runDone;
            long lastReply = g.Max(s => s.Replied);
            return (
                Round: g.Key,
                Count: g.Count(),
                Wall: Ms(end - start),
                Uploads: Ms(lastReply - start),
                Close: Ms(end - lastReply),
                Spread: Ms(g.Max(s => s.Task) - start),
                Download: Median(g.Select(s => Ms(s.Downloaded - s.Task))),
                Upload: Median(g.Select(s => Ms(s.Replied - s.Downloaded))));
        }).ToList();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"Model payload: {model.Length:N0} bytes."));
        var merge = MeasureMerge(model, clientCount, warmup + rounds);
        var measured = perRound.Where(r => r.Round > warmup).ToList();
        Console.WriteLine();
        Console.WriteLine("| round | updates | wall: first task → next version's first task, ms | of which first task → last accepted upload | of which last upload → next task (close, aggregate, publish, start, wake) | task fan-out spread | median download | median upload → reply |");
        Console.WriteLine("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        foreach (var r in perRound)
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {r.Round}{(r.Round <= warmup ? " (warm-up)" : "")} | {r.Count} | {r.Wall:F1} | {r.Uploads:F1} | {r.Close:F1} | {r.Spread:F1} | {r.Download:F1} | {r.Upload:F1} |"));
        }

        var walls = measured.Select(r => r.Wall).ToArray();
        var merges = merge.Skip(warmup).Select(m => m.Total).ToArray();
        double wallMedian = Median(walls);
        double wallP90 = Percentile(walls, 0.9);
        double mergeMedian = Median(merges);
        double overheadMedian = wallMedian - mergeMedian;
        Console.WriteLine();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"Merge work per round, measured here ({clientCount} × UpdateValidator.Validate + RoundAggregator.Fold, Finish, build + snapshot + serialise + hash the next version), median of {merges.Length}: {mergeMedian:F1} ms (validate + fold {Median(merge.Skip(warmup).Select(m => m.Fold)):F1} ms, finish + publish {Median(merge.Skip(warmup).Select(m => m.Publish)):F1} ms)."));
        Console.WriteLine("| measured rounds | wall median | wall p90 | of which to the last upload (median) | of which closing to next task (median) | merge median | overhead median (wall − merge) | overhead p90 |");
        Console.WriteLine("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"| {walls.Length} | {wallMedian:F1} ms | {wallP90:F1} ms | {Median(measured.Select(r => r.Uploads)):F1} ms | {Median(measured.Select(r => r.Close)):F1} ms | {mergeMedian:F1} ms | **{overheadMedian:F1} ms** | {wallP90 - mergeMedian:F1} ms |"));
        if (refused > 0)
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{refused} calls were refused with RESOURCE_EXHAUSTED (request-rate limit) and retried after 20 ms."));
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"overhead median {overheadMedian:F1} ms, p90 {wallP90 - mergeMedian:F1} ms; target < {TargetMs} ms: {(overheadMedian < TargetMs ? "met" : "MISSED")} (median)"));
        return 0;
    }

    private static async Task<T> RetryRefusedAsync<T>(Func<Task<T>> call, Action onRefused)
    {
        while (true)
        {
            try
            {
                return await call();
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.ResourceExhausted)
            {
                onRefused();
                await Task.Delay(20);
            }
        }
    }

    /// <summary>
    /// Times what the coordinator computes for a round of <paramref name="clients"/> identical updates of
    /// <paramref name="payload"/>, <paramref name="repeats"/> times (milliseconds).
    /// </summary>
    private static List<(double Total, double Fold, double Publish)> MeasureMerge(byte[] payload, int clients, int repeats)
    {
        var times = new List<(double, double, double)>();
        using var model = ModelFile.FromSafeTensors(SafeTensors.Parse(payload, "merge"), "merge");
        var reference = Snapshot(model);
        string digest = Sha256Hex.Compute(payload);
        var spec = PermutationSpecs.For(model);
        var strategy = StrategySpec.Parse("fedavg");
        try
        {
            for (int round = 1; round <= repeats; round++)
            {
                var clock = Stopwatch.StartNew();
                var validator = new UpdateValidator(reference, model.RepairPoints);
                using var aggregator = new RoundAggregator(round, reference, spec, model.RepairPoints, strategy);
                for (int i = 0; i < clients; i++)
                {
                    var result = validator.Validate(new UpdateSubmission(string.Create(CultureInfo.InvariantCulture, $"client-{i:D2}"), round, 1000, digest, payload));
                    using var update = result.Update ?? throw new InvalidOperationException("Update refused: " + result.Refusal?.Message);
                    aggregator.Fold(update);
                }

                double fold = clock.Elapsed.TotalMilliseconds;
                using var aggregate = aggregator.Finish();
                var file = new SafeTensorsFile(aggregate.State.Select(p => TensorConversion.ToEntry(p.Key, p.Value)), model.Spec.ToMetadata());
                using var next = ModelFile.FromSafeTensors(file, "aggregate");
                var state = Snapshot(next);
                byte[] bytes = SafeTensors.ToBytes(ModelFile.ToSafeTensors(next));
                _ = Sha256Hex.Compute(bytes);
                double total = clock.Elapsed.TotalMilliseconds;
                StateDicts.DisposeAll([state]);
                times.Add((total, fold, total - fold));
            }
        }
        finally
        {
            StateDicts.DisposeAll([reference]);
        }

        return times;
    }

    private static Dictionary<string, Tensor> Snapshot(ClassifierModel model)
    {
        using var noGrad = no_grad();
        return model.state_dict().ToDictionary(p => p.Key, p => p.Value.detach().clone().DetachFromDisposeScope(), StringComparer.Ordinal);
    }

    private static double Ms(long ticks) => ticks * 1000.0 / Stopwatch.Frequency;

    private static double Median(IEnumerable<double> values) => Percentile(values.ToArray(), 0.5);

    /// <summary>Nearest-rank percentile.</summary>
    private static double Percentile(double[] values, double p)
    {
        if (values.Length == 0)
        {
            return double.NaN;
        }

        var sorted = values.Order().ToArray();
        int rank = (int)Math.Ceiling(p * sorted.Length) - 1;
        return sorted[Math.Clamp(rank, 0, sorted.Length - 1)];
    }
}
