using System.Globalization;
using FedRebasin.Coordinator.Checkpoints;
using FedRebasin.Federation.Rounds;
using FedRebasin.Federation.Updates;
using FedRebasin.Merging.Averaging;
using FedRebasin.Merging.Matching;
using FedRebasin.Merging.Repair;
using FedRebasin.Models;
using FedRebasin.Models.Permutations;
using FedRebasin.Tensors;
using FedRebasin.Torch;
using FedRebasin.Training;
using Microsoft.Extensions.Logging;
using static TorchSharp.torch;

namespace FedRebasin.Coordinator;

/// <summary>A merged model waiting for the clients' statistics (federated repair) before it is repaired and published.</summary>
internal sealed class PendingRepair : IDisposable
{
    public PendingRepair(int round, ClassifierModel candidate, RepairTargets targets, IReadOnlyList<ClientAlignmentRecord> clients, RoundEvaluation? shadow, GlobalModel version)
    {
        Round = round;
        Candidate = candidate;
        Targets = targets;
        Clients = clients;
        Shadow = shadow;
        Version = version;
        Pooled = [.. candidate.RepairPoints.Select(p => new ChannelMoments(p.Channels))];
    }

    public int Round { get; }

    public ClassifierModel Candidate { get; }

    public RepairTargets Targets { get; }

    public IReadOnlyList<ClientAlignmentRecord> Clients { get; }

    public RoundEvaluation? Shadow { get; }

    /// <summary>The merged model as served to the clients measuring it.</summary>
    public GlobalModel Version { get; }

    /// <summary>Per repair point, the sum of the clients' answers.</summary>
    public ChannelMoments[] Pooled { get; }

    public int Answers { get; set; }

    public void Dispose() => Candidate.Dispose();
}

/// <summary>What a client answering a statistics task needs.</summary>
/// <param name="Version">The merged model to measure.</param>
/// <param name="Mode">The repair mode.</param>
/// <param name="Points">The model's repair points.</param>
/// <param name="Targets">Target statistics per point.</param>
internal sealed record StatisticsRequest(GlobalModel Version, RepairMode Mode, IReadOnlyList<RepairPoint> Points, RepairTargets Targets);

/// <summary>Closing a round: combine, repair (on calibration data or through a statistics task), evaluate, checkpoint, publish.</summary>
internal sealed partial class CoordinatorRuntime
{
    private readonly List<RoundSummary> _completedRounds = [];
    private DateTimeOffset _roundStartedAt;
    private PendingRepair? _pending;
    private (ClassifierModel Model, Dictionary<string, Tensor> State)? _retired;
    private bool _closing;

    /// <summary>The rounds this process completed (a copy).</summary>
    public IReadOnlyList<RoundSummary> CompletedRounds
    {
        get
        {
            lock (_gate)
            {
                return [.. _completedRounds];
            }
        }
    }

    /// <summary>Why the run stopped, when closing a round failed; null while it runs.</summary>
    public Exception? Failure { get; private set; }

    /// <summary>The open statistics task, or null.</summary>
    public StatisticsRequest? PendingStatistics
    {
        get
        {
            lock (_gate)
            {
                return _pending is { } pending ? new StatisticsRequest(pending.Version, RepairFor(pending.Round), pending.Candidate.RepairPoints, pending.Targets) : null;
            }
        }
    }

    /// <summary>Validates and records a client's answer to the statistics task of <paramref name="round"/>.</summary>
    public Refusal? AcceptStatistics(string clientId, int round, string modelVersion, IReadOnlyList<(string Point, ChannelMoments Moments)> moments)
    {
        ArgumentNullException.ThrowIfNull(moments);
        TorchThreads.UseOnThisThread(Options.TorchThreads);
        bool closed;
        lock (_gate)
        {
            if (_pending is not { } pending || pending.Round != round)
            {
                return ToRefusal(Machine.AcceptStatistics(clientId, round), clientId, round, "statistics") ?? new Refusal(RefusalReason.TooLate, "The statistics task changed.");
            }

            if (!string.Equals(modelVersion, pending.Version.Version, StringComparison.Ordinal))
            {
                return new Refusal(RefusalReason.WrongRound, $"The statistics were measured on model version '{modelVersion}'; the task asked for '{pending.Version.Version}'.");
            }

            if (CheckStatistics(pending.Candidate.RepairPoints, moments) is { } bad)
            {
                return new Refusal(RefusalReason.BadMoments, bad);
            }

            if (ToRefusal(Machine.AcceptStatistics(clientId, round), clientId, round, "statistics") is { } refusal)
            {
                return refusal;
            }

            for (int i = 0; i < moments.Count; i++)
            {
                pending.Pooled[i].Merge(moments[i].Moments);
            }

            pending.Answers++;
            closed = Machine.Snapshot.Phase == RoundPhase.Aggregating;
        }

        if (closed)
        {
            ScheduleRoundClose();
        }

        return null;
    }

