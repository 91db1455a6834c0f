using static TorchSharp.torch;

namespace FedRebasin.Models.Tests;

/// <summary>
/// Guards against LibTorch's oneDNN AVX-512 convolution backward, which returned NaN gradients for ResNet-20's
/// strided blocks on AMD Zen 4 (see <c>OneDnnIsaCap</c>); the forward pass stayed finite, so only gradients show it.
/// </summary>
public class ConvolutionGradientTests(ITestOutputHelper output)
{
    // The oneDNN fault showed in every run (2 to 26 parameters in each of six); a separate fault, still open, gives NaN
    // BatchNorm gradients now and then under the suite's load and not again on a fresh thread
    // (docs/TORCHSHARP-LOADING.md, "Still open"). So the check fails only when every attempt, each on a thread of its
    // own, sees non-finite gradients, and an attempt that did is written to the test output.
    private const int Attempts = 3;

    [Theory]
    [InlineData("none")]
    [InlineData("batch")]
    public void ResNet20_BackwardOnRandomInput_EveryGradientIsFinite(string norm)
    {
        var failures = new List<string>();
        for (int attempt = 1; attempt <= Attempts; attempt++)
        {
            IReadOnlyList<string> nonFinite = [];
            var thread = new Thread(() => nonFinite = NonFiniteGradients(norm));
            thread.Start();
            thread.Join();
            if (nonFinite.Count == 0)
            {
                break;
            }

            string failure = $"attempt {attempt}: {nonFinite.Count} non-finite gradients, the first {string.Join(", ", nonFinite.Take(3))}";
            output.WriteLine(failure);
            failures.Add(failure);
        }

        Assert.True(failures.Count < Attempts, string.Join("; ", failures));
    }

    private static List<string> NonFiniteGradients(string norm)
    {
        var spec = ModelRegistry.DefaultSpec("resnet20", 1, 28, 28, 10, widthMultiplier: 0.25, norm: ModelSpec.ParseNorm(norm));
        using var model = ModelRegistry.Create(spec, seed: 1);
        var generator = new TorchSharp.torch.Generator(7);
        var nonFinite = new List<string>();

        // The oneDNN failure was intermittent from pass to pass, so take several passes.
        for (int pass = 0; pass < 4; pass++)
        {
            using var scope = NewDisposeScope();
            model.zero_grad();
            var input = randn([8, 1, 28, 28], generator: generator);
            var target = randint(0, 10, [8], generator: generator);
            var loss = nn.functional.cross_entropy(model.call(input), target);
            loss.backward();
            nonFinite.AddRange(model.named_parameters()
                .Where(p => p.parameter.grad is { } g && !g.isfinite().all().item<bool>())
                .Select(p => $"pass {pass}: {p.name}"));
        }

        return nonFinite;
    }
}
