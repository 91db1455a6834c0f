using System.Globalization;
using System.Security.Cryptography;
using FedRebasin.Models.Permutations;
using FedRebasin.Tensors;
using FedRebasin.Torch;
using static TorchSharp.torch;

namespace FedRebasin.Federation.Updates;

/// <summary>
/// Checks an uploaded update against the current global model before anything touches the aggregate, in this order:
/// size (<see cref="RefusalReason.TooLarge"/>), sample count (<see cref="RefusalReason.BadSampleCount"/>), digest
/// (<see cref="RefusalReason.DigestMismatch"/>), safetensors format (<see cref="RefusalReason.Malformed"/>), tensor
/// names, shapes and dtypes (<see cref="RefusalReason.LayoutMismatch"/>), moments (<see cref="RefusalReason.BadMoments"/>),
/// finite values (<see cref="RefusalReason.NonFinite"/>). No tensor is created: the accepted update reads the payload in place. Thread-safe: it keeps only the
/// global model's layout, not its tensors.
/// </summary>
public sealed class UpdateValidator
{
    private readonly Dictionary<string, (long[] Shape, SafeTensorDType DType)> _layout = new(StringComparer.Ordinal);
    private readonly List<string> _order = [];
    private readonly RepairPoint[] _points;
    private readonly Device _device;
    private readonly SafeTensorsLimits _parseLimits;

    /// <summary>A validator for updates of the model whose state is <paramref name="globalState"/>.</summary>
    /// <param name="globalState">The current global model (only names, shapes, dtypes and device are read).</param>
    /// <param name="repairPoints">The model's repair points, in order (moments are checked against them).</param>
    /// <param name="limits">Bounds; <see cref="UpdateLimits.Default"/> when null.</param>
    /// <exception cref="ArgumentException">The limits are invalid or the state is empty.</exception>
    public UpdateValidator(IReadOnlyDictionary<string, Tensor> globalState, IReadOnlyList<RepairPoint> repairPoints, UpdateLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(globalState);
        ArgumentNullException.ThrowIfNull(repairPoints);
        Limits = limits ?? UpdateLimits.Default;
        Limits.Validate();
        if (globalState.Count == 0)
        {
            throw new ArgumentException("The global model has no tensors.", nameof(globalState));
        }

        foreach (var (name, tensor) in globalState)
        {
            _layout[name] = (tensor.shape, TensorConversion.ToSafeTensorDType(tensor.dtype));
            _order.Add(name);
        }

        _points = [.. repairPoints];
        _device = globalState.Values.First().device;
        _parseLimits = new SafeTensorsLimits
        {
            MaxFileBytes = Limits.MaxModelBytes,
            MaxHeaderBytes = Limits.MaxHeaderBytes,
            MaxTensorCount = Limits.MaxTensorCount,
        };
    }

    /// <summary>The limits enforced.</summary>
    public UpdateLimits Limits { get; }

    /// <summary>Validates <paramref name="submission"/>; on success the result reads the payload in place (keep it unchanged until the update is disposed).</summary>
    public UpdateValidationResult Validate(UpdateSubmission submission)
    {
        ArgumentNullException.ThrowIfNull(submission);
        string who = $"update from '{submission.ClientId}' for round {submission.Round.ToString(CultureInfo.InvariantCulture)}";
        var payload = submission.Payload;
        if (payload.Length > Limits.MaxModelBytes)
        {
            return Refuse(RefusalReason.TooLarge, $"The {who} is {payload.Length} bytes, above the limit of {Limits.MaxModelBytes} bytes (MaxModelBytes).");
        }

        if (submission.SampleCount <= 0 || submission.SampleCount > Limits.MaxSampleCount)
        {
            return Refuse(RefusalReason.BadSampleCount, $"The {who} claims {submission.SampleCount} training samples; the count must be between 1 and {Limits.MaxSampleCount} (MaxSampleCount).");
        }

        if (DigestProblem(submission.Sha256, submission.DigestVerified ? (ReadOnlyMemory<byte>?)null : payload, who) is { } digest)
        {
            return digest;
        }

        SafeTensorsFile file;
        try
        {
            file = SafeTensors.Parse(payload, submission.ClientId, _parseLimits);
        }
        catch (SafeTensorsFormatException e)
        {
            bool tooMany = IsLimitProblem(e);
            return Refuse(tooMany ? RefusalReason.TooLarge : RefusalReason.Malformed, $"The {who} is not a valid safetensors file: {e.Message}");
        }

        if (LayoutProblem(file, who) is { } layout)
        {
            return layout;
        }

        IReadOnlyList<ChannelMoments>? moments = null;
        if (submission.Moments is not null)
        {
            if (MomentsProblem(submission.Moments, who) is { } bad)
            {
                return bad;
            }

            moments = submission.Moments.Select(m => m.Clone()).ToArray();
        }

        return Accept(submission, file, moments, who);
    }

