using System.Globalization;
using FedRebasin.Federation.Rounds;
using FedRebasin.Federation.Strategies;
using FedRebasin.Federation.Updates;
using FedRebasin.Merging.Averaging;
using FedRebasin.Models;
using FedRebasin.Models.Permutations;
using FedRebasin.Tensors;
using FedRebasin.Torch;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using static TorchSharp.torch;

namespace FedRebasin.Coordinator;

/// <summary>A published global model version.</summary>
/// <param name="Version">Version string ("0" for the initial model, then the round number that produced it).</param>
/// <param name="Bytes">The safetensors payload (cached per version, served by DownloadModel).</param>
/// <param name="Sha256">Digest of <paramref name="Bytes"/>.</param>
internal sealed record GlobalModel(string Version, byte[] Bytes, string Sha256);

/// <summary>
/// The coordinator's state: round state machine, global model, the open round's aggregator and client sessions.
/// Every state-machine mutation happens under one lock, so "is this update acceptable?" checks stay true until the
/// update is folded. Aggregation runs under the same lock when a round closes (in SubmitUpdate or in <see cref="Tick"/>).
/// </summary>
internal sealed partial class CoordinatorRuntime : IDisposable
{
    private readonly Lock _gate = new();
    private readonly ILogger<CoordinatorRuntime> _logger;
    private readonly Dictionary<string, string> _sessions = new(StringComparer.Ordinal);
    private readonly Dictionary<string, GlobalModel> _versions = new(StringComparer.Ordinal);
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private ClassifierModel _global;
    private Dictionary<string, Tensor> _globalState;
    private UpdateValidator _validator;
    private RoundAggregator? _aggregator;
    private int _updatesInRound;
    private bool _disposed;

    public CoordinatorRuntime(IOptions<CoordinatorOptions> options, TimeProvider timeProvider, ILogger<CoordinatorRuntime> logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(timeProvider);
        ArgumentNullException.ThrowIfNull(logger);
        Options = options.Value;
        TimeProvider = timeProvider;
        _logger = logger;
        Strategy = StrategySpec.Parse(Options.Strategy);
        RunId = Guid.NewGuid().ToString("N");
        var settings = new RoundSettings
        {
            Rounds = Options.Rounds,
            MinClients = Options.MinClients,
            MinResponses = Options.MinResponses == 0 ? Options.MinClients : Options.MinResponses,
            FractionPerRound = Options.FractionPerRound,
            AvailabilityTimeout = Options.AvailabilityTimeout,
            TrainingDeadline = Options.TrainingDeadline,
            GracePeriod = Options.GracePeriod,
            Seed = Options.Seed,
        };
        Machine = new RoundStateMachine(settings, timeProvider);
        Machine.EventOccurred += OnRoundEvent;
        _global = CreateInitialModel(Options);
        _globalState = SnapshotState(_global);
        _validator = new UpdateValidator(_globalState, _global.RepairPoints, new UpdateLimits { MaxModelBytes = Options.MaxModelBytes });
        Publish("0");
    }

    public CoordinatorOptions Options { get; }

    public TimeProvider TimeProvider { get; }

    public StrategySpec Strategy { get; }

    public string RunId { get; }

    public RoundStateMachine Machine { get; }

    public ModelSpec ModelSpec => _global.Spec;

    /// <summary>The current global model.</summary>
    public GlobalModel Current { get; private set; } = null!;

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

    public string Register(string clientId, long sampleCount)
    {
        string session = Guid.NewGuid().ToString("N");
        lock (_gate)
        {
            _sessions[clientId] = session;
            Machine.RegisterClient(clientId, sampleCount);
            Machine.StartRoundIfReady();
        }

        return session;
    }

    public bool IsSessionValid(string clientId, string sessionId)
    {
        lock (_gate)
        {
            return _sessions.TryGetValue(clientId, out string? known) && string.Equals(known, sessionId, StringComparison.Ordinal);
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

    public GlobalModel? FindVersion(string version)
    {
        lock (_gate)
        {
            return _versions.GetValueOrDefault(version);
        }
    }

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
            return ToRefusal(outcome, clientId, round) ?? new Refusal(RefusalReason.TooLate, "The round changed.");
        }
    }

    /// <summary>Validates a complete payload, then (atomically) records the acceptance and folds it into the round's aggregate.</summary>
    public (Refusal? Refusal, string UpdateId) ValidateAndFold(UpdateSubmission submission, string modelVersion)
    {
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

        var result = validator.Validate(submission);
        if (!result.IsAccepted)
        {
            return (result.Refusal, string.Empty);
        }

        bool aggregate = false;
        using (var update = result.Update)
        {
            lock (_gate)
            {
                if (!string.Equals(modelVersion, Current.Version, StringComparison.Ordinal))
                {
                    return (new Refusal(RefusalReason.TooLate, $"Model version '{modelVersion}' is no longer current ('{Current.Version}')."), string.Empty);
                }

                // Fold first into the aggregator (which rejects nothing here: the layout was validated), but only once the
                // state machine agrees; AcceptUpdate and Fold happen under one lock so the round cannot close in between.
                var outcome = Machine.AcceptUpdate(submission.ClientId, submission.Round);
                if (ToRefusal(outcome, submission.ClientId, submission.Round) is { } refusal)
                {
                    return (refusal, string.Empty);
                }

                _aggregator ??= new RoundAggregator(submission.Round, _globalState, PermutationSpecs.For(_global), _global.RepairPoints, Strategy);
                _aggregator.Fold(update);
                _updatesInRound++;
                aggregate = Machine.Snapshot.Phase == RoundPhase.Aggregating;
            }
        }

        string id = string.Create(CultureInfo.InvariantCulture, $"{submission.Round}-{submission.ClientId}");
        if (aggregate)
        {
            AggregateIfClosed();
        }

        return (null, id);
    }