    private static string? CheckStatistics(IReadOnlyList<RepairPoint> points, IReadOnlyList<(string Point, ChannelMoments Moments)> moments)
    {
        if (moments.Count != points.Count)
        {
            return string.Create(CultureInfo.InvariantCulture, $"Statistics for {moments.Count} repair points; the model has {points.Count}.");
        }

        for (int i = 0; i < points.Count; i++)
        {
            var (name, m) = moments[i];
            if (!string.Equals(name, points[i].Name, StringComparison.Ordinal))
            {
                return string.Create(CultureInfo.InvariantCulture, $"Statistics entry {i} is for '{name}'; the model's repair point {i} is '{points[i].Name}'.");
            }

            if (m.Channels != points[i].Channels)
            {
                return string.Create(CultureInfo.InvariantCulture, $"Repair point '{name}' has {points[i].Channels} channels, not {m.Channels}.");
            }

            if (!double.IsFinite(m.Count) || m.Sum.Any(v => !double.IsFinite(v)) || m.SumSquares.Any(v => !double.IsFinite(v) || v < 0))
            {
                return $"Repair point '{name}': the sums must be finite and the sums of squares non-negative.";
            }

            if (points[i].Foldable && m.Count <= 0)
            {
                return $"Repair point '{name}': the count must be positive.";
            }
        }

        return null;
    }

    /// <summary>Starts closing the round on a background task when the machine is aggregating and no close is running.</summary>
    private void ScheduleRoundClose()
    {
        lock (_gate)
        {
            if (_closing || _disposed || Failure is not null || Machine.Snapshot.Phase != RoundPhase.Aggregating)
            {
                return;
            }

            _closing = true;
        }

        _ = Task.Run(() =>
        {
            bool succeeded = false;
            try
            {
                TorchThreads.UseOnThisThread(Options.TorchThreads);
                CloseRound();
                succeeded = true;
            }
#pragma warning disable CA1031 // A failed close stops the run with the error logged and reported by GetStatus.
            catch (Exception e)
#pragma warning restore CA1031
            {
                LogRoundCloseFailed(e);
                Failure = e;
                SignalChange();
            }
            finally
            {
                lock (_gate)
                {
                    _closing = false;
                }
            }

            if (succeeded)
            {
                // A statistics phase may have closed while this close ran.
                ScheduleRoundClose();
            }
        });
    }

