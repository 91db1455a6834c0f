using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;
using FedRebasin.Federation.Rounds;
using FedRebasin.Federation.Updates;

namespace FedRebasin.Coordinator.Checkpoints;

/// <summary>What <c>checkpoint.json</c> holds: the run, the last complete round's global model file and the round history.</summary>
/// <param name="Format">File format version (<see cref="CheckpointStore.FormatVersion"/>).</param>
/// <param name="RunId">The run's identifier; kept across restarts.</param>
/// <param name="Strategy">Canonical strategy name the run uses.</param>
/// <param name="ModelMetadata">The model's description (<c>ModelSpec.ToMetadata()</c>).</param>
/// <param name="ModelFile">File name (in the checkpoint folder) of the global model after <see cref="RoundCheckpoint.LastCompletedRound"/>.</param>
/// <param name="ModelSha256">SHA-256 of that file.</param>
/// <param name="Rounds">The round state machine's checkpoint.</param>
/// <param name="WrittenAt">When it was written.</param>
internal sealed record CheckpointManifest(
    int Format,
    string RunId,
    string Strategy,
    IReadOnlyDictionary<string, string> ModelMetadata,
    string ModelFile,
    string ModelSha256,
    RoundCheckpoint Rounds,
    DateTimeOffset WrittenAt);

/// <summary>Server-side evaluation of one published model (and of plain FedAvg of the same updates).</summary>
/// <param name="Accuracy">Test accuracy of the published model, in [0, 1].</param>
/// <param name="Loss">Its mean test loss.</param>
/// <param name="ShadowFedAvgAccuracy">Accuracy of plain FedAvg of the same updates, or NaN when not computed.</param>
/// <param name="ShadowFedAvgLoss">Its loss, or NaN.</param>
/// <param name="Examples">Test examples used.</param>
internal sealed record RoundEvaluation(double Accuracy, double Loss, double ShadowFedAvgAccuracy, double ShadowFedAvgLoss, int Examples);

/// <summary>How the merged model was repaired in a round.</summary>
/// <param name="Mode">Repair mode name.</param>
/// <param name="Source">"calibration" (coordinator data), "statistics" (clients' statistics task) or "skipped".</param>
/// <param name="PointsCorrected">Repair points corrected.</param>
/// <param name="StatisticsAnswers">Clients whose statistics were pooled (statistics source only).</param>
/// <param name="Note">Why it was skipped, or other detail.</param>
/// <param name="VarianceRatioBefore">Mean over repair points of the merged model's channel variance over the target's, before repair (below 1: variance collapse); NaN unless measured on calibration data.</param>
/// <param name="VarianceRatioAfter">The same after repair; NaN unless measured on calibration data.</param>
internal sealed record RoundRepair(string Mode, string Source, int PointsCorrected, int StatisticsAnswers, string Note, double VarianceRatioBefore = double.NaN, double VarianceRatioAfter = double.NaN);

/// <summary>
/// The audit record of one round (<c>audit/round-NNNN.json</c>): which clients were merged with which averaging weight
/// (sample count) and which permutation, against which reference, and what came out. With the clients' uploads it
/// replays the merge: permute each upload, take the weighted mean, repair.
/// </summary>
internal sealed record RoundAudit(
    int Round,
    string Strategy,
    string ReferenceVersion,
    string ReferenceSha256,
    string ModelVersion,
    string ModelSha256,
    long TotalSamples,
    IReadOnlyList<ClientAlignmentRecord> Clients,
    RoundRepair? Repair,
    RoundEvaluation? Evaluation,
    DateTimeOffset CompletedAt);

/// <summary>
/// The coordinator's checkpoint folder. After each round: the global model (<c>model-round-NNNN.safetensors</c>), the
/// round's audit record, then <c>checkpoint.json</c>, each written to a temporary file, flushed to disk and renamed over
/// the old one, in that order: a crash at any point leaves <c>checkpoint.json</c> naming a complete model file (the
/// previous one until the new manifest lands). Old model files are deleted only after the manifest that replaces them.
/// </summary>
internal sealed class CheckpointStore
{
    /// <summary>Version of <c>checkpoint.json</c>'s layout.</summary>
    public const int FormatVersion = 1;

    /// <summary>The manifest's file name.</summary>
    public const string ManifestName = "checkpoint.json";

    private static readonly JsonSerializerOptions s_json = new()
    {
        WriteIndented = true,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
    };

    private readonly int _keepModels;

