using System.Globalization;
using FedRebasin.Coordinator.Checkpoints;
using FedRebasin.Data;
using FedRebasin.Federation.Rounds;
using FedRebasin.Federation.Strategies;
using FedRebasin.Federation.Updates;
using FedRebasin.Merging.Averaging;
using FedRebasin.Models;
using FedRebasin.Models.Permutations;
using FedRebasin.Tensors;
using FedRebasin.Torch;
using FedRebasin.Training;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using static TorchSharp.torch;

namespace FedRebasin.Coordinator;

/// <summary>A published global model version.</summary>
/// <param name="Version">Version string ("0" for the initial model, then the round that produced it; "R-merged" for a
/// merged model before repair, served only to clients answering a statistics task).</param>
/// <param name="Bytes">The safetensors payload (cached per version, served by DownloadModel).</param>
/// <param name="Sha256">Digest of <paramref name="Bytes"/>.</param>
internal sealed record GlobalModel(string Version, byte[] Bytes, string Sha256);

/// <summary>
/// The coordinator's state: round state machine, global model, the open round's aggregator, client sessions and the
/// checkpoint folder. Every state-machine mutation and every fold happens under one lock, so "is this update acceptable?"
/// checks stay true until the update is folded. Closing a round (combining, repairing, evaluating, checkpointing) runs on
/// a background task outside the lock (<see cref="CoordinatorRuntime"/>'s Rounds part), so other calls are served meanwhile.
/// </summary>
internal sealed partial class CoordinatorRuntime : IDisposable
{
    private readonly Lock _gate = new();

    // Serialises folds (weight matching can take seconds on a big model) without holding _gate, so other calls are
    // served meanwhile. Taken before _gate wherever both are needed; closing or abandoning a round takes it too, so
    // an update accepted by the state machine is always folded before the round's aggregate is taken.
    private readonly Lock _foldGate = new();
    private readonly ILogger<CoordinatorRuntime> _logger;
    private readonly Dictionary<string, string> _sessions = new(StringComparer.Ordinal);
    private readonly Dictionary<string, DateTimeOffset> _lastSeen = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _callsInFlight = new(StringComparer.Ordinal);
    private readonly Dictionary<string, GlobalModel> _versions = new(StringComparer.Ordinal);
    private readonly Queue<string> _versionOrder = new();
    private readonly SemaphoreSlim _uploadSlots;
    private readonly CheckpointStore? _checkpoints;
    private readonly CalibrationData? _calibration;
    private readonly TensorData? _evaluation;
    private readonly System.Collections.Concurrent.ConcurrentBag<ClassifierModel> _updateEvaluationModels = [];
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private ClassifierModel _global;
    private Dictionary<string, Tensor> _globalState;
    /// <summary>Models from this size on leave enough large-object-heap garbage to collect it at once (<see cref="CollectAfterLargeModel"/>).</summary>
    private const int LargeModelBytes = 8 << 20;

    private UpdateValidator _validator;
    private RoundAggregator? _aggregator;
    private int _updatesInRound;
    private double _clientSecondsInRound;
    private ClientModelEvaluations _clientModels = ClientModelEvaluations.None;
    private bool _disposed;

    public CoordinatorRuntime(IOptions<CoordinatorOptions> options, TimeProvider timeProvider, ILogger<CoordinatorRuntime> logger, CoordinatorMetrics metrics)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(timeProvider);
        ArgumentNullException.ThrowIfNull(logger);
        ArgumentNullException.ThrowIfNull(metrics);
        Options = options.Value;
        TimeProvider = timeProvider;
        Metrics = metrics;
        _logger = logger;
        Strategy = StrategySpec.Parse(Options.Strategy);
        TorchThreads.UseOnThisThread(Options.TorchThreads);
        _uploadSlots = new SemaphoreSlim(Options.MaxConcurrentUploads, Options.MaxConcurrentUploads);
        UploadBuffers = new UploadBufferPool(Options.MaxConcurrentUploads);
        var settings = new RoundSettings
        {
            Rounds = Options.Rounds,
            MinClients = Options.MinClients,
            MinResponses = Options.MinResponses == 0 ? Options.MinClients : Options.MinResponses,
            FractionPerRound = Options.FractionPerRound,
            AvailabilityTimeout = Options.AvailabilityTimeout,
            TrainingDeadline = Options.TrainingDeadline,
            GracePeriod = Options.GracePeriod,
            MaxAttempts = Options.MaxRoundAttempts == 0 ? null : Options.MaxRoundAttempts,
            Seed = Options.Seed,
        };

