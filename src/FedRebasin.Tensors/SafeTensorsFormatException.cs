namespace FedRebasin.Tensors;

/// <summary>
/// A safetensors file or buffer is malformed or exceeds a <see cref="SafeTensorsLimits"/> bound. The message is
/// <c>"{SourceName}: {Problem}"</c>, for example
/// <c>model.safetensors: tensor '0.weight' has shape [512,784] (401408 elements of F32 = 1605632 bytes) but data_offsets span 1605628 bytes</c>.
/// </summary>
public sealed class SafeTensorsFormatException : Exception
{
    /// <summary>Creates an exception with a generic message and no source.</summary>
    public SafeTensorsFormatException()
        : this(string.Empty, "malformed safetensors data", null)
    {
    }

    /// <summary>Creates an exception whose message is <paramref name="message"/>, with no source.</summary>
    public SafeTensorsFormatException(string message)
        : base(message)
    {
        SourceName = string.Empty;
        Problem = message;
    }

    /// <summary>Creates an exception whose message is <paramref name="message"/>, with no source.</summary>
    public SafeTensorsFormatException(string message, Exception innerException)
        : base(message, innerException)
    {
        SourceName = string.Empty;
        Problem = message;
    }

    /// <summary>Creates an exception for <paramref name="problem"/> found in <paramref name="sourceName"/>.</summary>
    public SafeTensorsFormatException(string sourceName, string problem, Exception? innerException)
        : base(string.IsNullOrEmpty(sourceName) ? problem : $"{sourceName}: {problem}", innerException)
    {
        SourceName = sourceName ?? string.Empty;
        Problem = problem;
    }

    /// <summary>The file path or caller-supplied name of the data that failed to parse; may be empty.</summary>
    public string SourceName { get; }

    /// <summary>The problem alone, without the source name prefix.</summary>
    public string Problem { get; }
}
