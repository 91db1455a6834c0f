namespace FedRebasin.Federation.Rounds;

/// <summary>Where the coordinator is in the round cycle.</summary>
public enum RoundPhase
{
    /// <summary>Waiting until at least <see cref="RoundSettings.MinClients"/> clients are registered (also between rounds).</summary>
    WaitingForClients,

    /// <summary>The round is published; participants train and upload.</summary>
    Training,

    /// <summary>The round is closed; the coordinator aggregates, repairs and publishes, then calls <see cref="RoundStateMachine.CompleteAggregation"/>.</summary>
    Aggregating,

    /// <summary>
    /// Part of the aggregation: clients measure the merged model's channel statistics on their data (federated repair,
    /// <see cref="RoundStateMachine.BeginStatistics"/>); closes back to <see cref="Aggregating"/> when all answered or at its deadline.
    /// </summary>
    Statistics,

    /// <summary>All <see cref="RoundSettings.Rounds"/> rounds are complete.</summary>
    Done,
}

/// <summary>What a client should do now.</summary>
public enum ClientTaskKind
{
    /// <summary>Train on the global model of <see cref="ClientTask.Round"/> and upload before <see cref="ClientTask.Deadline"/>.</summary>
    Train,

    /// <summary>Measure the merged model of <see cref="ClientTask.Round"/> on local data and answer before <see cref="ClientTask.Deadline"/>.</summary>
    Statistics,

    /// <summary>Nothing to do now; ask again later.</summary>
    Wait,

    /// <summary>Training is over; the client may exit.</summary>
    Done,
}

/// <summary>A client's task.</summary>
/// <param name="Kind">What to do.</param>
/// <param name="Round">The current round (1-based).</param>
/// <param name="Deadline">For <see cref="ClientTaskKind.Train"/> the training deadline, for <see cref="ClientTaskKind.Statistics"/> the statistics deadline; otherwise null.</param>
public sealed record ClientTask(ClientTaskKind Kind, int Round, DateTimeOffset? Deadline);

/// <summary>The outcome of <see cref="RoundStateMachine.AcceptUpdate"/>. Only <see cref="Accepted"/> means the update counts.</summary>
public enum UpdateAcceptance
{
    /// <summary>The update is counted for the round (the first time for this client and round).</summary>
    Accepted,

    /// <summary>The client is not a participant of the open round.</summary>
    NotParticipant,

    /// <summary>The round is not the open one and has not been closed either (a future round, or the round is not published yet).</summary>
    WrongRound,

    /// <summary>This client's update for this round was already accepted; it is not counted again.</summary>
    Duplicate,

    /// <summary>The round (or its attempt) has closed: aggregated, abandoned, or a past round.</summary>
    TooLate,
}

/// <summary>Kinds of entries in <see cref="RoundStateMachine.Events"/>.</summary>
public enum RoundEventKind
{
    /// <summary>Participants were picked and the round was published (WaitingForClients → Training).</summary>
    RoundStarted,

    /// <summary>All participants responded (Training → Aggregating).</summary>
    ClosedAllResponded,

    /// <summary><see cref="RoundSettings.MinResponses"/> were reached and the grace period passed (Training → Aggregating).</summary>
    ClosedAfterGrace,

    /// <summary>The training deadline passed with at least <see cref="RoundSettings.MinResponses"/> (Training → Aggregating).</summary>
    ClosedAtDeadline,

    /// <summary>The training deadline passed with too few responses; non-responders are dropped and the round restarts (Training → WaitingForClients, same round).</summary>
    Abandoned,

    /// <summary>The aggregation of a round completed (Aggregating → WaitingForClients for the next round, or → Done).</summary>
    AggregationCompleted,

    /// <summary>The availability timeout passed with too few clients registered; the machine keeps waiting (WaitingForClients → WaitingForClients).</summary>
    AvailabilityTimedOut,

    /// <summary>A statistics task was handed to the round's responders (Aggregating → Statistics).</summary>
    StatisticsStarted,

    /// <summary>Every asked client answered the statistics task (Statistics → Aggregating).</summary>
    StatisticsClosedAllAnswered,

