namespace FedRebasin.Coordinator;

/// <summary>
/// Receive buffers for uploads, reused within a round and released when it closes. At most
/// <see cref="CoordinatorOptions.MaxConcurrentUploads"/> are in use at once, so a round with many clients does not leave
/// one dead model-sized array per upload for the garbage collector; <see cref="Trim"/> at the round's close lets the
/// idle ones go, so they do not add to the memory of aggregation and publication nor sit there between rounds.
/// Thread-safe.
/// </summary>
internal sealed class UploadBufferPool(int capacity)
{
    private readonly Lock _gate = new();
    private readonly List<byte[]> _idle = [];

    /// <summary>Idle buffers held now.</summary>
    public int IdleCount
    {
        get
        {
            lock (_gate)
            {
                return _idle.Count;
            }
        }
    }

    /// <summary>A buffer of at least <paramref name="length"/> bytes (contents undefined): an idle one, else a new one.</summary>
    public byte[] Rent(int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        lock (_gate)
        {
            int index = _idle.FindIndex(b => b.Length >= length);
            if (index >= 0)
            {
                var buffer = _idle[index];
                _idle.RemoveAt(index);
                return buffer;
            }
        }

        // Uninitialised: the upload overwrites every byte it uses.
        return GC.AllocateUninitializedArray<byte>(length);
    }

    /// <summary>Hands a buffer back for the next upload (kept only while fewer than the capacity are idle).</summary>
    public void Return(byte[] buffer)
    {
        ArgumentNullException.ThrowIfNull(buffer);
        lock (_gate)
        {
            if (_idle.Count < capacity)
            {
                _idle.Add(buffer);
            }
        }
    }

    /// <summary>Drops every idle buffer (the next uploads allocate new ones).</summary>
    public void Trim()
    {
        lock (_gate)
        {
            _idle.Clear();
        }
    }
}
