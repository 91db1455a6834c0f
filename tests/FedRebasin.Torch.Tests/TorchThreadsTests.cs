using FedRebasin.Torch.Native;
using static TorchSharp.torch;

namespace FedRebasin.Torch.Tests;

public class TorchThreadsTests
{
    [Fact]
    public void UseOnThisThread_SetsTheCallingThreadOnly()
    {
        TorchNativeLoader.EnsureLoaded();
        using var otherReady = new ManualResetEventSlim();
        using var changed = new ManualResetEventSlim();
        int otherBefore = 0, otherAfter = 0;
        // A thread that LibTorch has already seen keeps its own count when another thread changes its.
        var other = new Thread(() =>
        {
            otherBefore = get_num_threads();
            otherReady.Set();
            changed.Wait();
            otherAfter = get_num_threads();
        });
        other.Start();
        otherReady.Wait(TestContext.Current.CancellationToken);
        int wanted = otherBefore == 1 ? 2 : 1;
        int seen = 0;
        var changer = new Thread(() =>
        {
            TorchThreads.UseOnThisThread(wanted);
            seen = get_num_threads();
        });
        changer.Start();
        changer.Join();
        changed.Set();
        other.Join();

        Assert.Equal(wanted, seen);
        Assert.Equal(otherBefore, otherAfter);
    }

    [Fact]
    public void UseOnThisThread_Zero_LeavesTheThreadAsItIs()
    {
        TorchNativeLoader.EnsureLoaded();
        int before = 0, after = 0;
        var thread = new Thread(() =>
        {
            before = get_num_threads();
            TorchThreads.UseOnThisThread(0);
            after = get_num_threads();
        });
        thread.Start();
        thread.Join();

        Assert.Equal(before, after);
        Assert.Throws<ArgumentOutOfRangeException>(() => TorchThreads.UseOnThisThread(-1));
    }

    [Fact]
    public void PerConcurrentWork_SharesTheBudgetOut_AtLeastOneEach()
    {
        int budget = TorchThreads.Budget;

        Assert.True(budget >= 1);
        Assert.Equal(budget, TorchThreads.PerConcurrentWork(1));
        Assert.Equal(Math.Max(1, budget / 2), TorchThreads.PerConcurrentWork(2));
        Assert.Equal(1, TorchThreads.PerConcurrentWork(budget + 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => TorchThreads.PerConcurrentWork(0));
    }
}