    /// <summary>The statistics deadline passed; the coordinator goes on with the answers it has (Statistics → Aggregating).</summary>
    StatisticsClosedAtDeadline,

    /// <summary>A client was dropped (it stopped answering); it no longer counts for the open round.</summary>
    ClientDropped,

    /// <summary>A participant was taken out of the open round (its update cannot be used); it stays registered.</summary>
    ParticipantExcluded,

    /// <summary>The round was abandoned <see cref="RoundSettings.MaxAttempts"/> times; the run stops (WaitingForClients → Done, <see cref="RoundSnapshot.StopReason"/> set).</summary>
    GaveUp,
}

/// <summary>One entry of the transition log.</summary>
/// <param name="At">When it happened (from the injected <see cref="TimeProvider"/>).</param>
/// <param name="Kind">What happened.</param>
/// <param name="From">The phase before.</param>
/// <param name="To">The phase after.</param>
/// <param name="Round">The round it concerns.</param>
/// <param name="Attempt">The attempt of that round (0 for the first; incremented by each abandon).</param>
/// <param name="Detail">Human-readable detail (counts, clients).</param>
public sealed record RoundEvent(DateTimeOffset At, RoundEventKind Kind, RoundPhase From, RoundPhase To, int Round, int Attempt, string Detail);

/// <summary>A consistent copy of the machine's state.</summary>
/// <param name="Phase">The current phase.</param>
/// <param name="Round">The current round (1-based): the open one, the one aggregating, the next to start, or the last completed when done.</param>
/// <param name="Attempt">Attempt of the current round (0 unless the round was abandoned).</param>
/// <param name="CompletedRounds">Rounds aggregated so far.</param>
/// <param name="RegisteredClients">Registered client ids, ordinal order.</param>
/// <param name="Participants">Participants of the current attempt, ordinal order (empty while waiting).</param>
/// <param name="Responded">Participants whose update was accepted in the current round, ordinal order.</param>
/// <param name="Dropped">Clients that did not answer the current round in time (over its attempts), ordinal order.</param>
/// <param name="Deadline">Training deadline of the open round, or null.</param>
/// <param name="StatisticsClients">Clients asked for statistics in the current round (empty outside <see cref="RoundPhase.Statistics"/>).</param>
/// <param name="StatisticsAnswered">Of those, the ones that answered.</param>
/// <param name="StopReason">Why the run stopped before its last round (it gave up on a round, see <see cref="RoundSettings.MaxAttempts"/>); null otherwise.</param>
public sealed record RoundSnapshot(
    RoundPhase Phase,
    int Round,
    int Attempt,
    int CompletedRounds,
    IReadOnlyList<string> RegisteredClients,
    IReadOnlyList<string> Participants,
    IReadOnlyList<string> Responded,
    IReadOnlyList<string> Dropped,
    DateTimeOffset? Deadline,
    IReadOnlyList<string> StatisticsClients,
    IReadOnlyList<string> StatisticsAnswered,
    string? StopReason = null);

/// <summary>A completed round as kept in a checkpoint.</summary>
/// <param name="Round">The round number (1-based).</param>
/// <param name="Participants">Its participants (last attempt).</param>
/// <param name="Responded">Participants whose updates were aggregated.</param>
/// <param name="Dropped">Clients that did not answer in time over all attempts.</param>
/// <param name="CompletedAt">When its aggregation completed.</param>
public sealed record CompletedRound(int Round, IReadOnlyList<string> Participants, IReadOnlyList<string> Responded, IReadOnlyList<string> Dropped, DateTimeOffset CompletedAt);

/// <summary>
/// What a coordinator persists to resume after a restart: the last completed round and the history of completed rounds.
/// A plain record (JSON-serializable); a round that was in progress is not kept and is redone.
/// </summary>
/// <param name="LastCompletedRound">The last round whose aggregation completed; 0 when none.</param>
/// <param name="History">The completed rounds, in order; its last entry (if any) has round <paramref name="LastCompletedRound"/>.</param>
public sealed record RoundCheckpoint(int LastCompletedRound, IReadOnlyList<CompletedRound> History);
