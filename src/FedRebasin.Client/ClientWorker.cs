using System.Globalization;
using FedRebasin.Contracts;
using FedRebasin.Contracts.V1;
using FedRebasin.Data;
using FedRebasin.Merging.Repair;
using FedRebasin.Models;
using FedRebasin.Models.Permutations;
using FedRebasin.Tensors;
using FedRebasin.Torch;
using FedRebasin.Training;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using static TorchSharp.torch;
using ProtoMoments = FedRebasin.Contracts.V1.ChannelMoments;

namespace FedRebasin.Client;

/// <summary>
/// One federated client: registers, polls for tasks, trains the global model on its own split and uploads the
/// result, until the coordinator says the run is done. Every call has a deadline and runs through <see cref="ClientResilience"/>.
/// </summary>
public sealed partial class ClientWorker
{
    /// <summary>Size of the chunks an upload is sent in (under the coordinator's MaxUploadChunkBytes, 1 MiB by default).</summary>
    public const int UploadChunkBytes = ModelChunker.DefaultUploadChunkBytes;

    private readonly ClientOptions _options;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger _logger;
    private readonly ClientResilience _resilience;
    /// <summary>Batch size of moment and statistics passes (TorchSharp keeps a batch's intermediates until its scope ends).</summary>
    private const int StatisticsBatchSize = 200;

    private readonly Metadata _headers = [];
    private readonly ClientMetrics? _metrics;
    private readonly Lock _heartbeatGate = new();
    private (long Round, ClientState State, CancellationTokenSource Task)? _current;
    private TimeSpan _heartbeatInterval = TimeSpan.FromSeconds(10);
    private string _sessionId = string.Empty;

    public ClientWorker(ClientOptions options, TimeProvider? timeProvider = null, ILogger<ClientWorker>? logger = null, ClientMetrics? metrics = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options;
        _timeProvider = timeProvider ?? TimeProvider.System;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _metrics = metrics;
        _resilience = new ClientResilience(options.Retry, _timeProvider, _logger, metrics);
        if (options.Token is not null)
        {
            _headers.Add("authorization", "Bearer " + options.Token);
        }
    }

