using FedRebasin.Merging.Averaging;
using FedRebasin.Models.Permutations;
using FedRebasin.Tensors;
using FedRebasin.Torch;
using static TorchSharp.torch;

namespace FedRebasin.Federation.Updates;

/// <summary>
/// An update that passed <see cref="UpdateValidator"/>: its tensors match the global model's layout and are finite.
/// It reads the submitted payload in place (<see cref="Entries"/>); tensors are made only when <see cref="State"/> is
/// first read (alignment, robust aggregation, evaluation need them; the weighted mean folds the entries directly).
/// The payload must stay unchanged until the update is disposed. Dispose it once it has been folded or discarded.
/// </summary>
public sealed class ValidatedUpdate : IDisposable
{
    private readonly IReadOnlyList<TensorEntry> _entries;
    private readonly Device _device;
    private Dictionary<string, Tensor>? _state;
    private bool _disposed;

    internal ValidatedUpdate(
        string clientId,
        int round,
        long sampleCount,
        IReadOnlyList<TensorEntry> entries,
        Device device,
        IReadOnlyList<ChannelMoments>? moments,
        IReadOnlyDictionary<string, double> metrics)
    {
        ClientId = clientId;
        Round = round;
        SampleCount = sampleCount;
        _entries = entries;
        _device = device;
        Moments = moments;
        Metrics = metrics;
    }

    /// <summary>The client that sent the update.</summary>
    public string ClientId { get; }

    /// <summary>The round it is for.</summary>
    public int Round { get; }

    /// <summary>Training examples behind it (positive): the averaging weight.</summary>
    public long SampleCount { get; }

    /// <summary>The client's model as the payload holds it, in the global model's tensor order and dtypes (no copy).</summary>
    /// <exception cref="ObjectDisposedException">The update was disposed.</exception>
    public IReadOnlyList<TensorEntry> Entries
    {
        get
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return _entries;
        }
    }

    /// <summary>
    /// The client's model by state-dict name, on the global model's device, in the global model's dtypes: made from
    /// <see cref="Entries"/> on first use, owned by the update (not in any dispose scope).
    /// </summary>
    /// <exception cref="ObjectDisposedException">The update was disposed.</exception>
    public IReadOnlyDictionary<string, Tensor> State
    {
        get
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return _state ??= CreateState();
        }
    }

    /// <summary>The client's moments at every repair point (in the client's own frame, copies), or null.</summary>
    public IReadOnlyList<ChannelMoments>? Moments { get; }

    /// <summary>The client's reported metrics (a copy; empty when none were sent).</summary>
    public IReadOnlyDictionary<string, double> Metrics { get; }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        if (_state is not null)
        {
            StateDicts.DisposeAll([_state]);
            _state = null;
        }

        _disposed = true;
    }

    /// <summary>New tensors of <see cref="Entries"/>, owned by the caller (not cached: <see cref="State"/> caches its own).</summary>
    internal Dictionary<string, Tensor> CreateState()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var state = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        try
        {
            using var noGrad = no_grad();
            foreach (var entry in _entries)
            {
                state[entry.Name] = TensorConversion.ToTensor(entry, device: _device).DetachFromDisposeScope();
            }

            return state;
        }
        catch
        {
            StateDicts.DisposeAll([state]);
            throw;
        }
    }
}

/// <summary>The outcome of <see cref="UpdateValidator.Validate"/>: exactly one of <see cref="Update"/> and <see cref="Refusal"/>.</summary>
public sealed class UpdateValidationResult
{
    private UpdateValidationResult(ValidatedUpdate? update, Refusal? refusal)
    {
        Update = update;
        Refusal = refusal;
    }

    /// <summary>The validated update (the caller owns and disposes it), or null when refused.</summary>
    public ValidatedUpdate? Update { get; }

    /// <summary>Why the update was refused, or null when it was accepted.</summary>
    public Refusal? Refusal { get; }

    /// <summary>Whether the update passed validation.</summary>
    [System.Diagnostics.CodeAnalysis.MemberNotNullWhen(true, nameof(Update))]
    [System.Diagnostics.CodeAnalysis.MemberNotNullWhen(false, nameof(Refusal))]
    public bool IsAccepted => Update is not null;

    internal static UpdateValidationResult Accept(ValidatedUpdate update) => new(update, null);

    internal static UpdateValidationResult Refuse(RefusalReason reason, string message) => new(null, new Refusal(reason, message));
}
