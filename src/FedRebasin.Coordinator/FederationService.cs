using System.Globalization;
using FedRebasin.Contracts;
using FedRebasin.Contracts.V1;
using FedRebasin.Federation.Rounds;
using FedRebasin.Federation.Updates;
using FedRebasin.Merging.Repair;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.Extensions.Logging;
using ProtoModelSpec = FedRebasin.Contracts.V1.ModelSpec;
using ProtoMoments = FedRebasin.Contracts.V1.ChannelMoments;

namespace FedRebasin.Coordinator;

/// <summary>The gRPC Federation service: a thin adapter over <see cref="CoordinatorRuntime"/>.</summary>
internal sealed partial class FederationService : Contracts.V1.Federation.FederationBase
{
    private readonly CoordinatorRuntime _runtime;
    private readonly ILogger<FederationService> _logger;

    public FederationService(CoordinatorRuntime runtime, ILogger<FederationService> logger)
    {
        _runtime = runtime;
        _logger = logger;
    }

    public override Task<RegisterReply> Register(RegisterRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(context);
        Authorize(context, request.ClientId);
        if (request.SampleCount <= 0)
        {
            throw Fail(StatusCode.InvalidArgument, "sample_count must be positive.");
        }

        if (request.Capabilities is { MaxModelBytes: > 0 } caps && caps.MaxModelBytes < _runtime.Current.Bytes.Length)
        {
            throw Fail(StatusCode.ResourceExhausted, string.Create(CultureInfo.InvariantCulture, $"The model is {_runtime.Current.Bytes.Length} bytes, above the client's limit of {caps.MaxModelBytes}."));
        }

        string session = _runtime.Register(request.ClientId, request.SampleCount);
        LogRegistered(request.ClientId, request.SampleCount);
        var spec = new ProtoModelSpec();
        foreach (var (key, value) in _runtime.ModelSpec.ToMetadata())
        {
            spec.Metadata[key] = value;
        }

        spec.Metadata["merge_strategy"] = _runtime.Strategy.ToString();
        return Task.FromResult(new RegisterReply
        {
            SessionId = session,
            RunId = _runtime.RunId,
            HeartbeatInterval = Duration.FromTimeSpan(_runtime.Options.HeartbeatInterval),
            ModelSpec = spec,
        });
    }

