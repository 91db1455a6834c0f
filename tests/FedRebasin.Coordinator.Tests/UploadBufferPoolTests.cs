namespace FedRebasin.Coordinator.Tests;

public sealed class UploadBufferPoolTests
{
    [Fact]
    public void Rent_AfterReturn_ReusesTheBufferWhenLargeEnough()
    {
        var pool = new UploadBufferPool(capacity: 2);
        var first = pool.Rent(1000);
        pool.Return(first);

        var again = pool.Rent(900);
        var larger = pool.Rent(2000);

        Assert.Same(first, again);
        Assert.NotSame(first, larger);
        Assert.True(larger.Length >= 2000);
        Assert.Equal(0, pool.IdleCount);
    }

    [Fact]
    public void Return_BeyondCapacity_KeepsOnlyCapacityBuffers()
    {
        var pool = new UploadBufferPool(capacity: 2);
        var buffers = Enumerable.Range(0, 3).Select(_ => pool.Rent(10)).ToList();

        buffers.ForEach(pool.Return);

        Assert.Equal(2, pool.IdleCount);
    }

    [Fact]
    public void Trim_DropsIdleBuffers_NextRentAllocates()
    {
        var pool = new UploadBufferPool(capacity: 2);
        var buffer = pool.Rent(64);
        pool.Return(buffer);

        pool.Trim();
        var next = pool.Rent(64);

        Assert.Equal(0, pool.IdleCount);
        Assert.NotSame(buffer, next);
    }
}