    private void CloseRound()
    {
        RoundAggregator? aggregator;
        PendingRepair? pending = null;
        int round;
        lock (_foldGate)
        {
            lock (_gate)
            {
                var snapshot = Machine.Snapshot;
                if (snapshot.Phase != RoundPhase.Aggregating)
                {
                    return;
                }

                round = snapshot.Round;
                aggregator = _aggregator;
                _aggregator = null;
                if (_pending is { } waiting && waiting.Round == round)
                {
                    pending = waiting;
                    _pending = null;
                }
            }
        }

        if (pending is not null)
        {
            aggregator?.Dispose();
            FinishStatisticsRepair(pending);
            return;
        }

        if (aggregator is null || aggregator.Count == 0)
        {
            aggregator?.Dispose();
            LogNothingToAggregate(round);
            var unchanged = ModelFile.FromSafeTensors(SafeTensors.Parse(Current.Bytes, Current.Version), "current model");
            Finish(round, unchanged, [], repair: null, shadow: null);
            return;
        }

        ClassifierModel candidate;
        RepairTargets? targets;
        IReadOnlyList<ClientAlignmentRecord> clients;
        RoundEvaluation? shadow = null;
        using (aggregator)
        {
            foreach (var client in aggregator.Clients.Where(c => c.Aligned))
            {
                Metrics.Stage("align", client.Seconds);
            }

            // The idle upload buffers are no longer needed: dropped before the mean is made. The mean releases each
            // float64 sum as soon as that tensor's mean exists, so sums and mean are never whole side by side.
            UploadBuffers.Trim();
            CollectAfterLargeModel(Current.Bytes.Length);
            var averaging = System.Diagnostics.Stopwatch.StartNew();
            using var aggregate = aggregator.Finish();
            Metrics.Stage("average", averaging.Elapsed.TotalSeconds);
            aggregator.Dispose();
            candidate = BuildModel(_global.Spec, aggregate.State, string.Create(CultureInfo.InvariantCulture, $"round {round} merge"));
            targets = aggregate.RepairTargets;
            clients = aggregate.Clients;
            if (_evaluation is not null && aggregate.ShadowFedAvg is { } shadowState)
            {
                using var fedAvg = BuildModel(_global.Spec, shadowState, "shadow FedAvg");
                var result = Evaluator.Evaluate(fedAvg, _evaluation);
                shadow = new RoundEvaluation(double.NaN, double.NaN, result.Accuracy, result.Loss, result.Count);
            }
        }

        var mode = RepairFor(round);
        if (mode == RepairMode.None)
        {
            Finish(round, candidate, clients, repair: null, shadow);
        }
        else if (RepairModes.IsCorrection(mode) && targets is null)
        {
            Finish(round, candidate, clients, new RoundRepair(RepairModes.ToName(mode), "skipped", 0, 0, "no client sent moments, so there are no targets"), shadow);
        }
        else if (_calibration is { } calibration)
        {
            var repairing = System.Diagnostics.Stopwatch.StartNew();
            var report = Repairer.Apply(candidate, targets, mode, calibration.Batches, new RepairOptions { Bound = RepairBound });
            Metrics.Stage("repair", repairing.Elapsed.TotalSeconds);
            int corrected = mode == RepairMode.BnReset ? report.BatchNormLayersReset : report.Points.Count(p => p.Corrected);
            var measured = report.Points.Where(p => double.IsFinite(p.VarianceRatioBefore) && double.IsFinite(p.VarianceRatioAfter)).ToList();
            Finish(round, candidate, clients, new RoundRepair(
                RepairModes.ToName(mode), "calibration", corrected, 0, string.Create(CultureInfo.InvariantCulture, $"{calibration.Count} examples, {report.CalibrationPasses} passes"),
                measured.Count > 0 ? measured.Average(p => p.VarianceRatioBefore) : double.NaN,
                measured.Count > 0 ? measured.Average(p => p.VarianceRatioAfter) : double.NaN), shadow);
        }
        else
        {
            AskForStatistics(round, candidate, targets!, clients, shadow);
        }
    }

    /// <summary>How far each correction may go (<see cref="CoordinatorOptions.RepairStrength"/>, <see cref="CoordinatorOptions.RepairMaxScale"/>).</summary>
    private RepairBound RepairBound => new(Options.RepairStrength, Options.RepairMaxScale == 0 ? double.PositiveInfinity : Options.RepairMaxScale);

    /// <summary>The repair mode of <paramref name="round"/>: the strategy's, or none after <see cref="CoordinatorOptions.RepairRounds"/>.</summary>
    public RepairMode RepairFor(long round) => Options.RepairRounds > 0 && round > Options.RepairRounds ? RepairMode.None : Strategy.Repair;

    /// <summary>Serves the merged model as "R-merged" and asks the round's responders to measure it (statistics task).</summary>
    private void AskForStatistics(int round, ClassifierModel candidate, RepairTargets targets, IReadOnlyList<ClientAlignmentRecord> clients, RoundEvaluation? shadow)
    {
        string version = string.Create(CultureInfo.InvariantCulture, $"{round}-merged");
        Publish(version, ModelFile.ToBytes(candidate), makeCurrent: false);
        var pending = new PendingRepair(round, candidate, targets, clients, shadow, FindVersion(version)!);
        lock (_gate)
        {
            _pending = pending;
        }

        try
        {
            Machine.BeginStatistics(round, Machine.Snapshot.Responded, Options.StatisticsDeadline);
        }
        catch (InvalidOperationException e)
        {
            // Every responder left since: repair cannot be measured; publish the merge as it is.
            lock (_gate)
            {
                _pending = null;
            }

            Finish(round, candidate, clients, new RoundRepair(RepairModes.ToName(RepairFor(round)), "skipped", 0, 0, e.Message), shadow);
        }
    }