    public override async Task<TaskReply> GetTask(GetTaskRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(context);
        Authorize(context, request.ClientId);
        RequireSession(request.ClientId, request.SessionId);
        using var inFlight = _runtime.TrackCall(request.ClientId);
        var until = _runtime.TimeProvider.GetUtcNow() + _runtime.Options.PollWindow;
        while (true)
        {
            // Take the change signal before reading the state, so a change in between is not missed.
            var changed = _runtime.Changed;
            if (TryGetTask(request.ClientId, request.LastRound) is { } reply)
            {
                return reply;
            }

            var left = until - _runtime.TimeProvider.GetUtcNow();
            if (left <= TimeSpan.Zero)
            {
                // A client that held its poll for the whole window was paced by it and may ask again at once (a pause here
                // would delay its next task by up to the pause); only without a window does it wait a second between polls.
                var retryAfter = _runtime.Options.PollWindow > TimeSpan.Zero ? TimeSpan.Zero : TimeSpan.FromSeconds(1);
                return new TaskReply { Wait = new WaitTask { RetryAfter = Duration.FromTimeSpan(retryAfter) } };
            }

            using var delayCancel = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken);
            var delay = Task.Delay(left, _runtime.TimeProvider, delayCancel.Token);
            await Task.WhenAny(changed, delay).WaitAsync(context.CancellationToken).ConfigureAwait(false);
            await delayCancel.CancelAsync().ConfigureAwait(false);
        }
    }

    public override async Task DownloadModel(DownloadModelRequest request, IServerStreamWriter<ModelChunk> responseStream, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(responseStream);
        ArgumentNullException.ThrowIfNull(context);
        Authorize(context, request.ClientId);
        RequireSession(request.ClientId, request.SessionId);
        using var inFlight = _runtime.TrackCall(request.ClientId);
        var model = _runtime.FindVersion(request.ModelVersion)
            ?? throw Fail(StatusCode.NotFound, $"Model version '{request.ModelVersion}' is not held; the current version is '{_runtime.Current.Version}'.");
        if (request.Offset < 0 || request.Offset > model.Bytes.Length)
        {
            throw Fail(StatusCode.OutOfRange, string.Create(CultureInfo.InvariantCulture, $"Offset {request.Offset} is outside the model's {model.Bytes.Length} bytes."));
        }

        var chunker = new ModelChunker(_runtime.Options.DownloadChunkBytes);
        foreach (var chunk in chunker.Split(model.Bytes, model.Sha256, request.Offset))
        {
            await responseStream.WriteAsync(chunk, context.CancellationToken).ConfigureAwait(false);
            _runtime.Metrics.Transferred("out", chunk.Data.Length);
        }
    }

    public override async Task<SubmitReply> SubmitUpdate(IAsyncStreamReader<UpdateMessage> requestStream, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(requestStream);
        ArgumentNullException.ThrowIfNull(context);
        var token = context.CancellationToken;
        if (!await requestStream.MoveNext(token).ConfigureAwait(false))
        {
            throw Fail(StatusCode.FailedPrecondition, "The upload stream is empty; the first message must be the header.");
        }

        if (requestStream.Current.BodyCase != UpdateMessage.BodyOneofCase.Header)
        {
            throw Fail(StatusCode.FailedPrecondition, "The upload must start with its header, not with a chunk.");
        }

        var header = requestStream.Current.Header;
        Authorize(context, header.ClientId);
        RequireSession(header.ClientId, header.SessionId);
        using var inFlight = _runtime.TrackCall(header.ClientId);
        if (header.Round is < 1 or > int.MaxValue)
        {
            throw Fail(StatusCode.InvalidArgument, string.Create(CultureInfo.InvariantCulture, $"round {header.Round} is out of range."));
        }

        int round = (int)header.Round;
        if (header.TotalBytes <= 0)
        {
            throw Fail(StatusCode.InvalidArgument, "total_bytes must be positive.");
        }

        if (header.TotalBytes > _runtime.Options.MaxModelBytes)
        {
            throw Fail(StatusCode.ResourceExhausted, string.Create(CultureInfo.InvariantCulture, $"total_bytes {header.TotalBytes} is above MaxModelBytes ({_runtime.Options.MaxModelBytes})."));
        }

        if (_runtime.PreCheck(header.ClientId, round, header.ModelVersion) is { } early)
        {
            throw Refuse(early, header.ClientId, round);
        }

        // Only MaxConcurrentUploads payloads are read at a time; the others wait here with their bytes held back by
        // HTTP/2 flow control, so the coordinator's memory does not grow with the number of uploading clients.
        if (!await _runtime.WaitForUploadSlotAsync(token).ConfigureAwait(false))
        {
            throw Fail(StatusCode.ResourceExhausted, string.Create(CultureInfo.InvariantCulture,
                $"Too many concurrent uploads: all {_runtime.Options.MaxConcurrentUploads} slots (MaxConcurrentUploads) stayed busy for {_runtime.Options.UploadSlotTimeout}; retry later."));
        }

        string updateId;
        // A slot is not held forever by a client that stalls mid-stream.
        using var uploadLimit = CancellationTokenSource.CreateLinkedTokenSource(token);
        uploadLimit.CancelAfter(_runtime.Options.UploadTimeout);
        try
        {
            updateId = await ReceiveAndFoldAsync(requestStream, header, round, uploadLimit.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (uploadLimit.IsCancellationRequested && !token.IsCancellationRequested)
        {
            throw Fail(StatusCode.DeadlineExceeded, string.Create(CultureInfo.InvariantCulture,
                $"The upload took longer than UploadTimeout ({_runtime.Options.UploadTimeout}); nothing was kept."));
        }
        finally
        {
            _runtime.ReleaseUploadSlot();
        }

        LogUpdateAccepted(header.ClientId, round, header.TotalBytes);
        return new SubmitReply { Accepted = true, UpdateId = updateId, Message = "accepted" };
    }

    /// <summary>Reads the payload after the header, checks size and digest, then validates and folds it; returns the update id.</summary>
    private async Task<string> ReceiveAndFoldAsync(IAsyncStreamReader<UpdateMessage> requestStream, UpdateHeader header, int round, CancellationToken token)
    {
        int length = (int)header.TotalBytes;
        byte[] buffer = _runtime.UploadBuffers.Rent(length);
        try
        {
            using (var destination = new MemoryStream(buffer, 0, length, writable: true))
            {
                try
                {
                    using var reassembler = new ChunkReassembler(destination, header.TotalBytes, _runtime.Options.MaxUploadChunkBytes, _runtime.Options.MaxModelBytes);
                    while (await requestStream.MoveNext(token).ConfigureAwait(false))
                    {
                        var message = requestStream.Current;
                        if (message.BodyCase != UpdateMessage.BodyOneofCase.Chunk)
                        {
                            throw Fail(StatusCode.InvalidArgument, "A second header arrived; an upload has exactly one header.");
                        }

                        reassembler.Append(message.Chunk.Span);
                        _runtime.Metrics.Transferred("in", message.Chunk.Length);
                    }

                    reassembler.Complete(header.Sha256);
                }
                catch (ModelTransferException e)
                {
                    LogUploadRefused(header.ClientId, round, e.StatusCode, e.Message);
                    throw Fail(e.StatusCode, e.Message);
                }
            }

            var submission = new UpdateSubmission(
                header.ClientId,
                round,
                header.SampleCount,
                header.Sha256,
                buffer.AsMemory(0, length),
                header.Moments.Count > 0 ? header.Moments.Select(ToMoments).ToArray() : null,
                header.Metrics.ToDictionary(p => p.Key, p => p.Value, StringComparer.Ordinal))
            {
                // ChunkReassembler.Complete checked the digest while the bytes arrived.
                DigestVerified = true,
            };
            var (refusal, updateId) = _runtime.ValidateAndFold(submission, header.ModelVersion);
            if (refusal is not null)
            {
                throw Refuse(refusal, header.ClientId, round);
            }

            _runtime.Metrics.Accepted();
            return updateId;
        }
        finally
        {
            // The update read the bytes in place and has been disposed: nothing references them any more.
            _runtime.UploadBuffers.Return(buffer);
            // A big upload leaves about a model's worth of received chunks as garbage.
            CoordinatorRuntime.CollectAfterLargeModel(length);
        }
    }

    public override Task<SubmitReply> SubmitStatistics(StatisticsReply request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(context);
        Authorize(context, request.ClientId);
        RequireSession(request.ClientId, request.SessionId);
        if (request.Round is < 1 or > int.MaxValue)
        {
            throw Fail(StatusCode.InvalidArgument, string.Create(CultureInfo.InvariantCulture, $"round {request.Round} is out of range."));
        }

        int round = (int)request.Round;
        var moments = request.Moments.Select(m => (m.Point, ToMoments(m))).ToArray();
        if (_runtime.AcceptStatistics(request.ClientId, round, request.ModelVersion, moments) is { } refusal)
        {
            throw Refuse(refusal, request.ClientId, round);
        }

        LogStatisticsAccepted(request.ClientId, round);
        return Task.FromResult(new SubmitReply { Accepted = true, UpdateId = string.Create(CultureInfo.InvariantCulture, $"{round}-{request.ClientId}-statistics"), Message = "accepted" });
    }

    public override Task<HeartbeatReply> Heartbeat(HeartbeatRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(context);
        Authorize(context, request.ClientId);
        RequireSession(request.ClientId, request.SessionId);
        var snapshot = _runtime.Machine.Snapshot;
        // False tells a client working on a round that the work is no longer wanted (the round or its statistics closed).
        bool keepGoing = request.Round == 0
            || (snapshot.Round == request.Round
                && ((snapshot.Phase == RoundPhase.Training && snapshot.Participants.Contains(request.ClientId))
                    || (snapshot.Phase == RoundPhase.Statistics && snapshot.StatisticsClients.Contains(request.ClientId))));
        return Task.FromResult(new HeartbeatReply
        {
            Continue = keepGoing,
            ServerTime = Timestamp.FromDateTimeOffset(_runtime.TimeProvider.GetUtcNow()),
        });
    }

    public override Task<StatusReply> GetStatus(StatusRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        Authorize(context, clientId: null);
        var snapshot = _runtime.Machine.Snapshot;
        return Task.FromResult(new StatusReply
        {
            RunId = _runtime.RunId,
            Round = snapshot.Round,
            State = _runtime.Failure is not null || snapshot.StopReason is not null ? RunState.Failed : snapshot.Phase switch
            {
                RoundPhase.WaitingForClients => RunState.WaitingForClients,
                RoundPhase.Training => RunState.Training,
                RoundPhase.Aggregating => RunState.Aggregating,
                RoundPhase.Statistics => RunState.Statistics,
                _ => RunState.Done,
            },
            ClientsRegistered = _runtime.SessionCount,
            ClientsParticipating = snapshot.Participants.Count,
            UpdatesReceived = _runtime.UpdatesInRound,
            LastAccuracy = _runtime.LastEvaluation?.Accuracy ?? double.NaN,
            Strategy = _runtime.Strategy.ToString(),
        });
    }

    private TaskReply? TryGetTask(string clientId, long lastRound)
    {
        var task = _runtime.Machine.GetTaskFor(clientId);
        switch (task.Kind)
        {
            case ClientTaskKind.Done:
                return new TaskReply { Done = new DoneTask { FinalRound = task.Round } };
            case ClientTaskKind.Train when task.Round > lastRound:
                var model = _runtime.Current;
                var training = _runtime.Options.Training;
                return new TaskReply
                {
                    Train = new TrainTask
                    {
                        Round = task.Round,
                        ModelVersion = model.Version,
                        ModelSha256 = model.Sha256,
                        ModelBytes = model.Bytes.Length,
                        Deadline = task.Deadline is { } deadline ? Timestamp.FromDateTimeOffset(deadline) : null,
                        CollectMoments = RepairModes.IsCorrection(_runtime.RepairFor(task.Round)),
                        HyperParameters = new HyperParameters
                        {
                            LocalEpochs = training.LocalEpochs,
                            BatchSize = training.BatchSize,
                            LearningRate = training.LearningRate,
                            Optimizer = training.Optimizer,
                            Momentum = training.Momentum,
                            WeightDecay = training.WeightDecay,
                            Seed = ((long)_runtime.Options.Seed * 1_000_003) + task.Round,
                        },
                    },
                };
            case ClientTaskKind.Statistics when _runtime.PendingStatistics is { } request:
                var statistics = new StatisticsTask
                {
                    Round = task.Round,
                    ModelVersion = request.Version.Version,
                    ModelSha256 = request.Version.Sha256,
                    RepairMode = RepairModes.ToName(request.Mode),
                };
                for (int i = 0; i < request.Points.Count; i++)
                {
                    var target = new RepairTarget { Point = request.Points[i].Name };
                    target.Means.AddRange(request.Targets.Means[i]);
                    target.Stds.AddRange(request.Targets.Stds[i]);
                    statistics.Targets.Add(target);
                }

                return new TaskReply { Statistics = statistics };
            default:
                return null;
        }
    }

    private void Authorize(ServerCallContext context, string? clientId)
    {
        // Tokens and client certificates (mutual TLS), see CallAuthorizer and docs/SECURITY.md.
        CallAuthorizer.Authorize(_runtime.Options, context, clientId, _logger);
    }

    private void RequireSession(string clientId, string sessionId)
    {
        if (!_runtime.IsSessionValid(clientId, sessionId))
        {
            throw Fail(StatusCode.FailedPrecondition, $"Unknown or stale session for client '{clientId}'; register again.");
        }
    }

    private RpcException Refuse(Refusal refusal, string clientId, int round)
    {
        var code = (StatusCode)(int)refusal.StatusCode;
        _runtime.Metrics.Refused(refusal.Reason);
        LogUploadRefused(clientId, round, code, refusal.Message);
        return Fail(code, refusal.Message);
    }

    private static RpcException Fail(StatusCode code, string message) => new(new Status(code, message));

    private static Models.Permutations.ChannelMoments ToMoments(ProtoMoments m)
    {
        try
        {
            return new(m.Count, [.. m.Sum], [.. m.SumSquares]);
        }
        catch (ArgumentException e)
        {
            throw Fail(StatusCode.InvalidArgument, $"The moments of repair point '{m.Point}' are malformed: {e.Message}");
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Client {ClientId} registered with {SampleCount} samples")]
    private partial void LogRegistered(string clientId, long sampleCount);

    [LoggerMessage(Level = LogLevel.Information, Message = "Statistics from {ClientId} for round {Round} accepted")]
    private partial void LogStatisticsAccepted(string clientId, int round);

    [LoggerMessage(Level = LogLevel.Information, Message = "Update from {ClientId} for round {Round} accepted ({Bytes} bytes)")]
    private partial void LogUpdateAccepted(string clientId, int round, long bytes);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Upload from {ClientId} (round {Round}) refused with {Code}: {Reason}")]
    private partial void LogUploadRefused(string clientId, int round, StatusCode code, string reason);
}
