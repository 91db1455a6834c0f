using System.Text.Json;
using FedRebasin.Federation.Rounds;
using Microsoft.Extensions.Time.Testing;

namespace FedRebasin.Federation.Tests;

public sealed class RoundStateMachineTests
{
    private static readonly string[] s_fourClients = ["a", "b", "c", "d"];

    private static RoundSettings Settings(int? rounds = 3, int minClients = 4, double fraction = 1.0, int minResponses = 2) => new()
    {
        Rounds = rounds,
        MinClients = minClients,
        FractionPerRound = fraction,
        AvailabilityTimeout = TimeSpan.FromMinutes(1),
        TrainingDeadline = TimeSpan.FromMinutes(10),
        MinResponses = minResponses,
        GracePeriod = TimeSpan.FromSeconds(30),
        Seed = 42,
    };

    private static RoundStateMachine StartedMachine(FakeTimeProvider time, RoundSettings settings)
    {
        var machine = new RoundStateMachine(settings, time);
        foreach (string id in s_fourClients)
        {
            machine.RegisterClient(id, 100);
        }

        Assert.True(machine.StartRoundIfReady());
        return machine;
    }

    [Fact]
    public void Run_ThreeRoundsFourClients_EndsDone()
    {
        // Arrange
        var time = new FakeTimeProvider();
        var machine = StartedMachine(time, Settings());

        // Act
        for (int round = 1; round <= 3; round++)
        {
            if (round > 1)
            {
                machine.OnTick();
            }

            Assert.Equal(RoundPhase.Training, machine.Snapshot.Phase);
            Assert.Equal(round, machine.Snapshot.Round);
            foreach (string id in s_fourClients)
            {
                Assert.Equal(new ClientTask(ClientTaskKind.Train, round, time.GetUtcNow() + TimeSpan.FromMinutes(10)), machine.GetTaskFor(id));
                Assert.Equal(UpdateAcceptance.Accepted, machine.AcceptUpdate(id, round));
                Assert.Equal(ClientTaskKind.Wait, machine.GetTaskFor(id).Kind);
            }

            Assert.Equal(RoundPhase.Aggregating, machine.Snapshot.Phase);
            machine.CompleteAggregation(round);
        }

        // Assert
        var snapshot = machine.Snapshot;
        Assert.Equal(RoundPhase.Done, snapshot.Phase);
        Assert.Equal(3, snapshot.CompletedRounds);
        Assert.Equal(ClientTaskKind.Done, machine.GetTaskFor("a").Kind);
        Assert.False(machine.StartRoundIfReady());
        Assert.Equal(
            [
                RoundEventKind.RoundStarted, RoundEventKind.ClosedAllResponded, RoundEventKind.AggregationCompleted,
                RoundEventKind.RoundStarted, RoundEventKind.ClosedAllResponded, RoundEventKind.AggregationCompleted,
                RoundEventKind.RoundStarted, RoundEventKind.ClosedAllResponded, RoundEventKind.AggregationCompleted,
            ],
            machine.Events.Select(e => e.Kind));
        Assert.Equal(RoundPhase.Done, machine.Events[^1].To);
    }

    [Fact]
    public void EventOccurred_Transitions_RaisedInOrder()
    {
        // Arrange
        var time = new FakeTimeProvider();
        var machine = new RoundStateMachine(Settings(rounds: 1, minClients: 1, minResponses: 1), time);
        var seen = new List<RoundEventKind>();
        machine.EventOccurred += (_, e) => seen.Add(e.Kind);
        machine.RegisterClient("a", 5);

        // Act
        machine.StartRoundIfReady();
        machine.AcceptUpdate("a", 1);
        machine.CompleteAggregation(1);

        // Assert
        Assert.Equal([RoundEventKind.RoundStarted, RoundEventKind.ClosedAllResponded, RoundEventKind.AggregationCompleted], seen);
    }

    [Fact]
    public void StartRoundIfReady_HalfFraction_PicksTwoOfFourDeterministically()
    {
        // Arrange
        var settings = Settings(minClients: 2, fraction: 0.5);

        // Act
        var first = StartedMachine(new FakeTimeProvider(), settings).Snapshot.Participants;
        var second = StartedMachine(new FakeTimeProvider(), settings).Snapshot.Participants;
        var picks = Enumerable.Range(0, 20)
            .Select(seed => string.Join(",", StartedMachine(new FakeTimeProvider(), settings with { Seed = seed }).Snapshot.Participants))
            .Distinct()
            .Count();

        // Assert
        Assert.Equal(2, first.Count);
        Assert.Equal(first, second);
        Assert.All(first, id => Assert.Contains(id, s_fourClients));
        Assert.True(picks > 1, "different seeds should pick different participants");
    }

