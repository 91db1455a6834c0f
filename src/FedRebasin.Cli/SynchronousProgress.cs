namespace FedRebasin.Cli;

/// <summary>
/// An <see cref="IProgress{T}"/> that calls back on the reporting thread at once. <see cref="Progress{T}"/> posts to
/// the thread pool instead, which would draw progress out of order and after the work has finished.
/// </summary>
internal sealed class SynchronousProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}
