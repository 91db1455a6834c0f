using Grpc.Core;
using Microsoft.Extensions.Time.Testing;

namespace FedRebasin.Client.Tests;

public sealed class ClientResilienceTests
{
    private static readonly RetrySettings ZeroDelays = new()
    {
        MaxRetryAttempts = 4,
        BaseDelay = TimeSpan.Zero,
        MaxDelay = TimeSpan.Zero,
        BreakerMinimumThroughput = 100,
    };

    private static ClientResilience Create() => new(ZeroDelays, new FakeTimeProvider());

    [Fact]
    public async Task ExecuteAsync_UnavailableTwiceThenSuccess_RetriedAndSucceeds()
    {
        int calls = 0;
        var result = await Create().ExecuteAsync("test", TimeSpan.FromSeconds(5), _ =>
        {
            calls++;
            return calls <= 2 ? throw new RpcException(new Status(StatusCode.Unavailable, "down")) : Task.FromResult(42);
        }, TestContext.Current.CancellationToken);

        Assert.Equal(42, result);
        Assert.Equal(3, calls);
    }

    [Fact]
    public async Task ExecuteAsync_AttemptTimeoutSurfacingAsGrpcCancelled_RetriedAsATimeout()
    {
        // Arrange: the first attempt hangs until its token is cancelled, then throws what Grpc.Net.Client throws for a
        // call cancelled through its token (CANCELLED, "Call canceled by the client").
        var time = new FakeTimeProvider();
        var resilience = new ClientResilience(ZeroDelays, time);
        var firstStarted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        int calls = 0;

        // Act
        var call = resilience.ExecuteAsync("test", TimeSpan.FromSeconds(5), async ct =>
        {
            if (++calls > 1)
            {
                return 42;
            }

            firstStarted.SetResult();
            try
            {
                await Task.Delay(Timeout.InfiniteTimeSpan, ct);
            }
            catch (OperationCanceledException)
            {
                throw new RpcException(new Status(StatusCode.Cancelled, "Call canceled by the client."));
            }

            return 0;
        }, TestContext.Current.CancellationToken);
        await firstStarted.Task.WaitAsync(TestContext.Current.CancellationToken);
        time.Advance(TimeSpan.FromSeconds(6));

        // Assert: the timed-out attempt is retried like any attempt timeout.
        Assert.Equal(42, await call.WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken));
        Assert.Equal(2, calls);
    }

    [Fact]
    public async Task ExecuteAsync_CancelledByTheServer_NotRetried()
    {
        int calls = 0;
        var e = await Assert.ThrowsAsync<RpcException>(() => Create().ExecuteAsync<int>("test", TimeSpan.FromSeconds(5), _ =>
        {
            calls++;
            throw new RpcException(new Status(StatusCode.Cancelled, "cancelled"));
        }, TestContext.Current.CancellationToken));

        Assert.Equal(StatusCode.Cancelled, e.StatusCode);
        Assert.Equal(1, calls);
    }

    [Fact]
    public async Task ExecuteAsync_InvalidArgument_NotRetried()
    {
        int calls = 0;
        var e = await Assert.ThrowsAsync<RpcException>(() => Create().ExecuteAsync<int>("test", TimeSpan.FromSeconds(5), _ =>
        {
            calls++;
            throw new RpcException(new Status(StatusCode.InvalidArgument, "bad"));
        }, TestContext.Current.CancellationToken));

        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.Equal(1, calls);
    }

    [Fact]
    public async Task ExecuteAsync_DataLossAlways_TriedTwice()
    {
        int calls = 0;
        var e = await Assert.ThrowsAsync<RpcException>(() => Create().ExecuteAsync<int>("test", TimeSpan.FromSeconds(5), _ =>
        {
            calls++;
            throw new RpcException(new Status(StatusCode.DataLoss, "digest"));
        }, TestContext.Current.CancellationToken));

        Assert.Equal(StatusCode.DataLoss, e.StatusCode);
        Assert.Equal(2, calls);
    }

    [Fact]
    public async Task ExecuteAsync_UnavailableForever_GivesUpAfterMaxRetries()
    {
        int calls = 0;
        await Assert.ThrowsAsync<RpcException>(() => Create().ExecuteAsync<int>("test", TimeSpan.FromSeconds(5), _ =>
        {
            calls++;
            throw new RpcException(new Status(StatusCode.Unavailable, "down"));
        }, TestContext.Current.CancellationToken));

        Assert.Equal(ZeroDelays.MaxRetryAttempts + 1, calls);
    }
}
