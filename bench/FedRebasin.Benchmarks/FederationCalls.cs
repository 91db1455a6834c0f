using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Reflection;
using FedRebasin.Contracts;
using FedRebasin.Contracts.V1;
using FedRebasin.Coordinator;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using FederationClient = FedRebasin.Contracts.V1.Federation.FederationClient;

namespace FedRebasin.Benchmarks;

/// <summary>
/// Raw gRPC client calls of the federation protocol (docs/PROTOCOL.md) as the benchmarks use them: no retries, no
/// resilience pipeline, every call with a deadline. Plus an in-process coordinator on Kestrel (127.0.0.1:0, HTTP/2
/// cleartext), set up like tests/Shared/LoopbackCoordinator.cs.
/// </summary>
internal static class FederationCalls
{
    /// <summary>Upload chunk size: 64 KiB, what the client worker sends.</summary>
    public const int ChunkBytes = ModelChunker.DefaultUploadChunkBytes;

    /// <summary>One client: its own channel (so its own HTTP/2 connection, as separate machines would have) and id.</summary>
    internal sealed class Client : IDisposable
    {
        private readonly GrpcChannel _channel;

        /// <param name="address">The coordinator.</param>
        /// <param name="id">The client id.</param>
        /// <param name="streamWindowBytes">HTTP/2 receive window per stream to announce, or 0 for .NET's default (64 KiB, grown dynamically).</param>
        public Client(Uri address, string id, int streamWindowBytes = 0)
        {
            _channel = streamWindowBytes > 0
                ? GrpcChannel.ForAddress(address, new GrpcChannelOptions
                {
                    HttpHandler = new SocketsHttpHandler { InitialHttp2StreamWindowSize = streamWindowBytes, EnableMultipleHttp2Connections = true },
                })
                : GrpcChannel.ForAddress(address);
            Calls = new FederationClient(_channel);
            Id = id;
        }

        public FederationClient Calls { get; }

        public string Id { get; }

        public string Session { get; set; } = string.Empty;

        /// <summary>The heartbeat interval the coordinator asked for in RegisterReply.</summary>
        public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromSeconds(10);

        public void Dispose() => _channel.Dispose();
    }

    public static async Task RegisterAsync(Client client, long sampleCount, CancellationToken cancellationToken)
    {
        var reply = await client.Calls.RegisterAsync(
            new RegisterRequest { ClientId = client.Id, SampleCount = sampleCount },
            deadline: DateTime.UtcNow.AddMinutes(1),
            cancellationToken: cancellationToken);
        client.Session = reply.SessionId;
        if (reply.HeartbeatInterval is { } interval)
        {
            client.HeartbeatInterval = interval.ToTimeSpan();
        }
    }

