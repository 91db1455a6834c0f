using System.Globalization;
using FedRebasin.Contracts;
using FedRebasin.Contracts.V1;
using FedRebasin.Data;
using FedRebasin.Models;
using FedRebasin.Tensors;
using FedRebasin.Torch;
using FedRebasin.Training;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using static TorchSharp.torch;

namespace FedRebasin.Client;

/// <summary>
/// One federated client: registers, polls for tasks, trains the global model on its own split and uploads the
/// result, until the coordinator says the run is done. Every call has a deadline and runs through <see cref="ClientResilience"/>.
/// </summary>
public sealed partial class ClientWorker
{
    /// <summary>Largest upload chunk (the protocol's default chunk size).</summary>
    public const int UploadChunkBytes = ModelChunker.DefaultChunkBytes;

    private readonly ClientOptions _options;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger _logger;
    private readonly ClientResilience _resilience;
    private readonly Metadata _headers = [];
    private string _sessionId = string.Empty;

    public ClientWorker(ClientOptions options, TimeProvider? timeProvider = null, ILogger<ClientWorker>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options;
        _timeProvider = timeProvider ?? TimeProvider.System;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _resilience = new ClientResilience(options.Retry, _timeProvider, _logger);
        if (options.Token is not null)
        {
            _headers.Add("authorization", "Bearer " + options.Token);
        }
    }

    /// <summary>Runs until the coordinator answers Done; returns the final round.</summary>
    public async Task<long> RunAsync(CancellationToken cancellationToken)
    {
        var dataset = _options.Dataset ?? DatasetCatalog.Load(_options.DatasetName, DataSplit.Train, _options.DataDirectory);
        var spec = PartitionSpec.Parse(_options.Partition);
        int[] indices = Partitioner.Partition(dataset, _options.Clients, spec, _options.PartitionSeed)[_options.ClientIndex];
        var device = TorchDevices.Resolve(_options.Device);
        using var data = TensorData.From(dataset, indices, device);
        using var channel = GrpcChannel.ForAddress(_options.CoordinatorAddress!);
        var client = new Contracts.V1.Federation.FederationClient(channel);
        string description = string.Create(CultureInfo.InvariantCulture, $"{dataset.Name} {spec} split {_options.ClientIndex}/{_options.Clients} seed {_options.PartitionSeed}");

        if (!await RegisterAsync(client, indices.Length, description, cancellationToken).ConfigureAwait(false))
        {
            return 0;
        }

        long lastRound = 0;
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            TaskReply task;
            try
            {
                task = await _resilience.ExecuteAsync("GetTask", _options.PollTimeout, async ct =>
                    await client.GetTaskAsync(
                        new GetTaskRequest { ClientId = _options.ClientId, SessionId = _sessionId, LastRound = lastRound },
                        _headers, Deadline(_options.PollTimeout), ct).ConfigureAwait(false),
                    cancellationToken).ConfigureAwait(false);
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.FailedPrecondition)
            {
                LogReregister(_logger, _options.ClientId, e.Status.Detail);
                if (!await RegisterAsync(client, indices.Length, description, cancellationToken).ConfigureAwait(false))
                {
                    return lastRound;
                }

                continue;
            }

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
                    try
                    {
                        await RunTrainTaskAsync(client, task.Train, data, device, cancellationToken).ConfigureAwait(false);
                        lastRound = task.Train.Round;
                    }
                    catch (RpcException e) when (e.StatusCode is StatusCode.FailedPrecondition or StatusCode.Aborted or StatusCode.NotFound)
                    {
                        // The round closed, the version is gone or the session is stale: drop the task and poll again.
                        LogTaskAbandoned(_logger, _options.ClientId, task.Train.Round, e.StatusCode, e.Status.Detail);
                        if (e.StatusCode == StatusCode.FailedPrecondition
                            && !await RegisterAsync(client, indices.Length, description, cancellationToken).ConfigureAwait(false))
                        {
                            return lastRound;
                        }
                    }

                    break;
                default:
                    // Statistics tasks are not supported yet; wait a little and poll again.
                    LogUnsupportedTask(_logger, _options.ClientId, task.TaskCase.ToString());
                    await Task.Delay(TimeSpan.FromSeconds(1), _timeProvider, cancellationToken).ConfigureAwait(false);
                    break;
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
        byte[] global = await _resilience.ExecuteAsync("DownloadModel", _options.CallTimeout, ct => DownloadAsync(client, task, ct), cancellationToken).ConfigureAwait(false);
        var trainingOptions = ToTrainingOptions(task.HyperParameters);
        var (payload, report) = await Task.Run(() => Train(global, task.ModelVersion, data, device, trainingOptions, cancellationToken), cancellationToken).ConfigureAwait(false);
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
        int attempts = 0;
        var reply = await _resilience.ExecuteAsync("SubmitUpdate", _options.CallTimeout, ct => UploadAsync(client, header, payload, ++attempts, ct), cancellationToken).ConfigureAwait(false);
        LogUploaded(_logger, _options.ClientId, task.Round, payload.Length, reply.Accepted, last.Loss);
    }

    private async Task<byte[]> DownloadAsync(Contracts.V1.Federation.FederationClient client, TrainTask task, CancellationToken cancellationToken)
    {
        using var call = client.DownloadModel(
            new DownloadModelRequest { ClientId = _options.ClientId, SessionId = _sessionId, ModelVersion = task.ModelVersion },
            _headers, Deadline(_options.CallTimeout), cancellationToken);
        var chunks = new List<ModelChunk>();
        await foreach (var chunk in call.ResponseStream.ReadAllAsync(cancellationToken).ConfigureAwait(false))
        {
            chunks.Add(chunk);
        }

        // Checks offsets, total size and the digest of the last chunk against the task's model_sha256.
        return new ModelChunker(ModelChunker.MaxAllowedChunkBytes).Reassemble(chunks, task.ModelSha256);
    }

    /// <summary>One whole upload attempt: header, then the payload in chunks of at most 1 MiB.</summary>
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
                    await call.RequestStream.WriteAsync(new UpdateMessage { Chunk = ByteString.CopyFrom(payload, offset, length) }, cancellationToken).ConfigureAwait(false);
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

    /// <summary>Loads the global model, trains it on the local split and returns the serialized result (synchronous tensor work).</summary>
    private static (byte[] Payload, TrainingReport Report) Train(byte[] global, string version, TensorData data, Device device, TrainingOptions options, CancellationToken cancellationToken)
    {
        using var scope = NewDisposeScope();
        using var model = ModelFile.FromSafeTensors(SafeTensors.Parse(global, version), version, device);
        var report = Trainer.Train(model, data, options, cancellationToken: cancellationToken);
        byte[] payload = SafeTensors.ToBytes(ModelFile.ToSafeTensors(model));
        return (payload, report);
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

    [LoggerMessage(Level = LogLevel.Warning, Message = "Client {ClientId}: task {Kind} is not supported; polling again")]
    private static partial void LogUnsupportedTask(ILogger logger, string clientId, string kind);

    [LoggerMessage(Level = LogLevel.Information, Message = "Client {ClientId}: update for round {Round} uploaded ({Bytes} bytes, accepted {Accepted}, loss {Loss})")]
    private static partial void LogUploaded(ILogger logger, string clientId, long round, int bytes, bool accepted, double loss);

    [LoggerMessage(Level = LogLevel.Information, Message = "Client {ClientId}: update for round {Round} already accepted (attempt {Attempt})")]
    private static partial void LogAlreadyAccepted(ILogger logger, string clientId, long round, int attempt);
}
