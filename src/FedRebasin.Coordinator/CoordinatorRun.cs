using FedRebasin.Federation.Rounds;
using FedRebasin.Merging.Matching;

namespace FedRebasin.Coordinator;

/// <summary>What one completed round produced.</summary>
/// <param name="Round">The round.</param>
/// <param name="Clients">Updates merged.</param>
/// <param name="TotalSamples">Sum of their sample counts.</param>
/// <param name="Accuracy">Test accuracy of the published model (NaN without evaluation data).</param>
/// <param name="Loss">Its test loss (NaN without evaluation data).</param>
/// <param name="ShadowFedAvgAccuracy">Accuracy of plain FedAvg of the same updates (NaN without evaluation data).</param>
/// <param name="ShadowFedAvgLoss">Its loss.</param>
/// <param name="Seconds">Wall time from the round's start (its last attempt) to publication.</param>
/// <param name="ClientTrainingSeconds">Sum of the merged clients' reported local training times ("seconds" metric).</param>
/// <param name="ModelBytes">Size of the published model.</param>
/// <param name="IdentityFraction">Mean over clients and permutation groups of the units weight matching left in place (1 = no permutation; NaN when not aligned).</param>
/// <param name="AlignmentGain">Mean relative gain of the matching objective, (after − before)/|before| (NaN when not aligned).</param>
/// <param name="Repair">"none", "calibration", "statistics" or "skipped".</param>
/// <param name="ClientModelsLoss">Sample-weighted mean test loss of the merged client models themselves (NaN unless updates are evaluated).</param>
/// <param name="ClientModelsAccuracy">Their sample-weighted mean test accuracy.</param>
/// <param name="LossBarrier">The merge barrier: <see cref="Loss"/> − <see cref="ClientModelsLoss"/> (positive: the merge is worse than its parts).</param>
/// <param name="AccuracyBarrier"><see cref="ClientModelsAccuracy"/> − <see cref="Accuracy"/> (positive: accuracy lost by merging).</param>
/// <param name="RepairPointsCorrected">Repair points corrected (BatchNorm layers reset for bn-reset).</param>
/// <param name="VarianceRatioBefore">Mean merged/target channel-variance ratio before repair (calibration repair measures it; on the statistics path it comes from the clients' answers; NaN without repair).</param>
/// <param name="Groups">Per permutation group, the mean over the aligned clients of the objective gain and identity fraction (empty or null when nothing was aligned).</param>
/// <param name="VarianceRatioAfter">The same after repair (calibration repair only: the one-pass statistics task measures nothing after its correction; else NaN).</param>
public sealed record RoundSummary(
    int Round,
    int Clients,
    long TotalSamples,
    double Accuracy,
    double Loss,
    double ShadowFedAvgAccuracy,
    double ShadowFedAvgLoss,
    double Seconds,
    double ClientTrainingSeconds,
    long ModelBytes,
    double IdentityFraction,
    double AlignmentGain,
    string Repair,
    double ClientModelsLoss = double.NaN,
    double ClientModelsAccuracy = double.NaN,
    double LossBarrier = double.NaN,
    double AccuracyBarrier = double.NaN,
    int RepairPointsCorrected = 0,
    double VarianceRatioBefore = double.NaN,
    double VarianceRatioAfter = double.NaN,
    IReadOnlyList<GroupMatch>? Groups = null);

/// <summary>What a host (the CLI) needs to know about the run: whether it is over, and the current global model.</summary>
public sealed class CoordinatorRun
{
    private readonly CoordinatorRuntime _runtime;

    internal CoordinatorRun(CoordinatorRuntime runtime)
    {
        _runtime = runtime;
    }

    /// <summary>Whether the run is over: every configured round is complete, or it gave up on a round (<see cref="StopReason"/>).</summary>
    public bool IsDone => _runtime.Machine.Snapshot.Phase == RoundPhase.Done;

    /// <summary>Why the run stopped before its last round (a round abandoned Coordinator:MaxRoundAttempts times), or null.</summary>
    public string? StopReason => _runtime.Machine.Snapshot.StopReason;

    /// <summary>The current round (the last completed one once the run is done).</summary>
    public int Round => _runtime.Machine.Snapshot.Round;

    /// <summary>Version of the current global model ("0" = the initial model, then the round that produced it).</summary>
    public string ModelVersion => _runtime.Current.Version;

    /// <summary>The current global model as safetensors bytes (do not modify).</summary>
    public ReadOnlyMemory<byte> ModelBytes => _runtime.Current.Bytes;

    /// <summary>Test accuracy of the current global model on the coordinator's evaluation data; NaN when none is configured.</summary>
    public double LastAccuracy => _runtime.LastEvaluation?.Accuracy ?? double.NaN;

    /// <summary>The rounds completed by this coordinator process, in order.</summary>
    public IReadOnlyList<RoundSummary> CompletedRounds => _runtime.CompletedRounds;

    /// <summary>Why the run stopped early (closing a round failed), or null.</summary>
    public Exception? Failure => _runtime.Failure;

    /// <summary>Completes when every round is done; throws when <paramref name="cancellationToken"/> fires or the run failed.</summary>
    /// <exception cref="InvalidOperationException">Closing a round failed (the inner exception says why), or the run gave up on a round.</exception>
    public async Task WaitUntilDoneAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            if (_runtime.Failure is { } failure)
            {
                throw new InvalidOperationException($"The run stopped: {failure.Message}", failure);
            }

            var snapshot = _runtime.Machine.Snapshot;
            if (snapshot.StopReason is { } reason)
            {
                throw new InvalidOperationException($"The run stopped: {reason}.");
            }

            if (snapshot.Phase == RoundPhase.Done)
            {
                return;
            }

            // Round events complete Changed; the delay is a safety net in case a change is missed.
            await Task.WhenAny(_runtime.Changed, Task.Delay(TimeSpan.FromSeconds(1), _runtime.TimeProvider, cancellationToken)).ConfigureAwait(false);
            cancellationToken.ThrowIfCancellationRequested();
        }
    }
}
