using System.Globalization;

namespace FedRebasin.Federation.Rounds;

/// <summary>
/// The coordinator's round cycle: <see cref="RoundPhase.WaitingForClients"/> → <see cref="RoundPhase.Training"/>(r) →
/// <see cref="RoundPhase.Aggregating"/>(r) → the next round or <see cref="RoundPhase.Done"/>. Rounds are numbered from 1.
/// </summary>
/// <remarks>
/// <para>Pure logic, no I/O: time comes only from the injected <see cref="TimeProvider"/>, and time-based transitions
/// happen only in <see cref="OnTick"/> (the host calls it periodically). Every public member is thread-safe (one lock);
/// <see cref="EventOccurred"/> is raised after the lock is released, in order.</para>
/// <para>Waiting: a round starts (from <see cref="StartRoundIfReady"/> or <see cref="OnTick"/>) once at least
/// <see cref="RoundSettings.MinClients"/> clients are registered. If <see cref="RoundSettings.AvailabilityTimeout"/>
/// passes first, <see cref="OnTick"/> logs <see cref="RoundEventKind.AvailabilityTimedOut"/> and keeps waiting (the
/// timer restarts, so the entry repeats once per timeout); a round never starts with fewer than MinClients.</para>
/// <para>Training closes when every participant has responded (at once, inside <see cref="AcceptUpdate"/>); or, in
/// <see cref="OnTick"/>, when <see cref="RoundSettings.MinResponses"/> were reached at least
/// <see cref="RoundSettings.GracePeriod"/> ago; or at the training deadline. At the deadline with fewer than MinResponses
/// the attempt is abandoned: non-responders are added to <see cref="RoundSnapshot.Dropped"/>, accepted updates of the
/// attempt are discarded, and the same round restarts with a new sample (attempt + 1) as soon as enough clients are
/// registered (in the same tick if they are).</para>
/// </remarks>
public sealed class RoundStateMachine
{
    private readonly Lock _gate = new();
    private readonly TimeProvider _time;
    private readonly SortedDictionary<string, long> _registered = new(StringComparer.Ordinal);
    private readonly SortedSet<string> _participants = new(StringComparer.Ordinal);
    private readonly SortedSet<string> _responded = new(StringComparer.Ordinal);
    private readonly SortedSet<string> _dropped = new(StringComparer.Ordinal);
    private readonly SortedSet<string> _statisticsClients = new(StringComparer.Ordinal);
    private readonly SortedSet<string> _statisticsAnswered = new(StringComparer.Ordinal);
    private DateTimeOffset _statisticsDeadline;
    private readonly List<RoundEvent> _events = [];
    private readonly List<CompletedRound> _history = [];
    private RoundPhase _phase;
    private int _round;
    private int _attempt;
    private DateTimeOffset _waitingSince;
    private DateTimeOffset _deadline;
    private DateTimeOffset? _quorumAt;
    private string? _stopReason;

    /// <summary>Creates a machine at round 1, waiting for clients.</summary>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The settings are invalid (see <see cref="RoundSettings.Validate"/>).</exception>
    public RoundStateMachine(RoundSettings settings, TimeProvider timeProvider)
        : this(settings, timeProvider, new RoundCheckpoint(0, []))
    {
    }

