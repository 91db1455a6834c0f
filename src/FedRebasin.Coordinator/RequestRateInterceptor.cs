using System.Globalization;
using System.Threading.RateLimiting;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Microsoft.Extensions.Options;

namespace FedRebasin.Coordinator;

/// <summary>
/// Limits each caller to <see cref="CoordinatorOptions.MaxRequestsPerSecond"/> calls per second (a token bucket holding
/// <see cref="CoordinatorOptions.RequestBurst"/>); a call over the limit gets RESOURCE_EXHAUSTED before any work is done.
/// The caller is its bearer token when it sends one (one bucket per client), else its connection (address and port:
/// without a token there is no identity to go by). The token is only a dictionary key here, never logged.
/// </summary>
internal sealed class RequestRateInterceptor : Interceptor, IDisposable
{
    private readonly PartitionedRateLimiter<string>? _limiter;
    private readonly int _perSecond;

    public RequestRateInterceptor(IOptions<CoordinatorOptions> options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var settings = options.Value;
        _perSecond = settings.MaxRequestsPerSecond;
        if (_perSecond <= 0)
        {
            return;
        }

        var bucket = new TokenBucketRateLimiterOptions
        {
            TokenLimit = settings.RequestBurst,
            TokensPerPeriod = _perSecond,
            ReplenishmentPeriod = TimeSpan.FromSeconds(1),
            QueueLimit = 0,
            AutoReplenishment = true,
        };
        _limiter = PartitionedRateLimiter.Create<string, string>(key => RateLimitPartition.GetTokenBucketLimiter(key, _ => bucket), StringComparer.Ordinal);
    }

    public override Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        ArgumentNullException.ThrowIfNull(continuation);
        Admit(context);
        return continuation(request, context);
    }

    public override Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream, ServerCallContext context, ClientStreamingServerMethod<TRequest, TResponse> continuation)
    {
        ArgumentNullException.ThrowIfNull(continuation);
        Admit(context);
        return continuation(requestStream, context);
    }

    public override Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        ArgumentNullException.ThrowIfNull(continuation);
        Admit(context);
        return continuation(request, responseStream, context);
    }

    public void Dispose() => _limiter?.Dispose();

    private void Admit(ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (_limiter is null)
        {
            return;
        }

        using var lease = _limiter.AttemptAcquire(CallerKey(context));
        if (!lease.IsAcquired)
        {
            throw new RpcException(new Status(StatusCode.ResourceExhausted, string.Create(CultureInfo.InvariantCulture,
                $"Request rate above MaxRequestsPerSecond ({_perSecond}); slow down and retry.")));
        }
    }

    private static string CallerKey(ServerCallContext context)
    {
        string? authorization = context.RequestHeaders.GetValue("authorization");
        if (!string.IsNullOrEmpty(authorization))
        {
            return "token:" + authorization;
        }

        return "peer:" + context.Peer;
    }
}