    [Fact]
    public void StartRoundIfReady_FractionTimesCountNotExact_RoundsUpWithoutFloatingError()
    {
        // Arrange
        var machine = new RoundStateMachine(Settings(minClients: 1, fraction: 0.3, minResponses: 1), new FakeTimeProvider());
        for (int i = 0; i < 10; i++)
        {
            machine.RegisterClient($"c{i}", 1);
        }

        // Act
        machine.StartRoundIfReady();

        // Assert
        Assert.Equal(3, machine.Snapshot.Participants.Count);
    }

    [Fact]
    public void StartRoundIfReady_SmallFraction_PicksAtLeastMinClients()
    {
        // Act
        var machine = StartedMachine(new FakeTimeProvider(), Settings(minClients: 3, fraction: 0.1));

        // Assert
        Assert.Equal(3, machine.Snapshot.Participants.Count);
    }

    [Fact]
    public void AcceptUpdate_Retry_IsDuplicateAndCountedOnce()
    {
        // Arrange
        var machine = StartedMachine(new FakeTimeProvider(), Settings());

        // Act
        var first = machine.AcceptUpdate("a", 1);
        var retry = machine.AcceptUpdate("a", 1);

        // Assert
        Assert.Equal(UpdateAcceptance.Accepted, first);
        Assert.Equal(UpdateAcceptance.Duplicate, retry);
        Assert.Equal(["a"], machine.Snapshot.Responded);
    }

    [Fact]
    public void AcceptUpdate_RetryAfterRoundCompleted_IsDuplicate()
    {
        // Arrange
        var machine = StartedMachine(new FakeTimeProvider(), Settings());
        foreach (string id in s_fourClients)
        {
            machine.AcceptUpdate(id, 1);
        }

        machine.CompleteAggregation(1);

        // Act
        var retry = machine.AcceptUpdate("b", 1);

        // Assert
        Assert.Equal(UpdateAcceptance.Duplicate, retry);
    }

    [Fact]
    public void AcceptUpdate_WrongRoundOrNonParticipant_Refused()
    {
        // Arrange
        var machine = StartedMachine(new FakeTimeProvider(), Settings(minClients: 2, fraction: 0.5));
        string outsider = s_fourClients.Except(machine.Snapshot.Participants).First();
        string participant = machine.Snapshot.Participants[0];

        // Act
        var wrongRound = machine.AcceptUpdate(participant, 2);
        var notParticipant = machine.AcceptUpdate(outsider, 1);
        var unknown = machine.AcceptUpdate("zz", 1);

        // Assert
        Assert.Equal(UpdateAcceptance.WrongRound, wrongRound);
        Assert.Equal(UpdateAcceptance.NotParticipant, notParticipant);
        Assert.Equal(UpdateAcceptance.NotParticipant, unknown);
        Assert.Equal(ClientTaskKind.Wait, machine.GetTaskFor(outsider).Kind);
        Assert.Empty(machine.Snapshot.Responded);
    }

    [Fact]
    public void AcceptUpdate_BeforeFirstRoundPublished_IsWrongRound()
    {
        // Arrange
        var machine = new RoundStateMachine(Settings(), new FakeTimeProvider());
        machine.RegisterClient("a", 1);

        // Act
        var result = machine.AcceptUpdate("a", 1);

        // Assert
        Assert.Equal(UpdateAcceptance.WrongRound, result);
    }

    [Fact]
    public void OnTick_DeadlineWithEnoughResponses_AggregatesAndDropsTheRest()
    {
        // Arrange
        var time = new FakeTimeProvider();
        var machine = StartedMachine(time, Settings(minResponses: 2) with { GracePeriod = TimeSpan.FromHours(1) });
        machine.AcceptUpdate("a", 1);
        machine.AcceptUpdate("b", 1);

        // Act
        time.Advance(TimeSpan.FromMinutes(10) - TimeSpan.FromSeconds(1));
        machine.OnTick();
        var before = machine.Snapshot.Phase;
        time.Advance(TimeSpan.FromSeconds(1));
        machine.OnTick();

        // Assert
        Assert.Equal(RoundPhase.Training, before);
        var snapshot = machine.Snapshot;
        Assert.Equal(RoundPhase.Aggregating, snapshot.Phase);
        Assert.Equal(["c", "d"], snapshot.Dropped);
        Assert.Equal(RoundEventKind.ClosedAtDeadline, machine.Events[^1].Kind);
        Assert.Equal(UpdateAcceptance.TooLate, machine.AcceptUpdate("c", 1));
    }

