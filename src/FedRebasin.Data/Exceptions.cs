namespace FedRebasin.Data;

/// <summary>
/// A data file exists but its contents are not valid for the format being read (wrong magic, truncated,
/// trailing bytes, corrupt compression, out-of-range labels, ...). The message always names the file.
/// </summary>
public sealed class DataFormatException : Exception
{
    /// <summary>Creates the exception with a generic message.</summary>
    public DataFormatException()
        : base("Invalid data file.")
    {
    }

    /// <summary>Creates the exception with the given message.</summary>
    public DataFormatException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with the given message and inner exception.</summary>
    public DataFormatException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Creates the exception for <paramref name="filePath"/>; the message is "<c>{filePath}: {problem}</c>".</summary>
    public DataFormatException(string filePath, string problem, Exception? innerException)
        : base($"{filePath}: {problem}", innerException)
    {
        FilePath = filePath;
    }

    /// <summary>The offending file, when known.</summary>
    public string? FilePath { get; }
}

/// <summary>
/// The files of a dataset could not be found. The message is a single line telling the user what to do
/// (which package to install, or which files to put in which folder).
/// </summary>
public sealed class DatasetNotFoundException : Exception
{
    /// <summary>Creates the exception with a generic message.</summary>
    public DatasetNotFoundException()
        : base("Dataset not found.")
    {
    }

    /// <summary>Creates the exception with the given one-line message.</summary>
    public DatasetNotFoundException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with the given one-line message and inner exception.</summary>
    public DatasetNotFoundException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Creates the exception for <paramref name="datasetName"/> after looking in <paramref name="searchedDirectories"/>.</summary>
    public DatasetNotFoundException(string datasetName, IReadOnlyList<string> searchedDirectories, string message)
        : base(message)
    {
        DatasetName = datasetName;
        SearchedDirectories = searchedDirectories;
    }

    /// <summary>The catalog name of the dataset, when known.</summary>
    public string? DatasetName { get; }

    /// <summary>The directories that were searched (may be empty).</summary>
    public IReadOnlyList<string> SearchedDirectories { get; } = [];
}
