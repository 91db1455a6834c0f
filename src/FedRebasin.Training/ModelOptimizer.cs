using TorchSharp.Modules;

namespace FedRebasin.Training;

/// <summary>
/// What <see cref="Trainer"/> needs of an optimiser: zero the gradients, and one step at a given learning rate.
/// The optimisers are our own (same operations as torch.optim's) so that every LibTorch scalar they pass is held until
/// the step is over (see <see cref="SgdOptimizer"/>).
/// </summary>
internal abstract class ModelOptimizer : IDisposable
{
    protected ModelOptimizer(IEnumerable<Parameter> parameters)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        Parameters = [.. parameters];
    }

    /// <summary>The parameters updated, in the model's order.</summary>
    protected Parameter[] Parameters { get; }

    /// <summary>Zeroes every gradient in place (as TorchSharp's optimizers do).</summary>
    public void ZeroGrad()
    {
        foreach (var parameter in Parameters)
        {
            using var grad = parameter.grad;
            grad?.zero_();
        }
    }

    /// <summary>Updates the parameters from their gradients.</summary>
    public abstract void Step(double learningRate);

    /// <summary>Frees the optimiser's state tensors.</summary>
    public abstract void Dispose();
}