    [Fact]
    public void OnTick_DeadlineWithTooFewResponses_AbandonsAndRestartsRound()
    {
        // Arrange
        var time = new FakeTimeProvider();
        var machine = StartedMachine(time, Settings(minResponses: 2));
        machine.AcceptUpdate("a", 1);

        // Act
        time.Advance(TimeSpan.FromMinutes(10));
        machine.OnTick();

        // Assert
        var snapshot = machine.Snapshot;
        Assert.Equal(RoundPhase.Training, snapshot.Phase);
        Assert.Equal(1, snapshot.Round);
        Assert.Equal(1, snapshot.Attempt);
        Assert.Equal(["b", "c", "d"], snapshot.Dropped);
        Assert.Empty(snapshot.Responded);
        Assert.Equal(time.GetUtcNow() + TimeSpan.FromMinutes(10), snapshot.Deadline);
        Assert.Equal([RoundEventKind.RoundStarted, RoundEventKind.Abandoned, RoundEventKind.RoundStarted], machine.Events.Select(e => e.Kind));
        Assert.Equal(ClientTaskKind.Train, machine.GetTaskFor("a").Kind);
    }

    [Fact]
    public void OnTick_AbandonedWithTooFewClientsLeft_WaitsAndLateUpdateIsTooLate()
    {
        // Arrange
        var time = new FakeTimeProvider();
        var machine = new RoundStateMachine(Settings(minClients: 2, minResponses: 2), time);
        machine.RegisterClient("a", 1);
        machine.RegisterClient("b", 1);
        machine.StartRoundIfReady();
        machine.AcceptUpdate("a", 1);
        machine.UnregisterClient("b");

        // Act
        time.Advance(TimeSpan.FromMinutes(10));
        machine.OnTick();
        var late = machine.AcceptUpdate("b", 1);
        var retry = machine.AcceptUpdate("a", 1);

        // Assert
        var snapshot = machine.Snapshot;
        Assert.Equal(RoundPhase.WaitingForClients, snapshot.Phase);
        Assert.Equal(1, snapshot.Round);
        Assert.Equal(["b"], snapshot.Dropped);
        Assert.Equal(UpdateAcceptance.TooLate, late);
        Assert.Equal(UpdateAcceptance.TooLate, retry);
        Assert.Equal(RoundEventKind.Abandoned, machine.Events[^1].Kind);
    }

    [Fact]
    public void OnTick_GracePeriodAfterMinResponses_ClosesRound()
    {
        // Arrange
        var time = new FakeTimeProvider();
        var machine = StartedMachine(time, Settings(minResponses: 2));
        time.Advance(TimeSpan.FromMinutes(1));
        machine.AcceptUpdate("a", 1);
        time.Advance(TimeSpan.FromMinutes(1));
        machine.AcceptUpdate("b", 1);

        // Act
        time.Advance(TimeSpan.FromSeconds(29));
        machine.OnTick();
        var inGrace = machine.Snapshot.Phase;
        Assert.Equal(UpdateAcceptance.Accepted, machine.AcceptUpdate("c", 1));
        time.Advance(TimeSpan.FromSeconds(1));
        machine.OnTick();

        // Assert
        Assert.Equal(RoundPhase.Training, inGrace);
        var snapshot = machine.Snapshot;
        Assert.Equal(RoundPhase.Aggregating, snapshot.Phase);
        Assert.Equal(["a", "b", "c"], snapshot.Responded);
        Assert.Equal(["d"], snapshot.Dropped);
        Assert.Equal(RoundEventKind.ClosedAfterGrace, machine.Events[^1].Kind);
    }

