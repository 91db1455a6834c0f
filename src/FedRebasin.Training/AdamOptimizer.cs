using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace FedRebasin.Training;

/// <summary>
/// Adam (Kingma and Ba) with L2 weight decay added to the gradient, computed with the same tensor operations in the
/// same order as TorchSharp's <c>torch.optim.Adam</c> (so the same weights, bit for bit), but holding every scalar it
/// passes to LibTorch until the step is over, for the reason given on <see cref="SgdOptimizer"/>.
/// </summary>
internal sealed class AdamOptimizer : ModelOptimizer
{
    /// <summary>torch.optim.Adam's defaults, which are also TorchSharp's.</summary>
    private const double Beta1 = 0.9, Beta2 = 0.999, Epsilon = 1e-8;

    private readonly Tensor[] _firstMoment;
    private readonly Tensor[] _secondMoment;
    private readonly long[] _steps;
    private readonly double _weightDecay;

    public AdamOptimizer(IEnumerable<Parameter> parameters, double weightDecay)
        : base(parameters)
    {
        _firstMoment = [.. Parameters.Select(p => zeros_like(p).DetachFromDisposeScope())];
        _secondMoment = [.. Parameters.Select(p => zeros_like(p).DetachFromDisposeScope())];
        _steps = new long[Parameters.Length];
        _weightDecay = weightDecay;
    }

    /// <summary>
    /// One update: m = β1·m + (1-β1)·g, v = β2·v + (1-β2)·g², p -= lr/(1-β1^t) · m / (√v / √(1-β2^t) + ε),
    /// with g the gradient plus λ·p.
    /// </summary>
    public override void Step(double learningRate)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        using Scalar decay = _weightDecay.ToScalar(), beta1 = Beta1.ToScalar(), beta2 = Beta2.ToScalar(),
            oneMinusBeta1 = (1 - Beta1).ToScalar(), oneMinusBeta2 = (1 - Beta2).ToScalar(), epsilon = Epsilon.ToScalar();
        for (int i = 0; i < Parameters.Length; i++)
        {
            var parameter = Parameters[i];
            var grad = parameter.grad;
            if (grad is null)
            {
                continue;
            }

            long t = ++_steps[i];
            double biasCorrection1 = 1 - Math.Pow(Beta1, t);
            double biasCorrection2 = 1 - Math.Pow(Beta2, t);
            if (_weightDecay != 0)
            {
                grad = grad.add(parameter, decay);
            }

            _firstMoment[i].mul_(beta1).add_(grad, oneMinusBeta1);
            _secondMoment[i].mul_(beta2).addcmul_(grad, grad, oneMinusBeta2);
            using Scalar rootCorrection2 = Math.Sqrt(biasCorrection2).ToScalar(), step = (-learningRate / biasCorrection1).ToScalar();
            var denominator = _secondMoment[i].sqrt().div_(rootCorrection2).add_(epsilon);
            parameter.addcdiv_(_firstMoment[i], denominator, step);
        }
    }

    public override void Dispose()
    {
        foreach (var moment in _firstMoment.Concat(_secondMoment))
        {
            moment.Dispose();
        }
    }
}
