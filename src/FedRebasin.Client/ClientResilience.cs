using Grpc.Core;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Polly;
using Polly.CircuitBreaker;
using Polly.Retry;
using Polly.Timeout;

namespace FedRebasin.Client;

/// <summary>
/// The Polly v8 pipeline every coordinator call runs through: retry (exponential backoff with jitter, outermost),
/// circuit breaker, then a per-attempt timeout (innermost, so each retry gets a fresh one). A call is one
/// delegate that does the whole exchange, so a retried upload re-streams from the start.
/// </summary>
public sealed partial class ClientResilience
{
    private static readonly ResiliencePropertyKey<TimeSpan> AttemptTimeoutKey = new("fedrebasin.attempt-timeout");

    private readonly ResiliencePipeline _pipeline;
    private readonly ILogger _logger;

    public ClientResilience(RetrySettings settings, TimeProvider timeProvider, ILogger? logger = null, ClientMetrics? metrics = null)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(timeProvider);
        _logger = logger ?? NullLogger.Instance;
        _pipeline = new ResiliencePipelineBuilder { TimeProvider = timeProvider }
            .AddRetry(new RetryStrategyOptions
            {
                ShouldHandle = args => ValueTask.FromResult(RpcFailurePolicy.ShouldRetry(args.Outcome.Exception, args.AttemptNumber)),
                MaxRetryAttempts = settings.MaxRetryAttempts,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = settings.BaseDelay,
                MaxDelay = settings.MaxDelay,
                OnRetry = args =>
                {
                    metrics?.Retried(args.Context.OperationKey ?? "call");
                    LogRetry(_logger, args.Context.OperationKey ?? "call", args.AttemptNumber + 1, args.RetryDelay, args.Outcome.Exception?.Message ?? "no result");
                    return ValueTask.CompletedTask;
                },
            })
            .AddCircuitBreaker(new CircuitBreakerStrategyOptions
            {
                ShouldHandle = args => ValueTask.FromResult(RpcFailurePolicy.CountsAsFault(args.Outcome.Exception)),
                FailureRatio = settings.BreakerFailureRatio,
                MinimumThroughput = settings.BreakerMinimumThroughput,
                SamplingDuration = settings.BreakerSamplingDuration,
                BreakDuration = settings.BreakerBreakDuration,
                OnOpened = args =>
                {
                    LogBreakerOpened(_logger, args.BreakDuration);
                    return ValueTask.CompletedTask;
                },
            })
            .AddTimeout(new TimeoutStrategyOptions
            {
                TimeoutGenerator = args => ValueTask.FromResult(args.Context.Properties.GetValue(AttemptTimeoutKey, Timeout.InfiniteTimeSpan)),
            })
            .Build();
    }

    /// <summary>
    /// Runs <paramref name="attempt"/> (given the attempt's cancellation token) with retries; each attempt is cancelled
    /// after <paramref name="attemptTimeout"/>, which the attempt should also use as its gRPC deadline.
    /// </summary>
    public async Task<T> ExecuteAsync<T>(string operation, TimeSpan attemptTimeout, Func<CancellationToken, Task<T>> attempt, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(attempt);
        var context = ResilienceContextPool.Shared.Get(operation, cancellationToken);
        try
        {
            context.Properties.Set(AttemptTimeoutKey, attemptTimeout);
            return await _pipeline.ExecuteAsync(async ctx =>
            {
                try
                {
                    return await attempt(ctx.CancellationToken).ConfigureAwait(false);
                }
                catch (RpcException e) when (e.StatusCode == StatusCode.Cancelled && ctx.CancellationToken.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
                {
                    // Grpc.Net.Client reports a call cancelled through its token as CANCELLED, not as an
                    // OperationCanceledException; only the latter tells the timeout strategy that its attempt timed out
                    // (a transient TimeoutRejectedException, retried). Otherwise an attempt timeout that fires just before
                    // the call's deadline would look like a fatal error and stop the worker.
                    throw new OperationCanceledException(e.Status.Detail, e, ctx.CancellationToken);
                }
            }, context).ConfigureAwait(false);
        }
        finally
        {
            ResilienceContextPool.Shared.Return(context);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Operation} failed, retry {Retry} in {Delay}: {Reason}")]
    private static partial void LogRetry(ILogger logger, string operation, int retry, TimeSpan delay, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Circuit breaker opened for {Duration}")]
    private static partial void LogBreakerOpened(ILogger logger, TimeSpan duration);
}
