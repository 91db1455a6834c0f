namespace FedRebasin.Client.Tests;

public sealed class ClientOptionsTests
{
    [Fact]
    public void Validate_ValidOptions_DoesNotThrow()
    {
        var options = new ClientOptions { CoordinatorAddress = new Uri("http://127.0.0.1:5000"), ClientId = "c-1", Clients = 3, ClientIndex = 2 };
        options.Validate();
    }

    [Fact]
    public void Validate_BadSettings_NamesThem()
    {
        var options = new ClientOptions { ClientId = "bad id!", Clients = 2, ClientIndex = 2, Partition = "nope", Token = " ", TorchThreads = -1 };
        var e = Assert.Throws<ArgumentException>(options.Validate);
        Assert.Contains("CoordinatorAddress", e.Message, StringComparison.Ordinal);
        Assert.Contains("ClientId", e.Message, StringComparison.Ordinal);
        Assert.Contains("ClientIndex", e.Message, StringComparison.Ordinal);
        Assert.Contains("Partition", e.Message, StringComparison.Ordinal);
        Assert.Contains("Token", e.Message, StringComparison.Ordinal);
        Assert.Contains("TorchThreads", e.Message, StringComparison.Ordinal);
    }
}