    private void FinishStatisticsRepair(PendingRepair pending)
    {
        var mode = RepairModes.ToName(RepairFor(pending.Round));
        RoundRepair repair;
        if (pending.Answers == 0)
        {
            repair = new RoundRepair(mode, "skipped", 0, 0, "no client answered the statistics task before its deadline");
        }
        else
        {
            var repairing = System.Diagnostics.Stopwatch.StartNew();
            int corrected = Repairer.FoldCorrections(pending.Candidate.state_dict(), pending.Candidate.RepairPoints, pending.Targets, pending.Pooled, RepairFor(pending.Round), bound: RepairBound);
            Metrics.Stage("repair", repairing.Elapsed.TotalSeconds);
            repair = new RoundRepair(mode, "statistics", corrected, pending.Answers, "one-pass batch-statistics estimation on the clients' data",
                VarianceRatioBefore(pending));
        }

        // The candidate now belongs to Finish.
        Finish(pending.Round, pending.Candidate, pending.Clients, repair, pending.Shadow);
    }

    /// <summary>
    /// Mean over the corrected points of mean(σ̂²)/mean(σ*²): how much of the clients' activation variance the merge kept,
    /// from the statistics the clients sent. The one-pass estimate measures nothing after the correction (that would
    /// take a second statistics task), so the "after" ratio stays NaN on this path.
    /// </summary>
    private static double VarianceRatioBefore(PendingRepair pending)
    {
        var points = pending.Candidate.RepairPoints;
        var ratios = Enumerable.Range(0, points.Count)
            .Where(i => points[i].Foldable && pending.Pooled[i].Count > 0)
            .Select(i => pending.Pooled[i].Variance().Average() / pending.Targets.Stds[i].Average(s => s * s))
            .Where(double.IsFinite)
            .ToList();
        return ratios.Count > 0 ? ratios.Average() : double.NaN;
    }

