using FedRebasin.Coordinator;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using FedRebasin.Contracts;
using FedRebasin.Contracts.V1;
using FedRebasin.Federation.Strategies;
using FedRebasin.Federation.Updates;
using FedRebasin.Merging.Averaging;
using FedRebasin.Models;
using FedRebasin.Models.Permutations;
using FedRebasin.Tensors;
using FedRebasin.Torch;
using static TorchSharp.torch;

namespace FedRebasin.Benchmarks;

/// <summary>
/// <c>transfer</c> verb: download and upload of a large model (default about 200 MiB) through a real coordinator over
/// loopback gRPC, against a plain TCP socket copy of the same bytes on 127.0.0.1, alternating in one run.
/// </summary>
/// <remarks>
/// <para>The coordinator runs in this process (Kestrel, 127.0.0.1:0, HTTP/2) with an MLP 4096-h-10 (1×64×64 inputs)
/// whose hidden width h is chosen for <c>--megabytes</c>. <c>--repeats</c> + 2 clients register, so the round needs
/// every one of them: the first uploads as a warm-up, each measured repeat uploads as its own client, and the round
/// stays open (no aggregation) until the last client's "closing" upload, which is timed separately.</para>
/// <para>Download: from the call until the last chunk is copied into a preallocated buffer (the digest check happens
/// afterwards and is timed on its own). Upload: header, then 64 KiB chunks (the client worker's size) wrapping the payload (no copies), timed until
/// the last chunk is written and until the coordinator's reply; the reply comes after the coordinator has hashed,
/// parsed, validated and folded the update, so that time is more than transport. TCP: one socket sends the same
/// bytes in 1 MiB writes, the other receives into a preallocated buffer. Bare gRPC (<see cref="BareGrpcTransfer"/>): the
/// same bytes and chunk sizes through a service with no federation logic, the floor of this stack. Best of
/// <c>--repeats</c> after a warm-up.</para>
/// </remarks>
internal static class TransferBenchmark
{
    private const double Target = 0.3;
    private const int InputFeatures = 64 * 64;
    private const int Classes = 10;

    public static int Run(string[] args) => RunAsync(args).GetAwaiter().GetResult();