    private RoundStateMachine(RoundSettings settings, TimeProvider timeProvider, RoundCheckpoint checkpoint)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(timeProvider);
        settings.Validate();
        Settings = settings;
        _time = timeProvider;
        _history.AddRange(checkpoint.History);
        _waitingSince = _time.GetUtcNow();
        if (settings.Rounds is int total && checkpoint.LastCompletedRound >= total)
        {
            _phase = RoundPhase.Done;
            _round = checkpoint.LastCompletedRound;
        }
        else
        {
            _phase = RoundPhase.WaitingForClients;
            _round = checkpoint.LastCompletedRound + 1;
        }
    }

    /// <summary>Raised after each entry is added to <see cref="Events"/>, outside the lock.</summary>
    public event EventHandler<RoundEvent>? EventOccurred;

    /// <summary>The validated settings.</summary>
    public RoundSettings Settings { get; }

    /// <summary>A consistent copy of the current state.</summary>
    public RoundSnapshot Snapshot
    {
        get
        {
            lock (_gate)
            {
                return new RoundSnapshot(
                    _phase,
                    _round,
                    _attempt,
                    _phase == RoundPhase.Done ? _round : _round - 1,
                    [.. _registered.Keys],
                    [.. _participants],
                    [.. _responded],
                    [.. _dropped],
                    _phase == RoundPhase.Training ? _deadline : _phase == RoundPhase.Statistics ? _statisticsDeadline : null,
                    [.. _statisticsClients],
                    [.. _statisticsAnswered],
                    _stopReason);
            }
        }
    }

    /// <summary>A copy of the transition log, oldest first.</summary>
    public IReadOnlyList<RoundEvent> Events
    {
        get
        {
            lock (_gate)
            {
                return [.. _events];
            }
        }
    }

    /// <summary>Resumes after the last complete round of <paramref name="checkpoint"/>: waiting for clients at the next round, or done.</summary>
    /// <remarks>Registrations are not part of a checkpoint; clients register again.</remarks>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">The checkpoint is inconsistent (negative round, or history not in increasing order up to the last completed round).</exception>
    /// <exception cref="ArgumentOutOfRangeException">The settings are invalid.</exception>
    public static RoundStateMachine FromCheckpoint(RoundSettings settings, TimeProvider timeProvider, RoundCheckpoint checkpoint)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        ArgumentNullException.ThrowIfNull(checkpoint.History, nameof(checkpoint));
        if (checkpoint.LastCompletedRound < 0)
        {
            throw new ArgumentException($"Checkpoint LastCompletedRound must not be negative, not {checkpoint.LastCompletedRound.ToString(CultureInfo.InvariantCulture)}.", nameof(checkpoint));
        }

        int previous = 0;
        foreach (var completed in checkpoint.History)
        {
            if (completed is null || completed.Round <= previous || completed.Round > checkpoint.LastCompletedRound)
            {
                throw new ArgumentException("Checkpoint History must list rounds in increasing order, none after LastCompletedRound.", nameof(checkpoint));
            }

            previous = completed.Round;
        }

        if (checkpoint.History.Count > 0 && previous != checkpoint.LastCompletedRound)
        {
            throw new ArgumentException("Checkpoint History must end with LastCompletedRound.", nameof(checkpoint));
        }

        return new RoundStateMachine(settings, timeProvider, checkpoint);
    }

    /// <summary>The state to persist: the last completed round and the completed rounds' history.</summary>
    public RoundCheckpoint ToCheckpoint()
    {
        lock (_gate)
        {
            int last = _phase == RoundPhase.Done ? _round : _round - 1;
            return new RoundCheckpoint(last, [.. _history]);
        }
    }

    /// <summary>Registers a client, or updates its sample count. A client registered during a round can be picked from the next attempt on.</summary>
    /// <exception cref="ArgumentException"><paramref name="clientId"/> is null or white space.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="sampleCount"/> is not positive.</exception>
    public void RegisterClient(string clientId, long sampleCount)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(clientId);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(sampleCount);
        lock (_gate)
        {
            _registered[clientId] = sampleCount;
        }
    }

    /// <summary>
    /// Removes a client's registration (it left or stopped answering). Returns whether it was registered. A participant of
    /// the open round stays one until the round closes (it is then dropped unless it responded); it is not picked again.
    /// </summary>
    public bool UnregisterClient(string clientId)
    {
        ArgumentNullException.ThrowIfNull(clientId);
        lock (_gate)
        {
            return _registered.Remove(clientId);
        }
    }

    /// <summary>The sample count a client registered with, or null if it is not registered.</summary>
    public long? GetSampleCount(string clientId)
    {
        ArgumentNullException.ThrowIfNull(clientId);
        lock (_gate)
        {
            return _registered.TryGetValue(clientId, out long count) ? count : null;
        }
    }

    /// <summary>
    /// When waiting and at least <see cref="RoundSettings.MinClients"/> clients are registered, picks
    /// max(MinClients, ⌈FractionPerRound · registered⌉) participants with the seeded sampler and publishes the round.
    /// </summary>
    /// <returns>True when a round was started by this call; false otherwise (not waiting, or too few clients).</returns>
    public bool StartRoundIfReady()
    {
        var raised = new List<RoundEvent>();
        bool started;
        lock (_gate)
        {
            started = TryStart(raised);
        }

        Raise(raised);
        return started;
    }

    /// <summary>Drives the time-based transitions (see the remarks on <see cref="RoundStateMachine"/>). Call it periodically.</summary>
    public void OnTick()
    {
        var raised = new List<RoundEvent>();
        lock (_gate)
        {
            var now = _time.GetUtcNow();
            if (_phase == RoundPhase.WaitingForClients)
            {
                if (!TryStart(raised) && now - _waitingSince >= Settings.AvailabilityTimeout)
                {
                    Log(raised, RoundEventKind.AvailabilityTimedOut, _phase, Describe($"{_registered.Count} of {Settings.MinClients} clients registered after {now - _waitingSince}; still waiting"));
                    _waitingSince = now;
                }
            }
            else if (_phase == RoundPhase.Statistics && now >= _statisticsDeadline)
            {
                CloseStatistics(raised, RoundEventKind.StatisticsClosedAtDeadline);
            }
            else if (_phase == RoundPhase.Training)
            {
                if (_quorumAt is DateTimeOffset quorumAt && now - quorumAt >= Settings.GracePeriod && now < _deadline)
                {
                    Close(raised, RoundEventKind.ClosedAfterGrace);
                }
                else if (now >= _deadline)
                {
                    if (_responded.Count >= Settings.MinResponses)
                    {
                        Close(raised, RoundEventKind.ClosedAtDeadline);
                    }
                    else
                    {
                        AbandonAndRetry(raised);
                    }
                }
            }
        }

        Raise(raised);
    }

    /// <summary>What <paramref name="clientId"/> should do now: Train(r) for a participant of the open round that has not responded yet, Done after the last round, otherwise Wait.</summary>
    public ClientTask GetTaskFor(string clientId)
    {
        ArgumentNullException.ThrowIfNull(clientId);
        lock (_gate)
        {
            if (_phase == RoundPhase.Done)
            {
                return new ClientTask(ClientTaskKind.Done, _round, null);
            }

            if (_phase == RoundPhase.Training && _participants.Contains(clientId) && !_responded.Contains(clientId))
            {
                return new ClientTask(ClientTaskKind.Train, _round, _deadline);
            }

            if (_phase == RoundPhase.Statistics && _statisticsClients.Contains(clientId) && !_statisticsAnswered.Contains(clientId))
            {
                return new ClientTask(ClientTaskKind.Statistics, _round, _statisticsDeadline);
            }

            return new ClientTask(ClientTaskKind.Wait, _round, null);
        }
    }

    /// <summary>
    /// Records that <paramref name="clientId"/> uploaded a (validated) update for <paramref name="round"/>. Idempotent by
    /// (client, round): once accepted, the same pair returns <see cref="UpdateAcceptance.Duplicate"/> and is never counted
    /// again. Checks, in order: Duplicate; TooLate for a past round, when done, or when the current round's attempt closed;
    /// WrongRound for a future round or one not published yet; NotParticipant; then Accepted. The last missing participant's
    /// update closes the round at once.
    /// </summary>
    public UpdateAcceptance AcceptUpdate(string clientId, int round)
    {
        ArgumentNullException.ThrowIfNull(clientId);
        var raised = new List<RoundEvent>();
        UpdateAcceptance result;
        lock (_gate)
        {
            result = Check(clientId, round);
            if (result == UpdateAcceptance.Accepted)
            {
                _responded.Add(clientId);
                if (_responded.Count == Settings.MinResponses)
                {
                    _quorumAt = _time.GetUtcNow();
                }

                if (_responded.Count == _participants.Count)
                {
                    Close(raised, RoundEventKind.ClosedAllResponded);
                }
            }
        }

        Raise(raised);
        return result;
    }

    /// <summary>
    /// While aggregating <paramref name="round"/>, asks <paramref name="clients"/> (usually the round's responders) to
    /// measure the merged model: phase <see cref="RoundPhase.Statistics"/> until all answered
    /// (<see cref="AcceptStatistics"/>) or <paramref name="deadline"/> passed (<see cref="OnTick"/>), then back to
    /// <see cref="RoundPhase.Aggregating"/>. Registered clients only; at least one is needed.
    /// </summary>
    /// <exception cref="InvalidOperationException">The machine is not aggregating <paramref name="round"/>, or none of the clients is registered.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="deadline"/> is not positive.</exception>
    public void BeginStatistics(int round, IEnumerable<string> clients, TimeSpan deadline)
    {
        ArgumentNullException.ThrowIfNull(clients);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(deadline, TimeSpan.Zero);
        var raised = new List<RoundEvent>();
        lock (_gate)
        {
            if (_phase != RoundPhase.Aggregating || round != _round)
            {
                throw new InvalidOperationException(string.Create(CultureInfo.InvariantCulture, $"Cannot ask for statistics in round {round}: the machine is {_phase} in round {_round}."));
            }

            var asked = clients.Where(_registered.ContainsKey).ToList();
            if (asked.Count == 0)
            {
                throw new InvalidOperationException(string.Create(CultureInfo.InvariantCulture, $"Cannot ask for statistics in round {round}: none of the clients is registered."));
            }

            _statisticsClients.Clear();
            _statisticsAnswered.Clear();
            _statisticsClients.UnionWith(asked);
            _statisticsDeadline = _time.GetUtcNow() + deadline;
            Log(raised, RoundEventKind.StatisticsStarted, RoundPhase.Statistics, Describe($"asked {string.Join(", ", _statisticsClients)}"));
            _phase = RoundPhase.Statistics;
        }

        Raise(raised);
    }

    /// <summary>
    /// Records a client's answer to the statistics task of <paramref name="round"/>. Idempotent like
    /// <see cref="AcceptUpdate"/>: Duplicate once answered; TooLate when the statistics phase of that round closed;
    /// WrongRound for another round or outside a statistics phase; NotParticipant when the client was not asked. The last
    /// missing answer closes the phase at once.
    /// </summary>
    public UpdateAcceptance AcceptStatistics(string clientId, int round)
    {
        ArgumentNullException.ThrowIfNull(clientId);
        var raised = new List<RoundEvent>();
        UpdateAcceptance result;
        lock (_gate)
        {
            if (round == _round && _statisticsAnswered.Contains(clientId))
            {
                result = UpdateAcceptance.Duplicate;
            }
            else if (round < _round || (round == _round && _phase != RoundPhase.Statistics && _statisticsClients.Count > 0))
            {
                result = UpdateAcceptance.TooLate;
            }
            else if (round != _round || _phase != RoundPhase.Statistics)
            {
                result = UpdateAcceptance.WrongRound;
            }
            else if (!_statisticsClients.Contains(clientId))
            {
                result = UpdateAcceptance.NotParticipant;
            }
            else
            {
                result = UpdateAcceptance.Accepted;
                _statisticsAnswered.Add(clientId);
                if (_statisticsAnswered.Count == _statisticsClients.Count)
                {
                    CloseStatistics(raised, RoundEventKind.StatisticsClosedAllAnswered);
                }
            }
        }

        Raise(raised);
        return result;
    }

    /// <summary>
    /// Drops a client that stopped answering: it is unregistered, and in the open round it stops counting as a
    /// participant (a training round whose remaining participants all responded closes now, or is abandoned now when
    /// they are too few or none are left) or as a client asked for statistics. Returns whether it was registered.
    /// </summary>
    public bool DropClient(string clientId, string reason)
    {
        ArgumentNullException.ThrowIfNull(clientId);
        var raised = new List<RoundEvent>();
        bool known;
        lock (_gate)
        {
            known = _registered.Remove(clientId);
            if (known)
            {
                Log(raised, RoundEventKind.ClientDropped, _phase, Describe($"{clientId}: {reason}"));
            }

            if (_phase == RoundPhase.Training && _participants.Contains(clientId) && !_responded.Contains(clientId))
            {
                _participants.Remove(clientId);
                _dropped.Add(clientId);
                CloseIfNobodyLeft(raised);
            }
            else if (_phase == RoundPhase.Statistics && _statisticsClients.Contains(clientId) && !_statisticsAnswered.Contains(clientId))
            {
                _statisticsClients.Remove(clientId);
                if (_statisticsAnswered.Count == _statisticsClients.Count)
                {
                    CloseStatistics(raised, RoundEventKind.StatisticsClosedAllAnswered);
                }
            }
        }

        Raise(raised);
        return known;
    }

    /// <summary>
    /// Takes a participant out of the open training round without unregistering it, e.g. because its update was refused
    /// for content a retry cannot fix (local training diverged to NaN). The round then closes as soon as every remaining
    /// participant responded (and at least <see cref="RoundSettings.MinResponses"/> did), or is abandoned at once when too few
    /// did or nobody is left; the client may take part again from the next round (or the next attempt). Returns whether it was a participant still expected in the open round.
    /// </summary>
    public bool ExcludeFromRound(string clientId, int round, string reason)
    {
        ArgumentNullException.ThrowIfNull(clientId);
        var raised = new List<RoundEvent>();
        bool excluded = false;
        lock (_gate)
        {
            if (_phase == RoundPhase.Training && round == _round && _participants.Contains(clientId) && !_responded.Contains(clientId))
            {
                excluded = true;
                _participants.Remove(clientId);
                _dropped.Add(clientId);
                Log(raised, RoundEventKind.ParticipantExcluded, _phase, Describe($"{clientId}: {reason}"));
                CloseIfNobodyLeft(raised);
            }
        }

        Raise(raised);
        return excluded;
    }

    /// <summary>Ends the aggregation of <paramref name="round"/>: moves to waiting for the next round, or to Done after <see cref="RoundSettings.Rounds"/>.</summary>
    /// <exception cref="InvalidOperationException">The machine is not aggregating <paramref name="round"/>.</exception>
    public void CompleteAggregation(int round)
    {
        var raised = new List<RoundEvent>();
        lock (_gate)
        {
            if (_phase != RoundPhase.Aggregating || round != _round)
            {
                throw new InvalidOperationException(string.Create(CultureInfo.InvariantCulture, $"Cannot complete the aggregation of round {round}: the machine is {_phase} in round {_round}."));
            }

            var now = _time.GetUtcNow();
            _history.Add(new CompletedRound(_round, [.. _participants], [.. _responded], [.. _dropped], now));
            bool done = Settings.Rounds is int total && _round >= total;
            var to = done ? RoundPhase.Done : RoundPhase.WaitingForClients;
            Log(raised, RoundEventKind.AggregationCompleted, to, Describe($"{_responded.Count} updates aggregated"));
            _phase = to;
            _participants.Clear();
            _responded.Clear();
            _dropped.Clear();
            _statisticsClients.Clear();
            _statisticsAnswered.Clear();
            _quorumAt = null;
            _attempt = 0;
            _waitingSince = now;
            if (!done)
            {
                _round++;
            }
        }

        Raise(raised);
    }

    private UpdateAcceptance Check(string clientId, int round)
    {
        if (round == _round && _responded.Contains(clientId))
        {
            return UpdateAcceptance.Duplicate;
        }

        if (round < _round)
        {
            return _history.Exists(h => h.Round == round && h.Responded.Contains(clientId))
                ? UpdateAcceptance.Duplicate
                : UpdateAcceptance.TooLate;
        }

        if (round > _round)
        {
            return UpdateAcceptance.WrongRound;
        }

        switch (_phase)
        {
            case RoundPhase.Done:
                return _history.Exists(h => h.Round == round && h.Responded.Contains(clientId))
                    ? UpdateAcceptance.Duplicate
                    : UpdateAcceptance.TooLate;
            case RoundPhase.Aggregating or RoundPhase.Statistics:
                return UpdateAcceptance.TooLate;
            case RoundPhase.WaitingForClients:
                // Only an abandoned attempt of this round has been published before.
                return _attempt > 0 ? UpdateAcceptance.TooLate : UpdateAcceptance.WrongRound;
            default:
                return _participants.Contains(clientId) ? UpdateAcceptance.Accepted : UpdateAcceptance.NotParticipant;
        }
    }

    private bool TryStart(List<RoundEvent> raised)
    {
        if (_phase != RoundPhase.WaitingForClients || _registered.Count < Settings.MinClients)
        {
            return false;
        }

        int registered = _registered.Count;
        // The small epsilon keeps 0.3 · 10 = 3.0000000000000004 at 3.
        int wanted = (int)Math.Ceiling((Settings.FractionPerRound * registered) - 1e-9);
        int count = Math.Min(registered, Math.Max(Settings.MinClients, wanted));
        _participants.Clear();
        foreach (string id in Sample([.. _registered.Keys], count, Settings.Seed, _round, _attempt))
        {
            _participants.Add(id);
        }

        _responded.Clear();
        _quorumAt = null;
        _deadline = _time.GetUtcNow() + Settings.TrainingDeadline;
        Log(raised, RoundEventKind.RoundStarted, RoundPhase.Training, Describe($"participants {string.Join(", ", _participants)} of {registered} registered"));
        _phase = RoundPhase.Training;
        return true;
    }

    private void Close(List<RoundEvent> raised, RoundEventKind kind)
    {
        foreach (string id in _participants)
        {
            if (!_responded.Contains(id))
            {
                _dropped.Add(id);
            }
        }

        Log(raised, kind, RoundPhase.Aggregating, Describe($"{_responded.Count} of {_participants.Count} responded"));
        _phase = RoundPhase.Aggregating;
    }

    private void CloseStatistics(List<RoundEvent> raised, RoundEventKind kind)
    {
        Log(raised, kind, RoundPhase.Aggregating, Describe($"{_statisticsAnswered.Count} of {_statisticsClients.Count} answered"));
        _phase = RoundPhase.Aggregating;
    }

    /// <summary>
    /// After a participant left the open round: when every remaining one has responded, nothing more can arrive, so the
    /// round closes (enough responses) or is abandoned now rather than at its deadline (too few, or nobody left).
    /// </summary>
    private void CloseIfNobodyLeft(List<RoundEvent> raised)
    {
        if (_responded.Count < _participants.Count)
        {
            return;
        }

        if (_participants.Count > 0 && _responded.Count >= Settings.MinResponses)
        {
            Close(raised, RoundEventKind.ClosedAllResponded);
        }
        else
        {
            AbandonAndRetry(raised);
        }
    }

    /// <summary>Abandons the open attempt, then starts the next one, or gives up after <see cref="RoundSettings.MaxAttempts"/>.</summary>
    private void AbandonAndRetry(List<RoundEvent> raised)
    {
        Abandon(raised);
        if (Settings.MaxAttempts is int most && _attempt >= most)
        {
            _stopReason = Describe($"round {_round} was abandoned {_attempt} times (last: {_events[^1].Detail})");
            Log(raised, RoundEventKind.GaveUp, RoundPhase.Done, _stopReason);
            _phase = RoundPhase.Done;
            _round--;
            return;
        }

        TryStart(raised);
    }

    private void Abandon(List<RoundEvent> raised)
    {
        var missing = _participants.Where(id => !_responded.Contains(id)).ToList();
        _dropped.UnionWith(missing);
        Log(raised, RoundEventKind.Abandoned, RoundPhase.WaitingForClients, Describe($"{_responded.Count} of {Settings.MinResponses} required responses; {(missing.Count > 0 ? "dropped " + string.Join(", ", missing) : "no participant left (every one excluded or dropped)")}"));
        _phase = RoundPhase.WaitingForClients;
        _participants.Clear();
        _responded.Clear();
        _quorumAt = null;
        _attempt++;
        _waitingSince = _time.GetUtcNow();
    }

    private void Log(List<RoundEvent> raised, RoundEventKind kind, RoundPhase to, string detail)
    {
        var entry = new RoundEvent(_time.GetUtcNow(), kind, _phase, to, _round, _attempt, detail);
        _events.Add(entry);
        raised.Add(entry);
    }

    private static string Describe(FormattableString text) => FormattableString.Invariant(text);

    private void Raise(List<RoundEvent> raised)
    {
        foreach (var entry in raised)
        {
            EventOccurred?.Invoke(this, entry);
        }
    }

    /// <summary>Deterministic partial Fisher–Yates over the ordinally sorted ids, seeded by (seed, round, attempt).</summary>
    private static IEnumerable<string> Sample(string[] sortedIds, int count, int seed, int round, int attempt)
    {
        int mixed = unchecked((seed * 1_000_003) + (round * 7_919) + (attempt * 104_729));
        var random = new Random(mixed);
        for (int i = 0; i < count; i++)
        {
            int j = random.Next(i, sortedIds.Length);
            (sortedIds[i], sortedIds[j]) = (sortedIds[j], sortedIds[i]);
        }

        return sortedIds.Take(count);
    }
}