    public CheckpointStore(string directory, int keepModels)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        ArgumentOutOfRangeException.ThrowIfLessThan(keepModels, 1);
        Directory = Path.GetFullPath(directory);
        _keepModels = keepModels;
    }

    /// <summary>The checkpoint folder (absolute).</summary>
    public string Directory { get; }

    private string ManifestPath => Path.Combine(Directory, ManifestName);

    /// <summary>The manifest and the model bytes it names, or null when the folder holds no checkpoint.</summary>
    /// <exception cref="InvalidDataException">The manifest is unreadable or names a missing or altered model file; the message names the file.</exception>
    public (CheckpointManifest Manifest, byte[] ModelBytes)? Load()
    {
        if (!File.Exists(ManifestPath))
        {
            return null;
        }

        CheckpointManifest? manifest;
        try
        {
            manifest = JsonSerializer.Deserialize<CheckpointManifest>(File.ReadAllBytes(ManifestPath), s_json);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{ManifestPath}: not a valid checkpoint manifest ({e.Message}).", e);
        }

        if (manifest is null || manifest.Rounds is null || manifest.ModelMetadata is null || string.IsNullOrEmpty(manifest.ModelFile) || string.IsNullOrEmpty(manifest.RunId))
        {
            throw new InvalidDataException($"{ManifestPath}: the checkpoint manifest is incomplete (run_id, model_file, model_metadata and rounds are required).");
        }

        if (manifest.Format != FormatVersion)
        {
            throw new InvalidDataException(string.Create(CultureInfo.InvariantCulture, $"{ManifestPath}: checkpoint format {manifest.Format} is not supported (this coordinator reads format {FormatVersion})."));
        }

        if (!string.Equals(Path.GetFileName(manifest.ModelFile), manifest.ModelFile, StringComparison.Ordinal))
        {
            throw new InvalidDataException($"{ManifestPath}: model_file must be a file name in the checkpoint folder, not '{manifest.ModelFile}'.");
        }

        string modelPath = Path.Combine(Directory, manifest.ModelFile);
        if (!File.Exists(modelPath))
        {
            throw new InvalidDataException($"{ManifestPath}: the model file it names, {modelPath}, is missing.");
        }

        byte[] bytes = File.ReadAllBytes(modelPath);
        string digest = Contracts.Sha256Hex.Compute(bytes);
        if (!string.Equals(digest, manifest.ModelSha256, StringComparison.Ordinal))
        {
            throw new InvalidDataException($"{modelPath}: SHA-256 {digest} differs from the checkpoint's {manifest.ModelSha256}; the file was changed or damaged.");
        }

        return (manifest, bytes);
    }

    /// <summary>Writes a complete round: model file, audit record (if any), then the manifest; then prunes old model files.</summary>
    public void Save(CheckpointManifest manifest, ReadOnlySpan<byte> modelBytes, RoundAudit? audit)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        System.IO.Directory.CreateDirectory(Directory);
        WriteAtomically(Path.Combine(Directory, manifest.ModelFile), modelBytes);
        if (audit is not null)
        {
            string auditDirectory = Path.Combine(Directory, "audit");
            System.IO.Directory.CreateDirectory(auditDirectory);
            WriteAtomically(Path.Combine(auditDirectory, AuditFileName(audit.Round)), JsonSerializer.SerializeToUtf8Bytes(audit, s_json));
        }

        WriteAtomically(ManifestPath, JsonSerializer.SerializeToUtf8Bytes(manifest, s_json));
        Prune(manifest.ModelFile);
    }

    /// <summary>Reads the audit record of a round, or null when there is none.</summary>
    public RoundAudit? LoadAudit(int round)
    {
        string path = Path.Combine(Directory, "audit", AuditFileName(round));
        return File.Exists(path) ? JsonSerializer.Deserialize<RoundAudit>(File.ReadAllBytes(path), s_json) : null;
    }

    /// <summary>The model file name of the global model after <paramref name="round"/>.</summary>
    public static string ModelFileName(int round) => string.Create(CultureInfo.InvariantCulture, $"model-round-{round:D4}.safetensors");

    private static string AuditFileName(int round) => string.Create(CultureInfo.InvariantCulture, $"round-{round:D4}.json");

    /// <summary>Temporary file in the same folder, flushed to the device, then renamed over the target (atomic on POSIX).</summary>
    private static void WriteAtomically(string path, ReadOnlySpan<byte> bytes)
    {
        string temporary = path + ".tmp-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));
        try
        {
            using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                stream.Write(bytes);
                stream.Flush(flushToDisk: true);
            }

            File.Move(temporary, path, overwrite: true);
        }
        catch
        {
            File.Delete(temporary);
            throw;
        }
    }

    private void Prune(string current)
    {
        var models = System.IO.Directory.GetFiles(Directory, "model-round-*.safetensors")
            .Select(Path.GetFileName)
            .OfType<string>()
            .Where(name => !string.Equals(name, current, StringComparison.Ordinal))
            .Order(StringComparer.Ordinal)
            .ToList();
        // The current file counts as one of the kept ones.
        foreach (string old in models.Take(Math.Max(0, models.Count - (_keepModels - 1))))
        {
            File.Delete(Path.Combine(Directory, old));
        }

        // Temporary files of writes interrupted by an earlier crash.
        foreach (string stale in System.IO.Directory.GetFiles(Directory, "*.tmp-*"))
        {
            File.Delete(stale);
        }
    }
}