    [Fact]
    public void OnTick_AvailabilityTimeout_StaysWaitingAndLogsOncePerTimeout()
    {
        // Arrange
        var time = new FakeTimeProvider();
        var machine = new RoundStateMachine(Settings(minClients: 3), time);
        machine.RegisterClient("a", 1);

        // Act
        time.Advance(TimeSpan.FromSeconds(59));
        machine.OnTick();
        int beforeTimeout = machine.Events.Count;
        time.Advance(TimeSpan.FromSeconds(1));
        machine.OnTick();
        machine.OnTick();
        time.Advance(TimeSpan.FromMinutes(1));
        machine.OnTick();

        // Assert
        Assert.Equal(0, beforeTimeout);
        Assert.Equal(RoundPhase.WaitingForClients, machine.Snapshot.Phase);
        Assert.Equal([RoundEventKind.AvailabilityTimedOut, RoundEventKind.AvailabilityTimedOut], machine.Events.Select(e => e.Kind));
        Assert.All(machine.Events, e => Assert.Equal(RoundPhase.WaitingForClients, e.To));
        Assert.Equal(ClientTaskKind.Wait, machine.GetTaskFor("a").Kind);
    }

    [Fact]
    public void OnTick_EnoughClientsRegistered_StartsRound()
    {
        // Arrange
        var time = new FakeTimeProvider();
        var machine = new RoundStateMachine(Settings(minClients: 2), time);
        machine.RegisterClient("a", 1);
        machine.OnTick();
        machine.RegisterClient("b", 1);

        // Act
        machine.OnTick();

        // Assert
        Assert.Equal(RoundPhase.Training, machine.Snapshot.Phase);
        Assert.Equal(["a", "b"], machine.Snapshot.Participants);
    }

    [Fact]
    public void CompleteAggregation_NotAggregatingThatRound_Throws()
    {
        // Arrange
        var machine = StartedMachine(new FakeTimeProvider(), Settings());

        // Act / Assert
        Assert.Throws<InvalidOperationException>(() => machine.CompleteAggregation(1));
    }

    [Fact]
    public void FromCheckpoint_AfterTwoRounds_ResumesAtRoundThree()
    {
        // Arrange
        var time = new FakeTimeProvider();
        var settings = Settings(rounds: 4);
        var machine = StartedMachine(time, settings);
        for (int round = 1; round <= 2; round++)
        {
            machine.OnTick();
            foreach (string id in s_fourClients)
            {
                machine.AcceptUpdate(id, round);
            }

            machine.CompleteAggregation(round);
        }

        machine.OnTick();
        machine.AcceptUpdate("a", 3);
        string json = JsonSerializer.Serialize(machine.ToCheckpoint());

        // Act
        var checkpoint = JsonSerializer.Deserialize<RoundCheckpoint>(json)!;
        var resumed = RoundStateMachine.FromCheckpoint(settings, time, checkpoint);

        // Assert
        Assert.Equal(2, checkpoint.LastCompletedRound);
        Assert.Equal([1, 2], checkpoint.History.Select(h => h.Round));
        Assert.Equal(s_fourClients, checkpoint.History[1].Responded);
        var snapshot = resumed.Snapshot;
        Assert.Equal(RoundPhase.WaitingForClients, snapshot.Phase);
        Assert.Equal(3, snapshot.Round);
        Assert.Equal(2, snapshot.CompletedRounds);
        Assert.Equal(UpdateAcceptance.Duplicate, resumed.AcceptUpdate("a", 2));
        Assert.Equal(UpdateAcceptance.WrongRound, resumed.AcceptUpdate("a", 3));
        foreach (string id in s_fourClients)
        {
            resumed.RegisterClient(id, 100);
        }

        Assert.True(resumed.StartRoundIfReady());
        Assert.Equal(3, resumed.GetTaskFor("a").Round);
    }

    [Fact]
    public void FromCheckpoint_AllRoundsCompleted_IsDone()
    {
        // Act
        var machine = RoundStateMachine.FromCheckpoint(Settings(rounds: 2), new FakeTimeProvider(), new RoundCheckpoint(2, []));

        // Assert
        Assert.Equal(RoundPhase.Done, machine.Snapshot.Phase);
        Assert.Equal(new RoundCheckpoint(2, []).LastCompletedRound, machine.ToCheckpoint().LastCompletedRound);
    }

    [Fact]
    public void FromCheckpoint_InconsistentHistory_Throws()
    {
        // Arrange
        var history = new[] { new CompletedRound(3, [], [], [], DateTimeOffset.UnixEpoch) };

        // Act / Assert
        Assert.Throws<ArgumentException>(() => RoundStateMachine.FromCheckpoint(Settings(), new FakeTimeProvider(), new RoundCheckpoint(2, history)));
        Assert.Throws<ArgumentException>(() => RoundStateMachine.FromCheckpoint(Settings(), new FakeTimeProvider(), new RoundCheckpoint(-1, [])));
    }