    /// <summary>Evaluates, checkpoints and publishes <paramref name="next"/> as the global model after <paramref name="round"/>, then completes the round.</summary>
    private void Finish(int round, ClassifierModel next, IReadOnlyList<ClientAlignmentRecord> clients, RoundRepair? repair, RoundEvaluation? shadow)
    {
        if (repair is { Source: "skipped" })
        {
            LogRepairSkipped(round, repair.Note);
        }

        RoundEvaluation? evaluation = null;
        if (_evaluation is not null)
        {
            var evaluating = System.Diagnostics.Stopwatch.StartNew();
            var result = Evaluator.Evaluate(next, _evaluation);
            Metrics.Stage("evaluate", evaluating.Elapsed.TotalSeconds);
            evaluation = new RoundEvaluation(result.Accuracy, result.Loss, shadow?.ShadowFedAvgAccuracy ?? double.NaN, shadow?.ShadowFedAvgLoss ?? double.NaN, result.Count);
            LogEvaluated(round, result.Accuracy, evaluation.ShadowFedAvgAccuracy);
        }

        byte[] bytes = ModelFile.ToBytes(next);
        var state = StateViews(next);
        var snapshot = Machine.Snapshot;
        var reference = Current;
        var history = Machine.ToCheckpoint().History;
        var completedAt = TimeProvider.GetUtcNow();
        var rounds = new RoundCheckpoint(round, [.. history, new CompletedRound(round, snapshot.Participants, snapshot.Responded, snapshot.Dropped, completedAt)]);
        (ClassifierModel Model, Dictionary<string, Tensor> State)? retired;
        double clientSeconds;
        ClientModelEvaluations clientModels;
        lock (_gate)
        {
            // The state replaced now may still be read by a validation that started before; it is freed one round later.
            retired = _retired;
            _retired = (_global, _globalState);
            _global = next;
            _globalState = state;
            _validator = NewValidator();
            Publish(round.ToString(CultureInfo.InvariantCulture), bytes, makeCurrent: true);
            LastEvaluation = evaluation ?? LastEvaluation;
            clientSeconds = _clientSecondsInRound;
            clientModels = _clientModels;
            _clientModels = ClientModelEvaluations.None;
            _updatesInRound = 0;
            _clientSecondsInRound = 0;
        }

        if (retired is { } old)
        {
            StateDicts.DisposeAll([old.State]);
            old.Model.Dispose();
        }

        if (_checkpoints is not null)
        {
            var audit = new RoundAudit(
                round, Strategy.ToString(), reference.Version, reference.Sha256, Current.Version, Current.Sha256,
                clients.Sum(c => c.SampleCount), clients, repair, evaluation, completedAt);
            _checkpoints.Save(Manifest(rounds), bytes, audit);
        }

        var aligned = clients.Where(c => c.Aligned).ToList();
        // Per permutation group, the mean over the aligned clients of its objective gain and identity fraction.
        List<GroupMatch> groups = [.. aligned.SelectMany(c => c.Groups)
            .GroupBy(g => g.Name, StringComparer.Ordinal)
            .Select(g => new GroupMatch(g.Key, g.First().Size, g.Average(x => x.Gain), g.Average(x => x.IdentityFraction)))];
        var summary = new RoundSummary(
            round,
            clients.Count,
            clients.Sum(c => c.SampleCount),
            evaluation?.Accuracy ?? double.NaN,
            evaluation?.Loss ?? double.NaN,
            evaluation?.ShadowFedAvgAccuracy ?? double.NaN,
            evaluation?.ShadowFedAvgLoss ?? double.NaN,
            (completedAt - _roundStartedAt).TotalSeconds,
            clientSeconds,
            bytes.Length,
            aligned.Count > 0 ? aligned.Average(c => c.Groups.Count > 0 ? c.Groups.Average(g => g.IdentityFraction) : 1.0) : double.NaN,
            aligned.Count > 0 ? aligned.Average(c => (c.ObjectiveAfter - c.ObjectiveBefore) / Math.Max(Math.Abs(c.ObjectiveBefore), double.Epsilon)) : double.NaN,
            repair?.Source ?? "none",
            clientModels.MeanLoss,
            clientModels.MeanAccuracy,
            (evaluation?.Loss ?? double.NaN) - clientModels.MeanLoss,
            clientModels.MeanAccuracy - (evaluation?.Accuracy ?? double.NaN),
            repair?.PointsCorrected ?? 0,
            repair?.VarianceRatioBefore ?? double.NaN,
            repair?.VarianceRatioAfter ?? double.NaN,
            groups);
        lock (_gate)
        {
            _completedRounds.Add(summary);
        }

        LogRoundPublished(round, clients.Count, Current.Version);
        Metrics.RoundCompleted(summary, Strategy.ToString());
        if (groups.Count > 0)
        {
            Metrics.SetAlignment([.. groups.Select(g => (g.Name, g.Gain, g.IdentityFraction))]);
        }
        Metrics.SetRound(round);
        Machine.CompleteAggregation(round);
        Machine.StartRoundIfReady();
    }

    private void SignalChange()
    {
        TaskCompletionSource previous;
        lock (_gate)
        {
            previous = _changed;
            _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        previous.TrySetResult();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Round {Round} merged from {Updates} updates; published model version {Version}")]
    private partial void LogRoundPublished(int round, int updates, string version);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Round {Round} closed without updates; the model is unchanged")]
    private partial void LogNothingToAggregate(int round);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Round {Round}: repair skipped ({Reason}); the merged model is published as it is")]
    private partial void LogRepairSkipped(int round, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Round {Round}: test accuracy {Accuracy:0.0000} (plain FedAvg of the same updates: {ShadowAccuracy:0.0000})")]
    private partial void LogEvaluated(int round, double accuracy, double shadowAccuracy);

    [LoggerMessage(Level = LogLevel.Critical, Message = "Closing a round failed; the run stops")]
    private partial void LogRoundCloseFailed(Exception exception);
}