    private UpdateValidationResult Accept(UpdateSubmission submission, SafeTensorsFile file, IReadOnlyList<ChannelMoments>? moments, string who)
    {
        var entries = new TensorEntry[_order.Count];
        for (int i = 0; i < _order.Count; i++)
        {
            string name = _order[i];
            var entry = file[name];
            // Checked on the raw bytes: no tensor is made for an update that is refused (nor, for the mean, at all).
            long count = NonFiniteScan.Count(entry);
            if (count > 0)
            {
                return Refuse(RefusalReason.NonFinite, $"Tensor '{name}' of the {who} holds {count} non-finite value{(count == 1 ? string.Empty : "s")} (NaN or infinity); every weight must be a finite number.");
            }

            entries[i] = entry;
        }

        var metrics = new Dictionary<string, double>(submission.Metrics ?? new Dictionary<string, double>(), StringComparer.Ordinal);
        return UpdateValidationResult.Accept(new ValidatedUpdate(submission.ClientId, submission.Round, submission.SampleCount, entries, _device, moments, metrics));
    }

    private static bool IsLimitProblem(SafeTensorsFormatException e) =>
        e.Problem.Contains("MaxTensorCount", StringComparison.Ordinal) || e.Problem.Contains("MaxFileBytes", StringComparison.Ordinal);

    /// <summary>Checks the digest's form, and against <paramref name="payload"/> unless the transport already verified it (null).</summary>
    private static UpdateValidationResult? DigestProblem(string? declared, ReadOnlyMemory<byte>? payload, string who)
    {
        if (declared is null || declared.Length != 64 || !declared.All(char.IsAsciiHexDigit))
        {
            return Refuse(RefusalReason.Malformed, $"The header of the {who} carries '{declared}' as its SHA-256; a digest is 64 hexadecimal characters.");
        }

        if (payload is not { } bytes)
        {
            return null;
        }

        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(bytes.Span, hash);
        string actual = Convert.ToHexStringLower(hash);
        if (!string.Equals(actual, declared, StringComparison.OrdinalIgnoreCase))
        {
            return Refuse(RefusalReason.DigestMismatch, $"The payload of the {who} has SHA-256 {actual} but the header announced {declared.ToLowerInvariant()}; the data was corrupted in transit, upload it again.");
        }

        return null;
    }

    private UpdateValidationResult? LayoutProblem(SafeTensorsFile file, string who)
    {
        foreach (string name in _order)
        {
            var (shape, dtype) = _layout[name];
            if (!file.TryGet(name, out var entry))
            {
                return Refuse(RefusalReason.LayoutMismatch, $"Tensor '{name}' is missing from the {who}; the global model has it as {SafeTensorDTypes.ToSpecString(dtype)} {FormatShape(shape)}.");
            }

            if (!entry.Shape.SequenceEqual(shape))
            {
                return Refuse(RefusalReason.LayoutMismatch, $"Tensor '{name}' of the {who} has shape {FormatShape(entry.Shape)} but the global model's has {FormatShape(shape)}.");
            }

            if (entry.DType != dtype)
            {
                return Refuse(RefusalReason.LayoutMismatch, $"Tensor '{name}' of the {who} has dtype {SafeTensorDTypes.ToSpecString(entry.DType)} but the global model's is {SafeTensorDTypes.ToSpecString(dtype)}.");
            }
        }

        foreach (var entry in file.Tensors)
        {
            if (!_layout.ContainsKey(entry.Name))
            {
                return Refuse(RefusalReason.LayoutMismatch, $"Tensor '{entry.Name}' of the {who} is not part of the global model.");
            }
        }

        return null;
    }

    private UpdateValidationResult? MomentsProblem(IReadOnlyList<ChannelMoments> moments, string who)
    {
        if (moments.Count != _points.Length)
        {
            return Refuse(RefusalReason.BadMoments, $"The {who} carries moments for {moments.Count} repair points but the model has {_points.Length}.");
        }

        for (int p = 0; p < _points.Length; p++)
        {
            var point = _points[p];
            var m = moments[p];
            if (m is null)
            {
                return Refuse(RefusalReason.BadMoments, $"The moments of repair point '{point.Name}' are missing from the {who}.");
            }

            if (m.Channels != point.Channels)
            {
                return Refuse(RefusalReason.BadMoments, $"Repair point '{point.Name}' has {point.Channels} channels but the {who} sent moments for {m.Channels}.");
            }

            if (!(m.Count > 0) || !double.IsFinite(m.Count))
            {
                return Refuse(RefusalReason.BadMoments, string.Create(CultureInfo.InvariantCulture, $"The moments of repair point '{point.Name}' in the {who} have count {m.Count}; it must be positive and finite."));
            }

            for (int c = 0; c < m.Channels; c++)
            {
                if (!double.IsFinite(m.Sum[c]) || !double.IsFinite(m.SumSquares[c]))
                {
                    // NaN sums come from a model that diverged: the same refusal as NaN weights.
                    return Refuse(RefusalReason.NonFinite, string.Create(CultureInfo.InvariantCulture, $"The moments of repair point '{point.Name}', channel {c}, in the {who} are not finite (sum {m.Sum[c]}, sum of squares {m.SumSquares[c]}); local training diverged."));
                }

                if (m.SumSquares[c] < 0)
                {
                    return Refuse(RefusalReason.BadMoments, string.Create(CultureInfo.InvariantCulture, $"The moments of repair point '{point.Name}', channel {c}, in the {who} have a negative sum of squares ({m.SumSquares[c]})."));
                }
            }
        }

        return null;
    }

    private static string FormatShape(IReadOnlyList<long> shape) =>
        "[" + string.Join(", ", shape.Select(d => d.ToString(CultureInfo.InvariantCulture))) + "]";

    private static UpdateValidationResult Refuse(RefusalReason reason, string message) => UpdateValidationResult.Refuse(reason, message);
}