    /// <summary>
    /// Runs until the coordinator answers Done; returns the final round. Once registered, a coordinator that stops
    /// answering (restarting, network down) is retried for up to <see cref="ClientOptions.ReconnectTimeout"/> before the
    /// worker gives up; one never reached fails as soon as the retries of the first call are spent.
    /// </summary>
    public async Task<long> RunAsync(CancellationToken cancellationToken)
    {
        var dataset = _options.Dataset ?? DatasetCatalog.Load(_options.DatasetName, DataSplit.Train, _options.DataDirectory);
        var spec = PartitionSpec.Parse(_options.Partition);
        int[] indices = Partitioner.Partition(dataset, _options.Clients, spec, _options.PartitionSeed)[_options.ClientIndex];
        var device = TorchDevices.Resolve(_options.Device);
        using var data = TensorData.From(dataset, indices, device);
        using var channel = ClientChannel.Create(_options);
        var client = new Contracts.V1.Federation.FederationClient(channel);
        string description = string.Create(CultureInfo.InvariantCulture, $"{dataset.Name} {spec} split {_options.ClientIndex}/{_options.Clients} seed {_options.PartitionSeed}");
        using var stopHeartbeats = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var heartbeats = Task.Run(() => HeartbeatLoopAsync(client, stopHeartbeats.Token), CancellationToken.None);
        try
        {
            return await WorkAsync(client, data, device, description, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            await stopHeartbeats.CancelAsync().ConfigureAwait(false);
            await heartbeats.ConfigureAwait(false);
        }
    }

    private async Task<long> WorkAsync(Contracts.V1.Federation.FederationClient client, TensorData data, Device device, string description, CancellationToken cancellationToken)
    {
        // Null until the coordinator answered once: a coordinator never reached is a configuration error, not a restart.
        DateTimeOffset? lastContact = null;
        bool registered = false;
        long lastRound = 0;
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            try
            {
                if (!registered)
                {
                    if (!await RegisterAsync(client, data.Count, description, cancellationToken).ConfigureAwait(false))
                    {
                        return lastRound;
                    }

                    registered = true;
                    lastContact = _timeProvider.GetUtcNow();
                    // A new session may belong to a restarted coordinator that redoes the round this client last worked on.
                    lastRound = 0;
                }

                var task = await _resilience.ExecuteAsync("GetTask", _options.PollTimeout, async ct =>
                    await client.GetTaskAsync(
                        new GetTaskRequest { ClientId = _options.ClientId, SessionId = _sessionId, LastRound = lastRound },
                        _headers, Deadline(_options.PollTimeout), ct).ConfigureAwait(false),
                    cancellationToken).ConfigureAwait(false);
                lastContact = _timeProvider.GetUtcNow();
                switch (task.TaskCase)
                {
                    case TaskReply.TaskOneofCase.Done:
                        LogDone(_logger, _options.ClientId, task.Done.FinalRound);
                        return task.Done.FinalRound;
                    case TaskReply.TaskOneofCase.Wait:
                        var delay = task.Wait.RetryAfter?.ToTimeSpan() ?? TimeSpan.Zero;
                        if (delay > TimeSpan.Zero)
                        {
                            await Task.Delay(delay, _timeProvider, cancellationToken).ConfigureAwait(false);
                        }

                        break;
                    case TaskReply.TaskOneofCase.Train:
                        if (await RunTaskAsync(task.Train.Round, ClientState.Training, ct => RunTrainTaskAsync(client, task.Train, data, device, ct), cancellationToken).ConfigureAwait(false))
                        {
                            lastRound = task.Train.Round;
                        }

                        break;
                    case TaskReply.TaskOneofCase.Statistics:
                        await RunTaskAsync(task.Statistics.Round, ClientState.ComputingStatistics, ct => RunStatisticsTaskAsync(client, task.Statistics, data, device, ct), cancellationToken).ConfigureAwait(false);
                        break;
                    default:
                        LogUnsupportedTask(_logger, _options.ClientId, task.TaskCase.ToString());
                        await Task.Delay(TimeSpan.FromSeconds(1), _timeProvider, cancellationToken).ConfigureAwait(false);
                        break;
                }
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.FailedPrecondition)
            {
                // Stale session (e.g. the coordinator restarted) or a round that moved on: register again, then poll.
                LogReregister(_logger, _options.ClientId, e.Status.Detail);
                registered = false;
            }
            catch (Exception e) when (!cancellationToken.IsCancellationRequested && RpcFailurePolicy.Classify(e) == RetryDecision.Transient)
            {
                // The pipeline's retries are spent: the coordinator is down or restarting. Keep trying for a while.
                if (lastContact is not { } contact || _timeProvider.GetUtcNow() - contact > _options.ReconnectTimeout)
                {
                    throw;
                }

                var offline = _timeProvider.GetUtcNow() - contact;

                LogCoordinatorUnreachable(_logger, _options.ClientId, offline, e.Message);
                await Task.Delay(_options.Retry.MaxDelay, _timeProvider, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// Runs one task with heartbeats reporting it; the coordinator can call it off (the heartbeat answers
    /// continue = false), or it is refused as closed. Returns whether it completed.
    /// </summary>
    private async Task<bool> RunTaskAsync(long round, ClientState state, Func<CancellationToken, Task> work, CancellationToken cancellationToken)
    {
        using var task = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        lock (_heartbeatGate)
        {
            _current = (round, state, task);
        }

        try
        {
            await work(task.Token).ConfigureAwait(false);
            return true;
        }
        catch (Exception e) when (IsCalledOff(e, task.Token, cancellationToken))
        {
            LogTaskCalledOff(_logger, _options.ClientId, round);
            return false;
        }
        catch (RpcException e) when (e.StatusCode is StatusCode.Aborted or StatusCode.NotFound or StatusCode.InvalidArgument)
        {
            // The round closed, the version is gone, or this result was refused (e.g. local training diverged to NaN):
            // drop the task and poll again; the next round starts from a fresh global model.
            LogTaskAbandoned(_logger, _options.ClientId, round, e.StatusCode, e.Status.Detail);
            return false;
        }
        finally
        {
            lock (_heartbeatGate)
            {
                _current = null;
            }
        }
    }

    /// <summary>
    /// Whether <paramref name="error"/> ended a task because the task was called off (its token cancelled, the worker's
    /// not): an OperationCanceledException, or gRPC's CANCELLED, which Grpc.Net.Client reports for a call cancelled
    /// through its token, e.g. an upload still waiting for its reply when a heartbeat says the round has closed.
    /// </summary>
    internal static bool IsCalledOff(Exception error, CancellationToken task, CancellationToken worker) =>
        !worker.IsCancellationRequested
        && (error is OperationCanceledException || (error is RpcException { StatusCode: StatusCode.Cancelled } && task.IsCancellationRequested));

    /// <summary>Sends Heartbeat every interval the coordinator asked for; cancels the current task when told to stop.</summary>
    private async Task HeartbeatLoopAsync(Contracts.V1.Federation.FederationClient client, CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(_heartbeatInterval, _timeProvider, cancellationToken).ConfigureAwait(false);
                if (string.IsNullOrEmpty(_sessionId))
                {
                    continue;
                }

                (long Round, ClientState State, CancellationTokenSource Task)? current;
                lock (_heartbeatGate)
                {
                    current = _current;
                }

                // One attempt, no retries: the next beat follows anyway.
                var reply = await client.HeartbeatAsync(
                    new HeartbeatRequest { ClientId = _options.ClientId, SessionId = _sessionId, Round = current?.Round ?? 0, State = current?.State ?? ClientState.Idle },
                    _headers, Deadline(_options.CallTimeout), cancellationToken).ConfigureAwait(false);
                if (!reply.Continue && current is { } working)
                {
                    await working.Task.CancelAsync().ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (ObjectDisposedException)
            {
                // The task ended while the beat was on its way.
            }
            catch (RpcException e)
            {
                LogHeartbeatFailed(_logger, _options.ClientId, e.StatusCode);
            }
            catch (Exception e)
            {
                // Anything else (a transport fault surfacing outside RpcException) must not end the loop: a worker
                // without heartbeats looks dead to the coordinator, which drops it from the round.
                LogHeartbeatError(_logger, _options.ClientId, e.GetType().Name, e.Message);
            }
        }
    }

    /// <summary>Registers (again); false when the run is already finished.</summary>
    private async Task<bool> RegisterAsync(Contracts.V1.Federation.FederationClient client, int samples, string description, CancellationToken cancellationToken)
    {
        try
        {
            var reply = await _resilience.ExecuteAsync("Register", _options.CallTimeout, async ct =>
                await client.RegisterAsync(
                    new RegisterRequest
                    {
                        ClientId = _options.ClientId,
                        SampleCount = samples,
                        PartitionDescription = description.Length > 256 ? description[..256] : description,
                        Capabilities = new ClientCapabilities { Device = _options.Device },
                    },
                    _headers, Deadline(_options.CallTimeout), ct).ConfigureAwait(false),
                cancellationToken).ConfigureAwait(false);
            _sessionId = reply.SessionId;
            if (reply.HeartbeatInterval?.ToTimeSpan() is { } interval && interval > TimeSpan.Zero)
            {
                _heartbeatInterval = interval;
            }

            LogRegistered(_logger, _options.ClientId, reply.RunId, samples);
            return true;
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.FailedPrecondition)
        {
            LogRunFinished(_logger, _options.ClientId, e.Status.Detail);
            return false;
        }
    }

    private async Task RunTrainTaskAsync(Contracts.V1.Federation.FederationClient client, TrainTask task, TensorData data, Device device, CancellationToken cancellationToken)
    {
        byte[] global = await DownloadAsync(client, task.ModelVersion, task.ModelSha256, cancellationToken).ConfigureAwait(false);
        var trainingOptions = ToTrainingOptions(task.HyperParameters);
        int momentExamples = task.CollectMoments ? Math.Min(_options.StatisticsExamples, data.Count) : 0;
        var (payload, report, moments) = await ComputeAsync(() => Train(global, task.ModelVersion, data, device, trainingOptions, momentExamples, cancellationToken), cancellationToken).ConfigureAwait(false);
        var last = report.Epochs[^1];
        var header = new UpdateHeader
        {
            ClientId = _options.ClientId,
            SessionId = _sessionId,
            Round = task.Round,
            ModelVersion = task.ModelVersion,
            SampleCount = data.Count,
            Sha256 = Sha256Hex.Compute(payload),
            TotalBytes = payload.Length,
            Metrics =
            {
                ["train_loss"] = last.Loss,
                ["train_accuracy"] = last.Accuracy,
                ["seconds"] = report.Seconds,
                ["examples_per_second"] = report.SamplesPerSecond,
            },
        };
        header.Moments.AddRange(moments);
        _options.ModelTrained?.Invoke(new TrainedModel(_options.ClientId, _options.ClientIndex, task.Round, data.Count, payload));
        int attempts = 0;
        var reply = await _resilience.ExecuteAsync("SubmitUpdate", _options.CallTimeout, ct => UploadAsync(client, header, payload, ++attempts, ct), cancellationToken).ConfigureAwait(false);
        _metrics?.Trained(report.Seconds, last.Loss, report.SamplesPerSecond, payload.Length);
        LogUploaded(_logger, _options.ClientId, task.Round, payload.Length, reply.Accepted, last.Loss);
    }

    /// <summary>
    /// Measures the merged model on local data as the statistics task asks (REPAIR's one-pass batch-statistics
    /// estimation toward the task's targets) and answers with the per-channel sums; no data or activations leave.
    /// </summary>
    private async Task RunStatisticsTaskAsync(Contracts.V1.Federation.FederationClient client, StatisticsTask task, TensorData data, Device device, CancellationToken cancellationToken)
    {
        byte[] merged = await DownloadAsync(client, task.ModelVersion, task.ModelSha256, cancellationToken).ConfigureAwait(false);
        var mode = RepairModes.Parse(task.RepairMode);
        var targets = new RepairTargets(
            [.. task.Targets.Select(t => (IReadOnlyList<double>)[.. t.Means])],
            [.. task.Targets.Select(t => (IReadOnlyList<double>)[.. t.Stds])]);
        int examples = Math.Min(_options.StatisticsExamples, data.Count);
        var moments = await ComputeAsync(() => MeasureStatistics(merged, task.ModelVersion, data, device, targets, mode, examples), cancellationToken).ConfigureAwait(false);
        var reply = new StatisticsReply { ClientId = _options.ClientId, SessionId = _sessionId, Round = task.Round, ModelVersion = task.ModelVersion };
        reply.Moments.AddRange(moments);
        try
        {
            await _resilience.ExecuteAsync("SubmitStatistics", _options.CallTimeout, async ct =>
                await client.SubmitStatisticsAsync(reply, _headers, Deadline(_options.CallTimeout), ct).ConfigureAwait(false),
                cancellationToken).ConfigureAwait(false);
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.AlreadyExists)
        {
            // An earlier attempt landed.
        }

        LogStatisticsSent(_logger, _options.ClientId, task.Round, examples);
    }

    /// <summary>
    /// Runs tensor work on the thread pool with <see cref="ClientOptions.TorchThreads"/> intra-op threads, inside one of
    /// <see cref="ClientOptions.ComputeSlots"/> when set.
    /// </summary>
    private async Task<T> ComputeAsync<T>(Func<T> work, CancellationToken cancellationToken)
    {
        var slots = _options.ComputeSlots;
        if (slots is not null)
        {
            await slots.WaitAsync(cancellationToken).ConfigureAwait(false);
        }

        try
        {
            int threads = _options.TorchThreads;
            return await Task.Run(() =>
            {
                TorchThreads.UseOnThisThread(threads);
                return work();
            }, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            slots?.Release();
        }
    }

    private static ProtoMoments[] MeasureStatistics(byte[] merged, string version, TensorData data, Device device, RepairTargets targets, RepairMode mode, int examples)
    {
        using var scope = NewDisposeScope();
        using var model = ModelFile.FromSafeTensors(SafeTensors.Parse(merged, version), version, device);
        var sums = Repairer.MeasureWithBatchCorrections(model, targets, mode, RepairCorrections.DefaultEpsilon, () => Batches(data, examples));
        return ToProto(model.RepairPoints, sums);
    }

    private static ProtoMoments[] ToProto(IReadOnlyList<RepairPoint> points, IReadOnlyList<FedRebasin.Models.Permutations.ChannelMoments> moments)
    {
        var result = new ProtoMoments[points.Count];
        for (int i = 0; i < points.Count; i++)
        {
            result[i] = new ProtoMoments { Point = points[i].Name, Count = (long)moments[i].Count };
            result[i].Sum.AddRange(moments[i].Sum);
            result[i].SumSquares.AddRange(moments[i].SumSquares);
        }

        return result;
    }

    /// <summary>The first <paramref name="examples"/> local examples in batches of <see cref="StatisticsBatchSize"/> (views, not copies).</summary>
    private static IEnumerable<Tensor> Batches(TensorData data, int examples)
    {
        for (int start = 0; start < examples; start += StatisticsBatchSize)
        {
            yield return data.Features.narrow(0, start, Math.Min(StatisticsBatchSize, examples - start));
        }
    }

    /// <summary>Downloads a model version with retries; a retry after a broken stream resumes at the bytes already held.</summary>
    private async Task<byte[]> DownloadAsync(Contracts.V1.Federation.FederationClient client, string modelVersion, string sha256, CancellationToken cancellationToken)
    {
        using var download = new ResumableDownload();
        return await _resilience.ExecuteAsync("DownloadModel", _options.CallTimeout, async ct =>
        {
            using var call = client.DownloadModel(
                new DownloadModelRequest { ClientId = _options.ClientId, SessionId = _sessionId, ModelVersion = modelVersion, Offset = download.Offset },
                _headers, Deadline(_options.CallTimeout), ct);
            await foreach (var chunk in call.ResponseStream.ReadAllAsync(ct).ConfigureAwait(false))
            {
                download.Add(chunk);
            }

            // Checks offsets, total size and the digest of the last chunk against the task's model_sha256.
            return download.Complete(sha256);
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>One whole upload attempt: header, then the payload in chunks of <see cref="UploadChunkBytes"/>.</summary>
    private async Task<SubmitReply> UploadAsync(Contracts.V1.Federation.FederationClient client, UpdateHeader header, byte[] payload, int attempt, CancellationToken cancellationToken)
    {
        try
        {
            using var call = client.SubmitUpdate(_headers, Deadline(_options.CallTimeout), cancellationToken);
            try
            {
                await call.RequestStream.WriteAsync(new UpdateMessage { Header = header }, cancellationToken).ConfigureAwait(false);
                for (int offset = 0; offset < payload.Length; offset += UploadChunkBytes)
                {
                    int length = Math.Min(UploadChunkBytes, payload.Length - offset);
                    // Wrapped, not copied: the payload does not change while the call (or a retry) reads it.
                    await call.RequestStream.WriteAsync(new UpdateMessage { Chunk = UnsafeByteOperations.UnsafeWrap(payload.AsMemory(offset, length)) }, cancellationToken).ConfigureAwait(false);
                }

                await call.RequestStream.CompleteAsync().ConfigureAwait(false);
            }
            catch (RpcException)
            {
                // The server may refuse on the header and end the call while chunks are still being written; the
                // write then fails with a generic status and the response carries the real one.
            }

            return await call.ResponseAsync.ConfigureAwait(false);
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.AlreadyExists)
        {
            // Idempotent by (client_id, round): an earlier attempt (or an earlier run of this worker) landed.
            LogAlreadyAccepted(_logger, _options.ClientId, header.Round, attempt);
            return new SubmitReply { Accepted = true, Message = "already accepted" };
        }
    }

    /// <summary>
    /// Loads the global model, trains it on the local split and returns the serialized result, and, when
    /// <paramref name="momentExamples"/> is positive, the trained model's channel moments on that many local examples
    /// (the repair targets' ingredients). Synchronous tensor work.
    /// </summary>
    private static (byte[] Payload, TrainingReport Report, ProtoMoments[] Moments) Train(byte[] global, string version, TensorData data, Device device, TrainingOptions options, int momentExamples, CancellationToken cancellationToken)
    {
        using var scope = NewDisposeScope();
        using var model = ModelFile.FromSafeTensors(SafeTensors.Parse(global, version), version, device);
        var report = Trainer.Train(model, data, options, cancellationToken: cancellationToken);
        byte[] payload = ModelFile.ToBytes(model);
        var moments = momentExamples > 0 ? ToProto(model.RepairPoints, MomentCollector.Collect(model, Batches(data, momentExamples))) : [];
        return (payload, report, moments);
    }

    internal static TrainingOptions ToTrainingOptions(HyperParameters hp)
    {
        ArgumentNullException.ThrowIfNull(hp);
        var options = new TrainingOptions
        {
            Optimizer = TrainingOptions.ParseOptimizer(hp.Optimizer),
            LearningRate = hp.LearningRate,
            Momentum = hp.Momentum,
            WeightDecay = hp.WeightDecay,
            BatchSize = hp.BatchSize,
            Epochs = hp.LocalEpochs,
            Seed = hp.Seed,
        };
        options.Validate();
        return options;
    }

    private DateTime Deadline(TimeSpan timeout) => _timeProvider.GetUtcNow().UtcDateTime + timeout;

    [LoggerMessage(Level = LogLevel.Information, Message = "Client {ClientId} registered for run {RunId} with {Samples} samples")]
    private static partial void LogRegistered(ILogger logger, string clientId, string runId, int samples);

    [LoggerMessage(Level = LogLevel.Information, Message = "Client {ClientId}: the run is finished ({Detail})")]
    private static partial void LogRunFinished(ILogger logger, string clientId, string detail);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Client {ClientId}: session refused ({Detail}); registering again")]
    private static partial void LogReregister(ILogger logger, string clientId, string detail);

    [LoggerMessage(Level = LogLevel.Information, Message = "Client {ClientId}: done after round {Round}")]
    private static partial void LogDone(ILogger logger, string clientId, long round);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Client {ClientId}: task for round {Round} abandoned ({Code}: {Detail})")]
    private static partial void LogTaskAbandoned(ILogger logger, string clientId, long round, StatusCode code, string detail);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Client {ClientId}: coordinator unreachable for {Offline} ({Reason}); trying again")]
    private static partial void LogCoordinatorUnreachable(ILogger logger, string clientId, TimeSpan offline, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Client {ClientId}: the coordinator called off the task of round {Round}")]
    private static partial void LogTaskCalledOff(ILogger logger, string clientId, long round);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Client {ClientId}: heartbeat failed ({Code})")]
    private static partial void LogHeartbeatFailed(ILogger logger, string clientId, StatusCode code);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Client {ClientId}: heartbeat failed unexpectedly ({Type}: {Detail}); beating on")]
    private static partial void LogHeartbeatError(ILogger logger, string clientId, string type, string detail);

    [LoggerMessage(Level = LogLevel.Information, Message = "Client {ClientId}: statistics for round {Round} sent ({Examples} examples)")]
    private static partial void LogStatisticsSent(ILogger logger, string clientId, long round, int examples);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Client {ClientId}: task {Kind} is not supported; polling again")]
    private static partial void LogUnsupportedTask(ILogger logger, string clientId, string kind);

    [LoggerMessage(Level = LogLevel.Information, Message = "Client {ClientId}: update for round {Round} uploaded ({Bytes} bytes, accepted {Accepted}, loss {Loss})")]
    private static partial void LogUploaded(ILogger logger, string clientId, long round, int bytes, bool accepted, double loss);

    [LoggerMessage(Level = LogLevel.Information, Message = "Client {ClientId}: update for round {Round} already accepted (attempt {Attempt})")]
    private static partial void LogAlreadyAccepted(ILogger logger, string clientId, long round, int attempt);
}