    [Fact]
    public void Run_UnlimitedRounds_NeverDone()
    {
        // Arrange
        var machine = new RoundStateMachine(Settings(rounds: null, minClients: 1, minResponses: 1), new FakeTimeProvider());
        machine.RegisterClient("a", 1);

        // Act
        for (int round = 1; round <= 5; round++)
        {
            machine.StartRoundIfReady();
            machine.AcceptUpdate("a", round);
            machine.CompleteAggregation(round);
        }

        // Assert
        Assert.Equal(RoundPhase.WaitingForClients, machine.Snapshot.Phase);
        Assert.Equal(6, machine.Snapshot.Round);
    }

    public static TheoryData<RoundSettings, string> InvalidSettings() => new()
    {
        { new RoundSettings { Rounds = 0 }, "Rounds" },
        { new RoundSettings { MinClients = 0 }, "MinClients" },
        { new RoundSettings { FractionPerRound = 0 }, "FractionPerRound" },
        { new RoundSettings { FractionPerRound = 1.5 }, "FractionPerRound" },
        { new RoundSettings { FractionPerRound = double.NaN }, "FractionPerRound" },
        { new RoundSettings { AvailabilityTimeout = TimeSpan.Zero }, "AvailabilityTimeout" },
        { new RoundSettings { TrainingDeadline = TimeSpan.FromSeconds(-1) }, "TrainingDeadline" },
        { new RoundSettings { MinResponses = 0 }, "MinResponses" },
        { new RoundSettings { MinClients = 2, MinResponses = 3 }, "MinResponses" },
        { new RoundSettings { GracePeriod = TimeSpan.FromSeconds(-1) }, "GracePeriod" },
    };

    [Theory]
    [MemberData(nameof(InvalidSettings))]
    public void Constructor_InvalidSetting_ThrowsNamingIt(RoundSettings settings, string name)
    {
        // Act
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => new RoundStateMachine(settings, new FakeTimeProvider()));