    /// <summary>Drives the state machine's time-based transitions and aggregates a round that closed.</summary>
    public void Tick()
    {
        lock (_gate)
        {
            Machine.OnTick();
        }

        AggregateIfClosed();
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        Machine.EventOccurred -= OnRoundEvent;
        _aggregator?.Dispose();
        StateDicts.DisposeAll([_globalState]);
        _global.Dispose();
    }

    private void AggregateIfClosed()
    {
        lock (_gate)
        {
            var snapshot = Machine.Snapshot;
            if (snapshot.Phase != RoundPhase.Aggregating)
            {
                return;
            }

            int round = snapshot.Round;
            var aggregator = _aggregator;
            _aggregator = null;
            if (aggregator is null || aggregator.Count == 0)
            {
                aggregator?.Dispose();
                LogNothingToAggregate(round);
                Machine.CompleteAggregation(round);
                Machine.StartRoundIfReady();
                return;
            }

            using (aggregator)
            {
                using var aggregate = aggregator.Finish();
                var next = BuildModel(_global.Spec, aggregate.State);
                var previousModel = _global;
                var previousState = _globalState;
                _global = next;
                _globalState = SnapshotState(next);
                _validator = new UpdateValidator(_globalState, _global.RepairPoints, new UpdateLimits { MaxModelBytes = Options.MaxModelBytes });
                StateDicts.DisposeAll([previousState]);
                previousModel.Dispose();
                Publish(round.ToString(CultureInfo.InvariantCulture));
                LogRoundAggregated(round, aggregate.Clients.Count, Current.Version);
            }

            _updatesInRound = 0;
            Machine.CompleteAggregation(round);
            Machine.StartRoundIfReady();
        }
    }

    private void Publish(string version)
    {
        byte[] bytes = SafeTensors.ToBytes(ModelFile.ToSafeTensors(_global));
        Current = new GlobalModel(version, bytes, Contracts.Sha256Hex.Compute(bytes));
        // Keep the current and the previous version (a client may still be downloading it).
        foreach (string old in _versions.Keys.Where(k => k != version && !string.Equals(k, PreviousVersion(version), StringComparison.Ordinal)).ToList())
        {
            _versions.Remove(old);
        }

        _versions[version] = Current;
    }

    private static string PreviousVersion(string version) =>
        (int.Parse(version, CultureInfo.InvariantCulture) - 1).ToString(CultureInfo.InvariantCulture);

    private void OnRoundEvent(object? sender, RoundEvent e)
    {
        LogRoundEvent(e.Kind, e.Round, e.Attempt, e.Detail);
        TaskCompletionSource previous;
        lock (_gate)
        {
            if (e.Kind == RoundEventKind.Abandoned)
            {
                // Accepted updates of an abandoned attempt are discarded.
                _aggregator?.Dispose();
                _aggregator = null;
                _updatesInRound = 0;
            }

            previous = _changed;
            _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        previous.TrySetResult();
    }

    private static Refusal? ToRefusal(UpdateAcceptance outcome, string clientId, int round)
    {
        string who = string.Create(CultureInfo.InvariantCulture, $"update from '{clientId}' for round {round}");
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
        var spec = ModelRegistry.DefaultSpec(model.Architecture, c, h, w, model.Classes, model.Hidden.Count > 0 ? model.Hidden : null);
        return ModelRegistry.Create(spec, seed: options.Seed);
    }

    private static ClassifierModel BuildModel(ModelSpec spec, IReadOnlyDictionary<string, Tensor> state)
    {
        var file = new SafeTensorsFile(state.Select(p => TensorConversion.ToEntry(p.Key, p.Value)), spec.ToMetadata());
        return ModelFile.FromSafeTensors(file, "aggregate");
    }

    private static Dictionary<string, Tensor> SnapshotState(ClassifierModel model)
    {
        using var noGrad = no_grad();
        return model.state_dict().ToDictionary(p => p.Key, p => p.Value.detach().clone().DetachFromDisposeScope(), StringComparer.Ordinal);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Round {Round} (attempt {Attempt}): {Kind}, {Detail}")]
    private partial void LogRoundEvent(RoundEventKind kind, int round, int attempt, string detail);

    [LoggerMessage(Level = LogLevel.Information, Message = "Round {Round} aggregated from {Updates} updates; published model version {Version}")]
    private partial void LogRoundAggregated(int round, int updates, string version);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Round {Round} closed without updates; the model is unchanged")]
    private partial void LogNothingToAggregate(int round);
}
