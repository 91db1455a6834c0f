using FedRebasin.Contracts;
using Grpc.Core;
using Polly.Timeout;

namespace FedRebasin.Client.Tests;

public sealed class RpcFailurePolicyTests
{
    [Theory]
    [InlineData(StatusCode.Unavailable, false, RetryDecision.Transient)]
    [InlineData(StatusCode.DeadlineExceeded, false, RetryDecision.Transient)]
    [InlineData(StatusCode.ResourceExhausted, false, RetryDecision.Transient)]
    [InlineData(StatusCode.Internal, true, RetryDecision.Transient)]
    [InlineData(StatusCode.Internal, false, RetryDecision.Fatal)]
    [InlineData(StatusCode.DataLoss, false, RetryDecision.RetryOnce)]
    [InlineData(StatusCode.InvalidArgument, false, RetryDecision.Fatal)]
    [InlineData(StatusCode.Unauthenticated, false, RetryDecision.Fatal)]
    [InlineData(StatusCode.PermissionDenied, false, RetryDecision.Fatal)]
    [InlineData(StatusCode.FailedPrecondition, false, RetryDecision.Fatal)]
    [InlineData(StatusCode.AlreadyExists, false, RetryDecision.Fatal)]
    [InlineData(StatusCode.Cancelled, false, RetryDecision.Fatal)]
    public void Classify_StatusCode_ExpectedDecision(StatusCode code, bool fromTransport, RetryDecision expected) =>
        Assert.Equal(expected, RpcFailurePolicy.Classify(code, fromTransport));

    [Fact]
    public void ShouldRetry_DataLoss_OnlyOnce()
    {
        var e = new RpcException(new Status(StatusCode.DataLoss, "digest"));
        Assert.True(RpcFailurePolicy.ShouldRetry(e, 0));
        Assert.False(RpcFailurePolicy.ShouldRetry(e, 1));
    }

    [Fact]
    public void ShouldRetry_TransportInternal_Retried()
    {
        var e = new RpcException(new Status(StatusCode.Internal, "stream reset", new IOException("reset")));
        Assert.True(RpcFailurePolicy.ShouldRetry(e, 3));
    }

    [Fact]
    public void ShouldRetry_DigestMismatchOnDownload_RetriedOnce()
    {
        var e = new ModelTransferException(TransferFailure.DigestMismatch, "bad digest");
        Assert.Equal(StatusCode.DataLoss, e.StatusCode);
        Assert.True(RpcFailurePolicy.ShouldRetry(e, 0));
        Assert.False(RpcFailurePolicy.ShouldRetry(e, 1));
    }

    [Fact]
    public void ShouldRetry_TimeoutRejected_Retried() =>
        Assert.True(RpcFailurePolicy.ShouldRetry(new TimeoutRejectedException(), 2));

    [Fact]
    public void ShouldRetry_OtherException_NotRetried() =>
        Assert.False(RpcFailurePolicy.ShouldRetry(new InvalidOperationException(), 0));
}