    /// <summary>
    /// Sends Heartbeat every interval until cancelled (the coordinator drops a client that makes no call for a few
    /// intervals, and an upload waiting for a slot does not count as a call). Failures are ignored.
    /// </summary>
    public static async Task HeartbeatLoopAsync(Client client, CancellationToken cancellationToken)
    {
        try
        {
            while (true)
            {
                await Task.Delay(client.HeartbeatInterval, cancellationToken);
                try
                {
                    await client.Calls.HeartbeatAsync(
                        new HeartbeatRequest { ClientId = client.Id, SessionId = client.Session, State = ClientState.Idle },
                        deadline: DateTime.UtcNow.AddSeconds(10),
                        cancellationToken: cancellationToken);
                }
                catch (RpcException e) when (e.StatusCode != StatusCode.Cancelled)
                {
                    // A missed heartbeat is the coordinator's business; the next one follows.
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Stopped.
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.Cancelled)
        {
            // Stopped during a call.
        }
    }

    /// <summary>Long-polls GetTask until a TrainTask for a round after <paramref name="lastRound"/> arrives; null when the run is done.</summary>
    /// <param name="onRefused">Called for each RESOURCE_EXHAUSTED (request-rate limit), after which the poll is retried.</param>
    public static async Task<TrainTask?> NextTrainTaskAsync(Client client, long lastRound, CancellationToken cancellationToken, Action? onRefused = null)
    {
        while (true)
        {
            TaskReply reply;
            try
            {
                reply = await client.Calls.GetTaskAsync(
                    new GetTaskRequest { ClientId = client.Id, SessionId = client.Session, LastRound = lastRound },
                    deadline: DateTime.UtcNow.AddMinutes(2),
                    cancellationToken: cancellationToken);
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.ResourceExhausted && onRefused is not null)
            {
                onRefused();
                await Task.Delay(20, cancellationToken);
                continue;
            }

            switch (reply.TaskCase)
            {
                case TaskReply.TaskOneofCase.Train:
                    return reply.Train;
                case TaskReply.TaskOneofCase.Done:
                    return null;
                case TaskReply.TaskOneofCase.Wait:
                    continue;
                default:
                    throw new InvalidOperationException($"Unexpected task {reply.TaskCase} for {client.Id}.");
            }
        }
    }

    /// <summary>
    /// Downloads <paramref name="task"/>'s model into <paramref name="destination"/> (at least <c>model_bytes</c> long),
    /// copying each chunk at its offset, as a reassembler does; the digest is not checked here (see <see cref="CheckDigest"/>).
    /// </summary>
    /// <returns>Seconds from the start of the call until the first chunk arrived.</returns>
    public static async Task<double> DownloadAsync(Client client, TrainTask task, byte[] destination, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        double first = double.NaN;
        using var call = client.Calls.DownloadModel(
            new DownloadModelRequest { ClientId = client.Id, SessionId = client.Session, ModelVersion = task.ModelVersion },
            deadline: DateTime.UtcNow.AddMinutes(10),
            cancellationToken: cancellationToken);
        long received = 0;
        await foreach (var chunk in call.ResponseStream.ReadAllAsync(cancellationToken))
        {
            if (chunk.Offset != received || chunk.Offset + chunk.Data.Length > destination.Length)
            {
                throw new InvalidOperationException(string.Create(CultureInfo.InvariantCulture, $"Chunk at offset {chunk.Offset} after {received} bytes."));
            }

            if (received == 0)
            {
                first = clock.Elapsed.TotalSeconds;
            }

            chunk.Data.Span.CopyTo(destination.AsSpan((int)chunk.Offset));
            received += chunk.Data.Length;
        }

        if (received != task.ModelBytes)
        {
            throw new InvalidOperationException(string.Create(CultureInfo.InvariantCulture, $"Received {received} of {task.ModelBytes} bytes."));
        }

        return first;
    }

    /// <summary>Throws unless the first <c>model_bytes</c> of <paramref name="payload"/> hash to the task's digest.</summary>
    public static void CheckDigest(TrainTask task, ReadOnlySpan<byte> payload)
    {
        string actual = Sha256Hex.Compute(payload[..(int)task.ModelBytes]);
        if (!Sha256Hex.Matches(task.ModelSha256, actual))
        {
            throw new InvalidOperationException($"Downloaded model hashes to {actual}, the task announced {task.ModelSha256}.");
        }
    }

    /// <summary>The result of one upload with its two times, both from the start of the call.</summary>
    /// <param name="Reply">The coordinator's reply.</param>
    /// <param name="WrittenSeconds">Until the last chunk was written and the request stream completed.</param>
    /// <param name="ReplySeconds">Until the reply arrived: the coordinator answers after it has validated and folded the
    /// update, so this is more than transport.</param>
    public sealed record UploadResult(SubmitReply Reply, double WrittenSeconds, double ReplySeconds);

    /// <summary>
    /// Uploads <paramref name="payload"/> as the update of <paramref name="task"/>: the header, then chunks of
    /// <paramref name="chunkBytes"/> (default <see cref="ChunkBytes"/>) wrapping the payload without copies. The digest
    /// announced is the task's (the payload is the downloaded model, unchanged).
    /// </summary>
    public static async Task<UploadResult> UploadAsync(
        Client client, TrainTask task, ReadOnlyMemory<byte> payload, long sampleCount, CancellationToken cancellationToken, int chunkBytes = ChunkBytes)
    {
        var clock = Stopwatch.StartNew();
        using var call = client.Calls.SubmitUpdate(deadline: DateTime.UtcNow.AddMinutes(15), cancellationToken: cancellationToken);
        var header = new UpdateHeader
        {
            ClientId = client.Id,
            SessionId = client.Session,
            Round = task.Round,
            ModelVersion = task.ModelVersion,
            SampleCount = sampleCount,
            Sha256 = task.ModelSha256,
            TotalBytes = payload.Length,
        };
        double written;
        try
        {
            await call.RequestStream.WriteAsync(new UpdateMessage { Header = header }, cancellationToken);
            for (int offset = 0; offset < payload.Length; offset += chunkBytes)
            {
                var slice = payload.Slice(offset, Math.Min(chunkBytes, payload.Length - offset));
                await call.RequestStream.WriteAsync(new UpdateMessage { Chunk = UnsafeByteOperations.UnsafeWrap(slice) }, cancellationToken);
            }

            await call.RequestStream.CompleteAsync();
            written = clock.Elapsed.TotalSeconds;
        }
        catch (RpcException)
        {
            // The server ended the call early (a refusal); the response carries the real status.
            written = double.NaN;
        }

        var reply = await call.ResponseAsync;
        return new UploadResult(reply, written, clock.Elapsed.TotalSeconds);
    }

    /// <summary>Whether this build's <see cref="CoordinatorOptions"/> has the setting <paramref name="name"/>, and its default.</summary>
    public static (bool Exists, string? Default) CoordinatorSetting(string name)
    {
        var property = typeof(CoordinatorOptions).GetProperty(name, BindingFlags.Public | BindingFlags.Instance);
        return property is null
            ? (false, null)
            : (true, Convert.ToString(property.GetValue(new CoordinatorOptions()), CultureInfo.InvariantCulture));
    }

    /// <summary>A free TCP port on 127.0.0.1 (bound and released at once; another process could take it in between).</summary>
    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    public static string Mib(double bytes) => string.Create(CultureInfo.InvariantCulture, $"{bytes / (1 << 20):F1} MiB");
}
