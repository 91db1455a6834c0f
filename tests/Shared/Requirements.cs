namespace FedRebasin.Tests.Shared;

/// <summary>
/// Preconditions of integration tests on things a machine may lack. Locally a missing one skips the test;
/// under CI (CI=true) it fails, because .ci/run installs everything and a silent skip would hide that it did not.
/// </summary>
internal static class Requirements
{
    /// <summary>Where the Debian package dataset-fashion-mnist puts the data.</summary>
    public const string FashionMnistDirectory = "/usr/share/datasets/fashion-mnist";

    /// <summary>Requires the real Fashion-MNIST files.</summary>
    public static void RequireFashionMnist() =>
        Require(File.Exists(Path.Combine(FashionMnistDirectory, "t10k-labels-idx1-ubyte.gz")), "Fashion-MNIST (apt-get install dataset-fashion-mnist)");

    /// <summary>Skips locally, fails under CI, when <paramref name="available"/> is false.</summary>
    public static void Require(bool available, string what)
    {
        if (!available && Environment.GetEnvironmentVariable("CI") == "true")
        {
            Assert.Fail($"{what} is missing; .ci/run should have installed it.");
        }

        Assert.SkipUnless(available, $"{what} is not installed");
    }
}