        if (!string.IsNullOrWhiteSpace(Options.CheckpointDirectory))
        {
            _checkpoints = new CheckpointStore(Options.CheckpointDirectory, Options.KeepModelCheckpoints);
        }

        var resumed = _checkpoints?.Load();
        if (resumed is { } checkpoint)
        {
            _global = Resume(checkpoint.Manifest, checkpoint.ModelBytes);
            RunId = checkpoint.Manifest.RunId;
            Machine = RoundStateMachine.FromCheckpoint(settings, timeProvider, checkpoint.Manifest.Rounds);
        }
        else
        {
            _global = CreateInitialModel(Options);
            RunId = Guid.NewGuid().ToString("N");
            Machine = new RoundStateMachine(settings, timeProvider);
        }

        Machine.EventOccurred += OnRoundEvent;
        Metrics.ObserveRun(() =>
        {
            var snapshot = Machine.Snapshot;
            bool open = snapshot.Phase is RoundPhase.Training or RoundPhase.Aggregating or RoundPhase.Statistics;
            return (snapshot.Phase, open ? snapshot.Participants.Count : 0);
        });
        _globalState = StateViews(_global);
        _validator = NewValidator();
        int completed = Machine.Snapshot.CompletedRounds;
        Publish(completed.ToString(CultureInfo.InvariantCulture), ModelFile.ToBytes(_global), makeCurrent: true);
        _calibration = LoadCalibration(Options.Calibration, _global.Spec, Options.Seed);
        _evaluation = LoadEvaluation(Options.Evaluation, _global.Spec, Options.Seed);
        if (_evaluation is not null)
        {
            LastEvaluation = new RoundEvaluation(double.NaN, double.NaN, double.NaN, double.NaN, _evaluation.Count);
            var initial = Evaluator.Evaluate(_global, _evaluation);
            LastEvaluation = LastEvaluation with { Accuracy = initial.Accuracy, Loss = initial.Loss };
        }

