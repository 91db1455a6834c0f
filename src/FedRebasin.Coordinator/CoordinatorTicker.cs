using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace FedRebasin.Coordinator;

/// <summary>
/// Calls <see cref="CoordinatorRuntime.Tick"/> every <see cref="CoordinatorOptions.TickInterval"/> on the injected
/// <see cref="TimeProvider"/>: deadlines, grace periods and availability time-outs are handled here, while a round that
/// closes because every participant responded is aggregated at once inside the last SubmitUpdate.
/// </summary>
internal sealed partial class CoordinatorTicker : BackgroundService
{
    private readonly CoordinatorRuntime _runtime;
    private readonly ILogger<CoordinatorTicker> _logger;

    public CoordinatorTicker(CoordinatorRuntime runtime, ILogger<CoordinatorTicker> logger)
    {
        _runtime = runtime;
        _logger = logger;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(_runtime.Options.TickInterval, _runtime.TimeProvider);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
            {
                try
                {
                    _runtime.Tick();
                }
#pragma warning disable CA1031 // The ticker must survive a failed tick; the failure is logged.
                catch (Exception e)
#pragma warning restore CA1031
                {
                    LogTickFailed(e);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Shutting down.
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "A coordinator tick failed")]
    private partial void LogTickFailed(Exception exception);
}
