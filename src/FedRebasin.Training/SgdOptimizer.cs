using FedRebasin.Torch;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace FedRebasin.Training;

/// <summary>
/// Stochastic gradient descent with momentum and L2 weight decay, computed with the same tensor operations in the same
/// order as <c>torch.optim.SGD</c> (so the same weights, bit for bit), but holding every scalar it passes to LibTorch
/// until the step is over.
/// </summary>
/// <remarks>
/// TorchSharp's own SGD passes the learning rate and momentum as implicit <see cref="Scalar"/> temporaries: objects with
/// a finalizer that no dispose scope tracks, and that are unreachable once their native handle has been read. Under
/// load, one step failed inside <c>THSTensor_add_</c> because its alpha "did not fit a float" though the learning rate
/// was 0.05: what a scalar freed by its finalizer during the native call would read (docs/TORCHSHARP-LOADING.md).
/// Here every scalar is a local disposed after the loop, so it cannot be finalized while LibTorch reads it.
/// </remarks>
internal sealed class SgdOptimizer : ModelOptimizer
{
    private readonly Tensor?[] _velocity;
    private readonly double _momentum;
    private readonly double _weightDecay;

    public SgdOptimizer(IEnumerable<Parameter> parameters, double momentum, double weightDecay)
        : base(parameters)
    {
        _velocity = new Tensor?[Parameters.Length];
        _momentum = momentum;
        _weightDecay = weightDecay;
    }

    /// <summary>One update: p -= lr · v, with v = μ·v + (g + λ·p), v = g + λ·p at the first step.</summary>
    public override void Step(double learningRate)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        using Scalar decay = _weightDecay.ToScalar(), momentum = _momentum.ToScalar(), step = (-learningRate).ToScalar();
        for (int i = 0; i < Parameters.Length; i++)
        {
            var parameter = Parameters[i];
            var grad = parameter.grad;
            if (grad is null)
            {
                continue;
            }

            if (_weightDecay != 0)
            {
                grad = grad.add(parameter, decay);
            }

            if (_momentum != 0)
            {
                if (_velocity[i] is { } velocity)
                {
                    velocity.mul_(momentum).add_(grad, HeldScalars.One);
                }
                else
                {
                    _velocity[i] = grad.clone().detach().DetachFromDisposeScope();
                }

                grad = _velocity[i]!;
            }

            parameter.add_(grad, step);
        }
    }

    public override void Dispose()
    {
        foreach (var velocity in _velocity)
        {
            velocity?.Dispose();
        }
    }
}