        if (resumed is null && _checkpoints is not null)
        {
            // The initial model and the run id are checkpointed too, so a restart before round 1 completes resumes the same run.
            _checkpoints.Save(Manifest(Machine.ToCheckpoint()), Current.Bytes, audit: null);
        }
        else if (resumed is not null)
        {
            LogResumed(completed, RunId, _checkpoints!.Directory);
        }
    }

    public CoordinatorOptions Options { get; }

    public TimeProvider TimeProvider { get; }

    public CoordinatorMetrics Metrics { get; }

    public StrategySpec Strategy { get; }

    public string RunId { get; }

    public RoundStateMachine Machine { get; }

    public ModelSpec ModelSpec => _global.Spec;

    /// <summary>The current global model.</summary>
    public GlobalModel Current { get; private set; } = null!;

    /// <summary>Evaluation of the current global model on the coordinator's test data, or null when none is configured.</summary>
    public RoundEvaluation? LastEvaluation { get; private set; }

    /// <summary>Updates accepted in the current round.</summary>
    public int UpdatesInRound
    {
        get
        {
            lock (_gate)
            {
                return _updatesInRound;
            }
        }
    }

    /// <summary>Completes when the state machine changes; a fresh task is handed out after each change.</summary>
    public Task Changed
    {
        get
        {
            lock (_gate)
            {
                return _changed.Task;
            }
        }
    }

    public int SessionCount
    {
        get
        {
            lock (_gate)
            {
                return _sessions.Count;
            }
        }
    }

    public string Register(string clientId, long sampleCount)
    {
        string session = Guid.NewGuid().ToString("N");
        lock (_gate)
        {
            _sessions[clientId] = session;
            _lastSeen[clientId] = TimeProvider.GetUtcNow();
            Metrics.SetClients(_sessions.Count);
            Machine.RegisterClient(clientId, sampleCount);
            Machine.StartRoundIfReady();
        }

        return session;
    }

    /// <summary>Whether the session is the client's current one; a valid session also counts as a sign of life.</summary>
    public bool IsSessionValid(string clientId, string sessionId)
    {
        lock (_gate)
        {
            if (_sessions.TryGetValue(clientId, out string? known) && string.Equals(known, sessionId, StringComparison.Ordinal))
            {
                _lastSeen[clientId] = TimeProvider.GetUtcNow();
                return true;
            }

            return false;
        }
    }

    /// <summary>
    /// Marks a long call (long poll, download, upload) of the client as in flight until disposed: a client busy in a
    /// call is alive even when it sends nothing else, e.g. while its upload waits for a slot.
    /// </summary>
    public IDisposable TrackCall(string clientId)
    {
        lock (_gate)
        {
            _callsInFlight[clientId] = _callsInFlight.GetValueOrDefault(clientId) + 1;
        }

        return new CallInFlight(this, clientId);
    }

    private void EndCall(string clientId)
    {
        lock (_gate)
        {
            int left = _callsInFlight.GetValueOrDefault(clientId) - 1;
            if (left <= 0)
            {
                _callsInFlight.Remove(clientId);
            }
            else
            {
                _callsInFlight[clientId] = left;
            }

            if (_lastSeen.ContainsKey(clientId))
            {
                _lastSeen[clientId] = TimeProvider.GetUtcNow();
            }
        }
    }

    private sealed class CallInFlight(CoordinatorRuntime runtime, string clientId) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                runtime.EndCall(clientId);
            }
        }
    }

    public GlobalModel? FindVersion(string version)
    {
        lock (_gate)
        {
            return _versions.GetValueOrDefault(version);
        }
    }

    /// <summary>Waits up to <see cref="CoordinatorOptions.UploadSlotTimeout"/> for one of the <see cref="CoordinatorOptions.MaxConcurrentUploads"/> slots; false when none freed up.</summary>
    public Task<bool> WaitForUploadSlotAsync(CancellationToken cancellationToken) =>
        _uploadSlots.WaitAsync(Options.UploadSlotTimeout, cancellationToken);

    public void ReleaseUploadSlot() => _uploadSlots.Release();

    /// <summary>Payload buffers, reused across a round's uploads and released when it closes.</summary>
    public UploadBufferPool UploadBuffers { get; }

    /// <summary>Checks, without changing anything, whether an update for (client, round) would be accepted now; returns the refusal otherwise.</summary>
    public Refusal? PreCheck(string clientId, int round, string modelVersion)
    {
        lock (_gate)
        {
            var task = Machine.GetTaskFor(clientId);
            if (task.Kind == ClientTaskKind.Train && task.Round == round)
            {
                return string.Equals(modelVersion, Current.Version, StringComparison.Ordinal)
                    ? null
                    : new Refusal(RefusalReason.WrongRound, $"The update for round {round.ToString(CultureInfo.InvariantCulture)} starts from model version '{modelVersion}', but the round trains version '{Current.Version}'.");
            }

            // Not acceptable now: AcceptUpdate cannot accept (same conditions, under our lock), so it only tells why.
            var outcome = Machine.AcceptUpdate(clientId, round);
            return ToRefusal(outcome, clientId, round, "update") ?? new Refusal(RefusalReason.TooLate, "The round changed.");
        }
    }

    /// <summary>Validates a complete payload, then (atomically) records the acceptance and folds it into the round's aggregate.</summary>
    public (Refusal? Refusal, string UpdateId) ValidateAndFold(UpdateSubmission submission, string modelVersion)
    {
        TorchThreads.UseOnThisThread(Options.TorchThreads);
        // Validation parses and checks the whole payload before anything is recorded.
        UpdateValidator validator;
        lock (_gate)
        {
            validator = _validator;
            if (!string.Equals(modelVersion, Current.Version, StringComparison.Ordinal))
            {
                return (new Refusal(RefusalReason.TooLate, $"Model version '{modelVersion}' is no longer current ('{Current.Version}')."), string.Empty);
            }
        }

        if (Machine.GetSampleCount(submission.ClientId) is long registered && submission.SampleCount > registered)
        {
            // The averaging weight may not exceed what the client registered (a client cannot inflate its say).
            return (new Refusal(RefusalReason.BadSampleCount, string.Create(CultureInfo.InvariantCulture,
                $"The update from '{submission.ClientId}' claims {submission.SampleCount} samples, more than the {registered} it registered with.")), string.Empty);
        }

        var result = validator.Validate(submission);
        if (!result.IsAccepted)
        {
            if (result.Refusal!.Reason == RefusalReason.NonFinite)
            {
                // Local training diverged: the same round from the same model would diverge again, so the round stops
                // waiting for this client (it is asked again next round).
                bool excluded;
                lock (_foldGate)
                {
                    excluded = Machine.ExcludeFromRound(submission.ClientId, submission.Round, "its update holds non-finite weights");
                }

                if (excluded)
                {
                    ScheduleRoundClose();
                }
            }

            return (result.Refusal, string.Empty);
        }

        bool closed;
        using (var update = result.Update)
        {
            // Outside the fold gate: uploads evaluate in parallel; the figure only counts once the update is accepted.
            var updateEvaluation = EvaluateUpdate(update);
            lock (_foldGate)
            {
                RoundAggregator aggregator;
                lock (_gate)
                {
                    if (!string.Equals(modelVersion, Current.Version, StringComparison.Ordinal))
                    {
                        return (new Refusal(RefusalReason.TooLate, $"Model version '{modelVersion}' is no longer current ('{Current.Version}')."), string.Empty);
                    }

                    // The round cannot close between AcceptUpdate and the fold below: closing takes _foldGate. The fold
                    // cannot refuse (the layout was validated), and the update only counts once the state machine agreed.
                    var outcome = Machine.AcceptUpdate(submission.ClientId, submission.Round);
                    if (ToRefusal(outcome, submission.ClientId, submission.Round, "update") is { } refusal)
                    {
                        return (refusal, string.Empty);
                    }

                    aggregator = _aggregator ??= new RoundAggregator(submission.Round, _globalState, PermutationSpecs.For(_global), _global.RepairPoints, Strategy, new RoundAggregatorOptions
                    {
                        ShadowFedAvg = _evaluation is not null,
                        TargetRule = Options.RepairTargets == "mix" ? RepairTargetRule.Mix : RepairTargetRule.Pool,
                    });
                }

                aggregator.Fold(update);
                lock (_gate)
                {
                    _updatesInRound++;
                    _clientSecondsInRound += update.Metrics.GetValueOrDefault("seconds") is double seconds && double.IsFinite(seconds) && seconds > 0 ? seconds : 0;
                    if (updateEvaluation is { } evaluated)
                    {
                        _clientModels = _clientModels.Add(evaluated, update.SampleCount);
                    }
                    closed = Machine.Snapshot.Phase == RoundPhase.Aggregating;
                }
            }
        }

        if (closed)
        {
            ScheduleRoundClose();
        }

        return (null, string.Create(CultureInfo.InvariantCulture, $"{submission.Round}-{submission.ClientId}"));
    }

    /// <summary>Drives the state machine's time-based transitions, drops silent clients and closes a round that closed.</summary>
    public void Tick()
    {
        var now = TimeProvider.GetUtcNow();
        var limit = Options.HeartbeatInterval * Options.MissedHeartbeats;
        List<string> silent;
        lock (_gate)
        {
            silent = [.. _lastSeen.Where(p => now - p.Value > limit && !_callsInFlight.ContainsKey(p.Key)).Select(p => p.Key)];
            foreach (string clientId in silent)
            {
                _lastSeen.Remove(clientId);
                _sessions.Remove(clientId);
            }

            Metrics.SetClients(_sessions.Count);
        }

        // Under _foldGate: an abandoned attempt discards the aggregator, which no fold may be using.
        lock (_foldGate)
        {
            foreach (string clientId in silent)
            {
                Machine.DropClient(clientId, string.Create(CultureInfo.InvariantCulture, $"no call for {limit.TotalSeconds:0.#} s ({Options.MissedHeartbeats} heartbeat intervals)"));
                Metrics.ClientDropped();
            }

            Machine.OnTick();
        }

        ScheduleRoundClose();
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        Machine.EventOccurred -= OnRoundEvent;
        lock (_gate)
        {
            _aggregator?.Dispose();
            _pending?.Dispose();
            StateDicts.DisposeAll([_globalState]);
            _global.Dispose();
            if (_retired is { } retired)
            {
                StateDicts.DisposeAll([retired.State]);
                retired.Model.Dispose();
            }
        }

        _calibration?.Dispose();
        _evaluation?.Dispose();
        while (_updateEvaluationModels.TryTake(out var model))
        {
            model.Dispose();
        }

        _uploadSlots.Dispose();
    }

    private UpdateValidator NewValidator() =>
        new(_globalState, _global.RepairPoints, new UpdateLimits { MaxModelBytes = Options.MaxModelBytes });

    /// <summary>Caches a version's bytes for DownloadModel (the newest three: the current, the previous for late downloaders, a statistics version).</summary>
    private void Publish(string version, byte[] bytes, bool makeCurrent)
    {
        var model = new GlobalModel(version, bytes, Contracts.Sha256Hex.Compute(bytes));
        lock (_gate)
        {
            if (_versions.TryAdd(version, model))
            {
                _versionOrder.Enqueue(version);
            }
            else
            {
                _versions[version] = model;
            }

            while (_versionOrder.Count > 3)
            {
                _versions.Remove(_versionOrder.Dequeue());
            }

            if (makeCurrent)
            {
                Current = model;
            }
        }
    }

    private void OnRoundEvent(object? sender, RoundEvent e)
    {
        LogRoundEvent(e.Kind, e.Round, e.Attempt, e.Detail);
        TaskCompletionSource previous;
        lock (_gate)
        {
            if (e.Kind == RoundEventKind.RoundStarted)
            {
                _roundStartedAt = e.At;
                Metrics.SetRound(e.Round);
            }

            if (e.Kind == RoundEventKind.Abandoned)
            {
                // Accepted updates of an abandoned attempt are discarded.
                _aggregator?.Dispose();
                _aggregator = null;
                _updatesInRound = 0;
                _clientSecondsInRound = 0;
                _clientModels = ClientModelEvaluations.None;
            }

            previous = _changed;
            _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        previous.TrySetResult();
    }

    private static Refusal? ToRefusal(UpdateAcceptance outcome, string clientId, int round, string what)
    {
        string who = string.Create(CultureInfo.InvariantCulture, $"{what} from '{clientId}' for round {round}");
        return outcome switch
        {
            UpdateAcceptance.Accepted => null,
            UpdateAcceptance.Duplicate => new Refusal(RefusalReason.Duplicate, $"The {who} was already accepted; it is not counted twice."),
            UpdateAcceptance.NotParticipant => new Refusal(RefusalReason.NotParticipant, $"The {who} is refused: the client is not a participant of the round."),
            UpdateAcceptance.WrongRound => new Refusal(RefusalReason.WrongRound, $"The {who} is refused: that round is not open."),
            _ => new Refusal(RefusalReason.TooLate, $"The {who} is refused: the round has closed."),
        };
    }

    private static ClassifierModel CreateInitialModel(CoordinatorOptions options)
    {
        var model = options.Model;
        if (!string.IsNullOrWhiteSpace(model.Path))
        {
            return ModelFile.Load(model.Path);
        }

        var (c, h, w) = model.ParseInputShape();
        var spec = ModelRegistry.DefaultSpec(model.Architecture, c, h, w, model.Classes, model.Hidden.Count > 0 ? model.Hidden : null, model.WidthMultiplier);
        return ModelRegistry.Create(spec, seed: options.Seed);
    }

    /// <summary>Loads the checkpointed model after checking that the run's settings still describe it.</summary>
    private ClassifierModel Resume(CheckpointManifest manifest, byte[] bytes)
    {
        string folder = _checkpoints!.Directory;
        if (!Equals(StrategySpec.Parse(manifest.Strategy), Strategy))
        {
            throw new InvalidOperationException($"Coordinator:Strategy is '{Strategy}', but the checkpoint in {folder} was written by a run with strategy '{manifest.Strategy}'; use the same settings to resume, or another Coordinator:CheckpointDirectory.");
        }

        var model = ModelFile.FromSafeTensors(SafeTensors.Parse(bytes, manifest.ModelFile), Path.Combine(folder, manifest.ModelFile));
        using var configured = CreateInitialModel(Options);
        if (!Equals(configured.Spec, model.Spec))
        {
            string found = model.Spec.Describe();
            model.Dispose();
            throw new InvalidOperationException($"Coordinator:Model describes {configured.Spec.Describe()}, but the checkpoint in {folder} holds {found}; use the same settings to resume, or another Coordinator:CheckpointDirectory.");
        }

        return model;
    }

    private CheckpointManifest Manifest(RoundCheckpoint rounds) => new(
        CheckpointStore.FormatVersion,
        RunId,
        Strategy.ToString(),
        _global.Spec.ToMetadata(),
        CheckpointStore.ModelFileName(rounds.LastCompletedRound),
        Current.Sha256,
        rounds,
        TimeProvider.GetUtcNow());

    private static CalibrationData? LoadCalibration(CoordinatorDataOptions? data, ModelSpec spec, int seed)
    {
        if (data is null)
        {
            return null;
        }

        var dataset = LoadFitting(data, DataSplit.Train, spec, "Calibration");
        return CalibrationData.Create(dataset, data.Examples, seed, CPU);
    }

    private static TensorData? LoadEvaluation(CoordinatorDataOptions? data, ModelSpec spec, int seed)
    {
        if (data is null)
        {
            return null;
        }

        return TensorData.Sample(LoadFitting(data, DataSplit.Test, spec, "Evaluation"), data.Examples, seed, CPU);
    }

    private static ImageDataset LoadFitting(CoordinatorDataOptions data, DataSplit split, ModelSpec spec, string setting)
    {
        var dataset = DatasetCatalog.Load(data.Dataset, split, data.Directory);
        if (dataset.Channels != spec.InputChannels || dataset.Height != spec.InputHeight || dataset.Width != spec.InputWidth || dataset.ClassCount > spec.Classes)
        {
            throw new InvalidOperationException(string.Create(CultureInfo.InvariantCulture,
                $"Coordinator:{setting}:Dataset '{data.Dataset}' has {dataset.Channels}x{dataset.Height}x{dataset.Width} inputs and {dataset.ClassCount} classes; the model takes {spec.InputChannels}x{spec.InputHeight}x{spec.InputWidth} and {spec.Classes} classes."));
        }

        return dataset;
    }

    /// <summary>The update's own loss and accuracy on the evaluation data (for the merge barrier), or null when not measured.</summary>
    private Evaluation? EvaluateUpdate(ValidatedUpdate update)
    {
        if (_evaluation is null || !Options.EvaluateUpdates)
        {
            return null;
        }

        var evaluating = System.Diagnostics.Stopwatch.StartNew();
        // Uploads evaluate in parallel, each on a model of its own that is kept for the next update: building a module
        // per update (its random initialisation) cost about a third as much as the evaluation itself.
        var model = _updateEvaluationModels.TryTake(out var kept) ? kept : ModelRegistry.Create(_global.Spec);
        try
        {
            StateDicts.CopyInto(model.state_dict(), update.State);
            var result = Evaluator.Evaluate(model, _evaluation);
            Metrics.Stage("evaluate_update", evaluating.Elapsed.TotalSeconds);
            return result;
        }
        finally
        {
            _updateEvaluationModels.Add(model);
        }
    }

    /// <summary>A module of <paramref name="spec"/> holding <paramref name="state"/> (copied in place, no safetensors copy on the way).</summary>
    private static ClassifierModel BuildModel(ModelSpec spec, IReadOnlyDictionary<string, Tensor> state, string source)
    {
        var model = ModelRegistry.Create(spec);
        try
        {
            StateDicts.CopyInto(model.state_dict(), state);
            return model;
        }
        catch (ArgumentException e)
        {
            model.Dispose();
            throw new InvalidOperationException($"The {source} does not fit the model {spec}: {e.Message}", e);
        }
    }

    /// <summary>
    /// The published model's tensors as detached views, not copies: a published model is never changed (repair and
    /// evaluation come before publication), so the alignment reference and the validator share its memory.
    /// </summary>
    private static Dictionary<string, Tensor> StateViews(ClassifierModel model)
    {
        using var noGrad = no_grad();
        return model.state_dict().ToDictionary(p => p.Key, p => p.Value.detach().DetachFromDisposeScope(), StringComparer.Ordinal);
    }

    /// <summary>
    /// Collects the garbage a large model leaves (received chunks, a round's float64 sums: large-object-heap arrays that
    /// would otherwise pile up until the runtime notices on its own).
    /// </summary>
    internal static void CollectAfterLargeModel(long modelBytes)
    {
        if (modelBytes >= LargeModelBytes)
        {
            GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: false);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Round {Round} (attempt {Attempt}): {Kind}, {Detail}")]
    private partial void LogRoundEvent(RoundEventKind kind, int round, int attempt, string detail);

    [LoggerMessage(Level = LogLevel.Information, Message = "Resumed run {RunId} after round {Round} from the checkpoint in {Directory}")]
    private partial void LogResumed(int round, string runId, string directory);
}
