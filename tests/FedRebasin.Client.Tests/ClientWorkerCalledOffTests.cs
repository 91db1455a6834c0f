using Grpc.Core;

namespace FedRebasin.Client.Tests;

public sealed class ClientWorkerCalledOffTests
{
    private static readonly RpcException s_cancelled = new(new Status(StatusCode.Cancelled, "Call canceled by the client."));

    [Fact]
    public void IsCalledOff_CancelledCallAfterTheTaskWasCalledOff_IsCalledOff()
    {
        // An upload waiting for its reply when a heartbeat says the round closed: the call ends as CANCELLED.
        using var task = new CancellationTokenSource();
        task.Cancel();

        Assert.True(ClientWorker.IsCalledOff(s_cancelled, task.Token, CancellationToken.None));
    }

    [Fact]
    public void IsCalledOff_CancelledCallWhileTheTaskStillRuns_IsAFailure()
    {
        Assert.False(ClientWorker.IsCalledOff(s_cancelled, CancellationToken.None, CancellationToken.None));
    }

    [Fact]
    public void IsCalledOff_WorkerStopping_IsNeverCalledOff()
    {
        using var stopping = new CancellationTokenSource();
        stopping.Cancel();

        Assert.False(ClientWorker.IsCalledOff(s_cancelled, stopping.Token, stopping.Token));
        Assert.False(ClientWorker.IsCalledOff(new OperationCanceledException(), stopping.Token, stopping.Token));
    }

    [Fact]
    public void IsCalledOff_OperationCanceledOrOtherStatus_AsBefore()
    {
        using var task = new CancellationTokenSource();
        task.Cancel();

        Assert.True(ClientWorker.IsCalledOff(new OperationCanceledException(), CancellationToken.None, CancellationToken.None));
        Assert.False(ClientWorker.IsCalledOff(new RpcException(new Status(StatusCode.Unavailable, "down")), task.Token, CancellationToken.None));
    }
}
