using FedRebasin.Models.Permutations;

namespace FedRebasin.Federation.Updates;

/// <summary>
/// An uploaded update as the transport hands it over, not yet validated: the header fields and the whole reassembled
/// payload (a safetensors file of the client's trained model).
/// </summary>
/// <param name="ClientId">The authenticated client.</param>
/// <param name="Round">The round the update is for.</param>
/// <param name="SampleCount">Training examples behind the update (the averaging weight).</param>
/// <param name="Sha256">The header's SHA-256 of the payload, 64 hex characters (case ignored).</param>
/// <param name="Payload">The whole safetensors payload. It must not be modified while the update is validated, nor while the accepted <see cref="ValidatedUpdate"/> is in use (it reads these bytes in place).</param>
/// <param name="Moments">Per-channel moments at every repair point, in the model's repair-point order, or null.</param>
/// <param name="Metrics">Training metrics reported by the client (e.g. loss), or null.</param>
public sealed record UpdateSubmission(
    string ClientId,
    int Round,
    long SampleCount,
    string Sha256,
    ReadOnlyMemory<byte> Payload,
    IReadOnlyList<ChannelMoments>? Moments = null,
    IReadOnlyDictionary<string, double>? Metrics = null)
{
    /// <summary>
    /// True when the transport already checked <see cref="Payload"/> against <see cref="Sha256"/> while receiving it
    /// (the coordinator's reassembler does), so the validator does not hash it a second time.
    /// </summary>
    public bool DigestVerified { get; init; }
}