    private static async Task<int> RunAsync(string[] args)
    {
        var options = new Options(args, "no-profile", "no-close");
        int megabytes = options.GetInt("megabytes", 200);
        int repeats = Math.Max(1, options.GetInt("repeats", 3));
        // Parameters of an MLP 4096-h-10: h·(4096 + 1) + 10·h + 10.
        int hidden = (int)Math.Round(megabytes * 1048576.0 / 4 / (InputFeatures + 1 + Classes));
        int clientCount = repeats + 2;
        // Experiments: larger HTTP/2 flow-control windows (Kestrel's connection and stream windows and the client's
        // stream window) and a larger frame size for what Kestrel receives. 0 keeps the defaults.
        int windowKib = options.GetInt("http2-window-kib", 0);
        int frameKib = options.GetInt("http2-frame-kib", 0);
        // Chunk sizes: the coordinator's DownloadChunkBytes, and the client's upload chunks (also the coordinator's
        // MaxUploadChunkBytes here).
        int downloadChunkBytes = options.GetInt("chunk-kib", ModelChunker.DefaultDownloadChunkBytes / 1024) * 1024;
        int chunkBytes = options.GetInt("upload-chunk-kib", FederationCalls.ChunkBytes / 1024) * 1024;
        var settings = new Dictionary<string, string?>
        {
            ["Coordinator:Strategy"] = "fedavg",
            ["Coordinator:Rounds"] = "100",
            ["Coordinator:MinClients"] = clientCount.ToString(CultureInfo.InvariantCulture),
            ["Coordinator:PollWindow"] = "00:00:05",
            ["Coordinator:TrainingDeadline"] = "01:00:00",
            ["Coordinator:Seed"] = "7",
            ["Coordinator:DownloadChunkBytes"] = downloadChunkBytes.ToString(CultureInfo.InvariantCulture),
            ["Coordinator:MaxUploadChunkBytes"] = Math.Max(chunkBytes, ModelChunker.DefaultMaxUploadChunkBytes).ToString(CultureInfo.InvariantCulture),
            ["Coordinator:Model:Architecture"] = "mlp",
            ["Coordinator:Model:InputShape"] = "1,64,64",
            ["Coordinator:Model:Classes"] = Classes.ToString(CultureInfo.InvariantCulture),
            ["Coordinator:Model:Hidden:0"] = hidden.ToString(CultureInfo.InvariantCulture),
        };

        var ct = CancellationToken.None;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"Starting an in-process coordinator (fedavg, MLP 4096-{hidden}-10, {clientCount} clients) ..."));
        var host = await CoordinatorServer.StartAsync(settings, kestrel: kestrel =>
        {
            var http2 = kestrel.Limits.Http2;
            if (windowKib > 0)
            {
                http2.InitialConnectionWindowSize = windowKib * 1024;
                http2.InitialStreamWindowSize = windowKib * 1024;
            }

            if (frameKib > 0)
            {
                http2.MaxFrameSize = (frameKib * 1024) - 1;
            }
        });
        var clients = Enumerable.Range(0, clientCount)
            .Select(i => new FederationCalls.Client(host.Address, string.Create(CultureInfo.InvariantCulture, $"client-{i:D2}"), windowKib * 1024))
            .ToArray();
        if (windowKib > 0 || frameKib > 0)
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"HTTP/2 (experiment): windows {(windowKib > 0 ? windowKib + " KiB" : "default")}, Kestrel max frame {(frameKib > 0 ? frameKib + " KiB" : "default (16 KiB)")}."));
        }

        byte[] payload;
        var rows = new List<(double Tcp, double BareDownload, double BareUpload, double Download, double FirstChunk, double Written, double Reply)>();
        double digestSeconds;
        using var stopHeartbeats = new CancellationTokenSource();
        var heartbeats = new List<Task>();
        BareGrpcTransfer? bare = null;
        // Experiment (--bare-upload-parts N): the bare upload split into N client streams sent at once, on one connection and on N.
        int uploadParts = options.GetInt("bare-upload-parts", 0);
        var partRows = new List<(double OneConnection, double OwnConnections)>();
        try
        {
            foreach (var client in clients)
            {
                await FederationCalls.RegisterAsync(client, 1000, ct);
                // Idle clients would otherwise be dropped as silent while the others transfer.
                heartbeats.Add(FederationCalls.HeartbeatLoopAsync(client, stopHeartbeats.Token));
            }

            var tasks = new TrainTask[clientCount];
            for (int i = 0; i < clientCount; i++)
            {
                tasks[i] = await FederationCalls.NextTrainTaskAsync(clients[i], 0, ct)
                    ?? throw new InvalidOperationException("The run ended before round 1.");
            }

            long bytes = tasks[0].ModelBytes;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"Model: {bytes:N0} bytes ({FederationCalls.Mib(bytes)}), version {tasks[0].ModelVersion}; {ChunkDescription(downloadChunkBytes, chunkBytes)}; best of {repeats} after a warm-up; MiB = 2^20 bytes."));
            payload = new byte[bytes];
            byte[] scratch = new byte[bytes];

            // Warm-up (JIT, connection windows, page faults of both buffers): client 0 downloads and uploads.
            await FederationCalls.DownloadAsync(clients[0], tasks[0], payload, ct);
            var clock = Stopwatch.StartNew();
            FederationCalls.CheckDigest(tasks[0], payload);
            digestSeconds = clock.Elapsed.TotalSeconds;
            await TcpCopyAsync(payload, scratch);
            await FederationCalls.DownloadAsync(clients[0], tasks[0], scratch, ct);
            Require(await FederationCalls.UploadAsync(clients[0], tasks[0], payload, 1000, ct, chunkBytes));
            bare = await BareGrpcTransfer.StartAsync(payload, downloadChunkBytes);
            await bare.DownloadAsync(scratch);
            await bare.UploadAsync(payload, chunkBytes);
            if (uploadParts > 1)
            {
                await bare.UploadInPartsAsync(payload, chunkBytes, uploadParts, ownConnections: false);
                await bare.UploadInPartsAsync(payload, chunkBytes, uploadParts, ownConnections: true);
            }

            for (int r = 1; r <= repeats; r++)
            {
                double tcp = await TcpCopyAsync(payload, scratch);
                double bareDownload = await bare.DownloadAsync(scratch);
                double bareUpload = await bare.UploadAsync(payload, chunkBytes);
                if (uploadParts > 1)
                {
                    double oneConnection = await bare.UploadInPartsAsync(payload, chunkBytes, uploadParts, ownConnections: false);
                    double ownConnections = await bare.UploadInPartsAsync(payload, chunkBytes, uploadParts, ownConnections: true);
                    partRows.Add((oneConnection, ownConnections));
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"  run {r}: bare upload in {uploadParts} parts at once: one connection {Rate(bytes, oneConnection)} (ratio {tcp / oneConnection:F2}), {uploadParts} connections {Rate(bytes, ownConnections)} (ratio {tcp / ownConnections:F2}); one stream {Rate(bytes, bareUpload)} (ratio {tcp / bareUpload:F2})"));
                }

                clock.Restart();
                double firstChunk = await FederationCalls.DownloadAsync(clients[r], tasks[r], scratch, ct);
                double download = clock.Elapsed.TotalSeconds;
                var upload = Require(await FederationCalls.UploadAsync(clients[r], tasks[r], payload, 1000, ct, chunkBytes));
                rows.Add((tcp, bareDownload, bareUpload, download, firstChunk, upload.WrittenSeconds, upload.ReplySeconds));
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"  run {r}: TCP {Rate(bytes, tcp)}, bare gRPC download {Rate(bytes, bareDownload)} / upload {Rate(bytes, bareUpload)}, download {Rate(bytes, download)} (first chunk after {firstChunk:F3} s), upload {Rate(bytes, upload.WrittenSeconds)} to the last chunk written / {Rate(bytes, upload.ReplySeconds)} to the reply; this run's ratios: download {tcp / download:F2}, upload {tcp / upload.WrittenSeconds:F2} / {tcp / upload.ReplySeconds:F2}"));
            }

            FederationCalls.CheckDigest(tasks[0], scratch);
            if (!options.Has("no-close"))
            {
                // The last participant's upload closes the round: aggregation and publication of the next version follow.
                clock.Restart();
                var last = Require(await FederationCalls.UploadAsync(clients[^1], tasks[^1], payload, 1000, ct, chunkBytes));
                var next = await FederationCalls.NextTrainTaskAsync(clients[0], 1, ct);
                double published = clock.Elapsed.TotalSeconds;
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"  closing upload (the last participant's): {last.WrittenSeconds:F2} s to the last chunk written, {last.ReplySeconds:F2} s to the reply, {published:F2} s until the next version ({next?.ModelVersion}) is handed out (aggregation + publication)"));
            }
        }
        finally
        {
            if (bare is not null)
            {
                await bare.DisposeAsync();
            }

            await stopHeartbeats.CancelAsync();
            await Task.WhenAll(heartbeats);
            foreach (var client in clients)
            {
                client.Dispose();
            }

            await host.DisposeAsync();
        }

        // The coordinator's garbage (upload buffers on the large-object heap) goes before the profile allocates.
        GC.Collect();
        GC.WaitForPendingFinalizers();

        double size = payload.Length;
        double bestTcp = rows.Min(r => r.Tcp);
        double bestBareDownload = rows.Min(r => r.BareDownload);
        double bestBareUpload = rows.Min(r => r.BareUpload);
        double bestDownload = rows.Min(r => r.Download);
        double bestFirstChunk = rows.Min(r => r.FirstChunk);
        double bestWritten = rows.Min(r => r.Written);
        double bestReply = rows.Min(r => r.Reply);
        Console.WriteLine();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"Best of {repeats} ({FederationCalls.Mib(size)}; ratio = gRPC throughput / TCP throughput, target >= {Target}):"));
        Console.WriteLine("| path | best time | throughput | ratio to TCP |");
        Console.WriteLine("| --- | ---: | ---: | ---: |");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| TCP socket copy (127.0.0.1) | {bestTcp:F3} s | {Rate(size, bestTcp)} | 1 |"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| bare gRPC download (no federation logic: the floor of this stack) | {bestBareDownload:F3} s | {Rate(size, bestBareDownload)} | {bestTcp / bestBareDownload:F2} |"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| bare gRPC upload, to the reply | {bestBareUpload:F3} s | {Rate(size, bestBareUpload)} | {bestTcp / bestBareUpload:F2} |"));
        if (partRows.Count > 0)
        {
            double bestOne = partRows.Min(p => p.OneConnection);
            double bestOwn = partRows.Min(p => p.OwnConnections);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| bare gRPC upload in {uploadParts} parts at once, one connection | {bestOne:F3} s | {Rate(size, bestOne)} | {bestTcp / bestOne:F2} |"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| bare gRPC upload in {uploadParts} parts at once, {uploadParts} connections | {bestOwn:F3} s | {Rate(size, bestOwn)} | {bestTcp / bestOwn:F2} |"));
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| gRPC download | {bestDownload:F3} s | {Rate(size, bestDownload)} | **{bestTcp / bestDownload:F2}** |"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| gRPC upload, to the last chunk written | {bestWritten:F3} s | {Rate(size, bestWritten)} | {bestTcp / bestWritten:F2} |"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| gRPC upload, to the reply (incl. validation + fold) | {bestReply:F3} s | {Rate(size, bestReply)} | **{bestTcp / bestReply:F2}** |"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"Coordinator over the bare floor (time ratio, 1 = no cost beyond the transport): download {bestDownload / bestBareDownload:F2}, upload to the reply {bestReply / bestBareUpload:F2}."));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"Download: the first chunk arrived after {bestFirstChunk:F3} s at best; without that wait the download would take {bestDownload - bestFirstChunk:F3} s, ratio {bestTcp / (bestDownload - bestFirstChunk):F2}."));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"Client-side digest check (SHA-256 of the payload, not in the download time): {digestSeconds:F3} s."));

        if (!options.Has("no-profile"))
        {
            Profile(payload);
        }

        double worst = Math.Min(bestTcp / bestDownload, bestTcp / bestReply);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"download ratio {bestTcp / bestDownload:F2}, upload ratio {bestTcp / bestReply:F2} (to the reply), {bestTcp / bestWritten:F2} (to the last chunk written); target >= {Target}: {(worst >= Target ? "met" : "MISSED")}"));
        return 0;
    }

    private static string ChunkDescription(int downloadChunkBytes, int uploadChunkBytes) =>
        string.Create(CultureInfo.InvariantCulture, $"download chunks of {downloadChunkBytes >> 10} KiB, upload chunks of {uploadChunkBytes >> 10} KiB");

    private static FederationCalls.UploadResult Require(FederationCalls.UploadResult result) =>
        result.Reply.Accepted ? result : throw new InvalidOperationException("Upload not accepted: " + result.Reply.Message);

    private static string Rate(double bytes, double seconds) =>
        string.Create(CultureInfo.InvariantCulture, $"{bytes / (1 << 20) / seconds:F0} MiB/s");

    /// <summary>Copies <paramref name="payload"/> over a loopback TCP connection in 1 MiB writes; returns the seconds until the receiver has every byte.</summary>
    private static async Task<double> TcpCopyAsync(byte[] payload, byte[] destination)
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var accepting = listener.AcceptSocketAsync();
        using var sender = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await sender.ConnectAsync((IPEndPoint)listener.LocalEndpoint);
        using var receiver = await accepting;
        var clock = Stopwatch.StartNew();
        var receiving = Task.Run(async () =>
        {
            int got = 0;
            while (got < payload.Length)
            {
                int n = await receiver.ReceiveAsync(destination.AsMemory(got, payload.Length - got), SocketFlags.None);
                if (n == 0)
                {
                    throw new IOException("The TCP sender closed early.");
                }

                got += n;
            }
        });
        for (int offset = 0; offset < payload.Length; offset += FederationCalls.ChunkBytes)
        {
            int length = Math.Min(FederationCalls.ChunkBytes, payload.Length - offset);
            int sent = 0;
            while (sent < length)
            {
                sent += await sender.SendAsync(payload.AsMemory(offset + sent, length - sent), SocketFlags.None);
            }
        }

        await receiving;
        double seconds = clock.Elapsed.TotalSeconds;
        listener.Stop();
        return seconds;
    }

    /// <summary>
    /// Where the coordinator's time goes besides the transport, measured here on the same payload (after the coordinator
    /// has stopped): the SHA-256 that DownloadModel computes on every call, and the upload's validation and fold.
    /// </summary>
    private static void Profile(byte[] payload)
    {
        Console.WriteLine();
        Console.WriteLine("Profile of the coordinator's non-transport work on the same payload (same process, coordinator stopped):");
        var clock = Stopwatch.StartNew();
        string digest = Sha256Hex.Compute(payload);
        double sha = clock.Elapsed.TotalSeconds;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  SHA-256 of the payload: {sha:F3} s. The coordinator hashes a payload once: downloads serve the stored digest, uploads are hashed while they arrive (ChunkReassembler) and the validator trusts that check."));
        clock.Restart();
        var file = SafeTensors.Parse(payload, "profile");
        double parse = clock.Elapsed.TotalSeconds;
        clock.Restart();
        long nonFinite = file.Tensors.Sum(NonFiniteScan.Count);
        double scan = clock.Elapsed.TotalSeconds;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  Validation steps: SafeTensors.Parse {parse:F3} s, NonFiniteScan over the raw bytes {scan:F3} s ({nonFinite} found); no tensor is made."));

        // The fold two ways, alternating, on the same payload: through tensors (the coordinator's route until
        // 2026-12-07: a tensor per entry, widened to a float64 copy, added into float64 tensors) and straight from the
        // bytes (RunningWeightedSum.Add of the entries: one vectorised pass into host float64 arrays).
        var viaTensors = new List<double>();
        var fromBytes = new List<double>();
        Dictionary<string, Tensor>? tensorSum = null;
        using (var byteSum = new RunningWeightedSum())
        using (no_grad())
        {
            for (int i = 0; i < 3; i++)
            {
                clock.Restart();
                foreach (var entry in file.Tensors)
                {
                    using var scope = NewDisposeScope();
                    var wide = TensorConversion.ToTensor(entry).to_type(ScalarType.Float64);
                    if (tensorSum is null || !tensorSum.TryGetValue(entry.Name, out var sum))
                    {
                        tensorSum ??= new Dictionary<string, Tensor>(StringComparer.Ordinal);
                        tensorSum[entry.Name] = wide.mul(1000.0).DetachFromDisposeScope();
                    }
                    else
                    {
                        sum.add_(wide, alpha: 1000.0);
                    }
                }

                viaTensors.Add(clock.Elapsed.TotalSeconds);
                clock.Restart();
                byteSum.Add(file.Tensors, 1000.0);
                fromBytes.Add(clock.Elapsed.TotalSeconds);
            }
        }

        StateDicts.DisposeAll(tensorSum is null ? [] : [tensorSum]);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  Fold of one update (3 alternating, the first creates the sums): via tensors {string.Join(" / ", viaTensors.Select(t => t.ToString("F3", CultureInfo.InvariantCulture)))} s, from the bytes {string.Join(" / ", fromBytes.Select(t => t.ToString("F3", CultureInfo.InvariantCulture)))} s; later folds, best: from the bytes / via tensors = {fromBytes.Skip(1).Min() / viaTensors.Skip(1).Min():F3}."));
        using var model = ModelFile.FromSafeTensors(file, "profile");
        Dictionary<string, Tensor> reference;
        using (no_grad())
        {
            reference = model.state_dict().ToDictionary(p => p.Key, p => p.Value.detach().clone().DetachFromDisposeScope(), StringComparer.Ordinal);
        }

        try
        {
            var validator = new UpdateValidator(reference, model.RepairPoints);
            using var aggregator = new RoundAggregator(1, reference, PermutationSpecs.For(model), model.RepairPoints, StrategySpec.Parse("fedavg"));
            for (int i = 0; i < 2; i++)
            {
                string id = string.Create(CultureInfo.InvariantCulture, $"profile-{i}");
                clock.Restart();
                // As the coordinator calls it: the reassembler has checked the digest while the bytes arrived.
                var result = validator.Validate(new UpdateSubmission(id, 1, 1000, digest, payload) { DigestVerified = true });
                double validate = clock.Elapsed.TotalSeconds;
                using var update = result.Update ?? throw new InvalidOperationException("Profile update refused: " + result.Refusal?.Message);
                clock.Restart();
                aggregator.Fold(update);
                double fold = clock.Elapsed.TotalSeconds;
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"  update {i + 1}: UpdateValidator.Validate {validate:F3} s (parse, layout, finite check), RoundAggregator.Fold {fold:F3} s ({(i == 0 ? "first fold: creates the float64 running sum" : "later fold: adds to it")})"));
            }
        }
        finally
        {
            StateDicts.DisposeAll([reference]);
        }
    }
}