        // Assert
        Assert.Equal(name, error.ParamName);
        Assert.Contains($"RoundSettings.{name}", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void RegisterClient_BadArguments_Throws()
    {
        // Arrange
        var machine = new RoundStateMachine(new RoundSettings(), new FakeTimeProvider());

        // Act / Assert
        Assert.Throws<ArgumentException>(() => machine.RegisterClient(" ", 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => machine.RegisterClient("a", 0));
    }

    private static RoundStateMachine AggregatingRound1(FakeTimeProvider time)
    {
        var machine = StartedMachine(time, Settings());
        foreach (string id in s_fourClients)
        {
            Assert.Equal(UpdateAcceptance.Accepted, machine.AcceptUpdate(id, 1));
        }

        Assert.Equal(RoundPhase.Aggregating, machine.Snapshot.Phase);
        return machine;
    }

    [Fact]
    public void Statistics_AllAnswer_ClosesBackToAggregatingThenCompletes()
    {
        // Arrange
        var time = new FakeTimeProvider();
        var machine = AggregatingRound1(time);

        // Act
        machine.BeginStatistics(1, ["a", "b", "c"], TimeSpan.FromMinutes(1));
        var asked = machine.GetTaskFor("a");
        var notAsked = machine.GetTaskFor("d");
        var answers = new[] { "a", "b", "c" }.Select(id => machine.AcceptStatistics(id, 1)).ToList();
        var again = machine.AcceptStatistics("a", 1);
        var phaseAfter = machine.Snapshot.Phase;
        machine.CompleteAggregation(1);

        // Assert
        Assert.Equal(new ClientTask(ClientTaskKind.Statistics, 1, time.GetUtcNow() + TimeSpan.FromMinutes(1)), asked);
        Assert.Equal(ClientTaskKind.Wait, notAsked.Kind);
        Assert.All(answers, a => Assert.Equal(UpdateAcceptance.Accepted, a));
        Assert.Equal(UpdateAcceptance.Duplicate, again);
        Assert.Equal(RoundPhase.Aggregating, phaseAfter);
        Assert.Contains(machine.Events, e => e.Kind == RoundEventKind.StatisticsClosedAllAnswered);
        Assert.Equal(UpdateAcceptance.TooLate, machine.AcceptStatistics("b", 1));
        Assert.Equal(2, machine.Snapshot.Round);
    }

    [Fact]
    public void Statistics_RefusesOutsiders_AndClosesAtDeadline()
    {
        // Arrange
        var time = new FakeTimeProvider();
        var machine = AggregatingRound1(time);
        var early = machine.AcceptStatistics("a", 1);

        // Act
        machine.BeginStatistics(1, ["a", "b"], TimeSpan.FromMinutes(1));
        var outsider = machine.AcceptStatistics("d", 1);
        var wrongRound = machine.AcceptStatistics("a", 2);
        var answered = machine.AcceptStatistics("a", 1);
        time.Advance(TimeSpan.FromSeconds(59));
        machine.OnTick();
        var beforeDeadline = machine.Snapshot.Phase;
        time.Advance(TimeSpan.FromSeconds(1));
        machine.OnTick();

        // Assert
        Assert.Equal(UpdateAcceptance.WrongRound, early);
        Assert.Equal(UpdateAcceptance.NotParticipant, outsider);
        Assert.Equal(UpdateAcceptance.WrongRound, wrongRound);
        Assert.Equal(UpdateAcceptance.Accepted, answered);
        Assert.Equal(RoundPhase.Statistics, beforeDeadline);
        Assert.Equal(RoundPhase.Aggregating, machine.Snapshot.Phase);
        Assert.Equal(RoundEventKind.StatisticsClosedAtDeadline, machine.Events[^1].Kind);
        Assert.Equal(UpdateAcceptance.TooLate, machine.AcceptStatistics("b", 1));
        Assert.Equal(UpdateAcceptance.Duplicate, machine.AcceptUpdate("a", 1));
    }

    [Fact]
    public void BeginStatistics_NotAggregatingOrNobodyRegistered_Throws()
    {
        // Arrange
        var time = new FakeTimeProvider();
        var training = StartedMachine(time, Settings());
        var aggregating = AggregatingRound1(time);

        // Act / Assert
        Assert.Throws<InvalidOperationException>(() => training.BeginStatistics(1, ["a"], TimeSpan.FromMinutes(1)));
        Assert.Throws<InvalidOperationException>(() => aggregating.BeginStatistics(1, ["nobody"], TimeSpan.FromMinutes(1)));
        Assert.Throws<ArgumentOutOfRangeException>(() => aggregating.BeginStatistics(1, ["a"], TimeSpan.Zero));
    }

    [Fact]
    public void DropClient_LastMissingParticipant_ClosesTheRound()
    {
        // Arrange
        var time = new FakeTimeProvider();
        var machine = StartedMachine(time, Settings(minResponses: 2));
        machine.AcceptUpdate("a", 1);
        machine.AcceptUpdate("b", 1);
        machine.AcceptUpdate("c", 1);

        // Act
        bool known = machine.DropClient("d", "silent");
        bool again = machine.DropClient("d", "silent");

        // Assert
        Assert.True(known);
        Assert.False(again);
        var snapshot = machine.Snapshot;
        Assert.Equal(RoundPhase.Aggregating, snapshot.Phase);
        Assert.Equal(["d"], snapshot.Dropped);
        Assert.DoesNotContain("d", snapshot.RegisteredClients);
        Assert.Contains(machine.Events, e => e.Kind == RoundEventKind.ClientDropped && e.Detail.StartsWith("d:", StringComparison.Ordinal));
    }

    [Fact]
    public void DropClient_TooFewLeftToReachMinResponses_AbandonsAtOnce()
    {
        // Arrange
        var time = new FakeTimeProvider();
        var machine = StartedMachine(time, Settings(minResponses: 2));
        machine.AcceptUpdate("a", 1);

        // Act: nobody who could still respond is left, so waiting for the deadline would only waste it.
        machine.DropClient("b", "silent");
        machine.DropClient("c", "silent");
        var afterTwo = machine.Snapshot.Phase;
        machine.DropClient("d", "silent");

        // Assert
        Assert.Equal(RoundPhase.Training, afterTwo);
        Assert.Equal(RoundEventKind.Abandoned, machine.Events[^1].Kind);
        var snapshot = machine.Snapshot;
        Assert.Equal(RoundPhase.WaitingForClients, snapshot.Phase);
        Assert.Equal(1, snapshot.Attempt);
        Assert.Equal(UpdateAcceptance.TooLate, machine.AcceptUpdate("a", 1));
    }

    [Fact]
    public void ExcludeFromRound_EveryParticipant_AbandonsAndStartsTheNextAttemptAtOnce()
    {
        // Arrange
        var time = new FakeTimeProvider();
        var machine = StartedMachine(time, Settings(minResponses: 2));

        // Act
        foreach (string id in s_fourClients)
        {
            machine.ExcludeFromRound(id, 1, "its update holds non-finite weights");
        }

        // Assert: no time passed; the round was retried with every (still registered) client.
        var snapshot = machine.Snapshot;
        Assert.Equal(RoundPhase.Training, snapshot.Phase);
        Assert.Equal(1, snapshot.Round);
        Assert.Equal(1, snapshot.Attempt);
        Assert.Equal(s_fourClients, snapshot.Participants);
        Assert.Equal([RoundEventKind.Abandoned, RoundEventKind.RoundStarted], machine.Events.TakeLast(2).Select(e => e.Kind));
        Assert.Null(snapshot.StopReason);
    }

    [Fact]
    public void MaxAttempts_RoundAbandonedThatOften_StopsTheRunWithTheReason()
    {
        // Arrange
        var time = new FakeTimeProvider();
        var machine = StartedMachine(time, Settings(minResponses: 2) with { MaxAttempts = 2 });
        machine.AcceptUpdate("a", 1);
        machine.AcceptUpdate("b", 1);
        machine.AcceptUpdate("c", 1);
        machine.AcceptUpdate("d", 1);
        machine.CompleteAggregation(1);
        machine.OnTick();

        // Act: round 2 fails twice, once at its deadline and once with every participant excluded.
        time.Advance(TimeSpan.FromMinutes(10));
        machine.OnTick();
        var afterFirst = machine.Snapshot;
        foreach (string id in s_fourClients)
        {
            machine.ExcludeFromRound(id, 2, "diverged");
        }

        // Assert
        Assert.Equal((RoundPhase.Training, 1), (afterFirst.Phase, afterFirst.Attempt));
        var snapshot = machine.Snapshot;
        Assert.Equal(RoundPhase.Done, snapshot.Phase);
        Assert.Equal(1, snapshot.CompletedRounds);
        Assert.Equal(1, snapshot.Round);
        Assert.StartsWith("round 2 was abandoned 2 times", snapshot.StopReason, StringComparison.Ordinal);
        Assert.Equal(RoundEventKind.GaveUp, machine.Events[^1].Kind);
        Assert.Equal(ClientTaskKind.Done, machine.GetTaskFor("a").Kind);
        Assert.Equal(1, machine.ToCheckpoint().LastCompletedRound);
    }

    [Fact]
    public void MaxAttempts_Zero_Refused()
    {
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => new RoundStateMachine(Settings() with { MaxAttempts = 0 }, new FakeTimeProvider()));

        Assert.Contains("MaxAttempts", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void DropClient_DuringStatistics_StopsWaitingForIt()
    {
        // Arrange
        var time = new FakeTimeProvider();
        var machine = AggregatingRound1(time);
        machine.BeginStatistics(1, ["a", "b"], TimeSpan.FromMinutes(1));
        machine.AcceptStatistics("a", 1);

        // Act
        machine.DropClient("b", "silent");

        // Assert
        Assert.Equal(RoundPhase.Aggregating, machine.Snapshot.Phase);
        Assert.Equal(RoundEventKind.StatisticsClosedAllAnswered, machine.Events[^1].Kind);
    }

    [Fact]
    public void ExcludeFromRound_LastMissingParticipant_ClosesAndKeepsItRegistered()
    {
        // Arrange
        var time = new FakeTimeProvider();
        var machine = StartedMachine(time, Settings(minResponses: 2));
        foreach (string id in new[] { "a", "b", "c" })
        {
            machine.AcceptUpdate(id, 1);
        }

        // Act
        bool excluded = machine.ExcludeFromRound("d", 1, "diverged");
        bool again = machine.ExcludeFromRound("d", 1, "diverged");

        // Assert
        Assert.True(excluded);
        Assert.False(again);
        Assert.Equal(RoundPhase.Aggregating, machine.Snapshot.Phase);
        Assert.Contains("d", machine.Snapshot.RegisteredClients);
        Assert.Equal(["d"], machine.Snapshot.Dropped);
        Assert.Equal(UpdateAcceptance.TooLate, machine.AcceptUpdate("d", 1));
    }
}
