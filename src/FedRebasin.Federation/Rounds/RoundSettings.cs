using System.Globalization;

namespace FedRebasin.Federation.Rounds;

/// <summary>How rounds are scheduled and when they close (ARCHITECTURE.md §2: every wait has a timeout).</summary>
/// <remarks><see cref="Validate"/> states the constraints; <see cref="RoundStateMachine"/> validates on construction.</remarks>
public sealed record RoundSettings
{
    /// <summary>Number of rounds to complete before <see cref="RoundPhase.Done"/>; null runs until stopped. At least 1 when set.</summary>
    public int? Rounds { get; init; }

    /// <summary>Registered clients needed before a round starts, and the least number of participants per round. At least 1.</summary>
    public int MinClients { get; init; } = 1;

    /// <summary>Fraction of the registered clients picked per round, in (0, 1]; the count is rounded up and never below <see cref="MinClients"/>.</summary>
    public double FractionPerRound { get; init; } = 1.0;

    /// <summary>How long to wait for <see cref="MinClients"/> registrations before logging <see cref="RoundEventKind.AvailabilityTimedOut"/> (then the wait goes on). Positive.</summary>
    public TimeSpan AvailabilityTimeout { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>Time from publishing a round to its hard close. Positive.</summary>
    public TimeSpan TrainingDeadline { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>Accepted updates a round needs to be aggregated rather than abandoned. At least 1 and at most <see cref="MinClients"/>.</summary>
    public int MinResponses { get; init; } = 1;

    /// <summary>How long a round stays open after reaching <see cref="MinResponses"/> for stragglers. Zero or more.</summary>
    public TimeSpan GracePeriod { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Attempts of one round (the first and each restart after it was abandoned) before the run stops, in
    /// <see cref="RoundPhase.Done"/> with <see cref="RoundSnapshot.StopReason"/> set; null retries without end (a
    /// long-lived service waiting for clients). At least 1 when set. A round whose every participant's training
    /// diverges is abandoned at once, and its retries diverge the same way: this is what ends such a run.
    /// </summary>
    public int? MaxAttempts { get; init; }

    /// <summary>Seed of the participant sampler: the same seed, round, attempt and registered set give the same participants.</summary>
    public int Seed { get; init; }

    /// <summary>Checks every setting.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A setting is out of range; the parameter name and the message name the setting.</exception>
    public void Validate()
    {
        if (Rounds is < 1)
        {
            throw Invalid(nameof(Rounds), Rounds, "must be at least 1, or null for unlimited");
        }

        if (MinClients < 1)
        {
            throw Invalid(nameof(MinClients), MinClients, "must be at least 1");
        }

        if (!(FractionPerRound > 0 && FractionPerRound <= 1))
        {
            throw Invalid(nameof(FractionPerRound), FractionPerRound, "must be in (0, 1]");
        }

        if (AvailabilityTimeout <= TimeSpan.Zero)
        {
            throw Invalid(nameof(AvailabilityTimeout), AvailabilityTimeout, "must be positive");
        }

        if (TrainingDeadline <= TimeSpan.Zero)
        {
            throw Invalid(nameof(TrainingDeadline), TrainingDeadline, "must be positive");
        }

        if (MinResponses < 1 || MinResponses > MinClients)
        {
            throw Invalid(nameof(MinResponses), MinResponses, $"must be at least 1 and at most MinClients ({MinClients.ToString(CultureInfo.InvariantCulture)})");
        }

        if (MaxAttempts is < 1)
        {
            throw Invalid(nameof(MaxAttempts), MaxAttempts, "must be at least 1, or null for unlimited");
        }

        if (GracePeriod < TimeSpan.Zero)
        {
            throw Invalid(nameof(GracePeriod), GracePeriod, "must not be negative");
        }
    }

    private static ArgumentOutOfRangeException Invalid(string name, object? value, string rule) =>
        new(name, value, string.Create(CultureInfo.InvariantCulture, $"RoundSettings.{name} {rule}, not {value ?? "null"}."));
}
