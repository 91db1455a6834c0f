namespace FedRebasin.Merging.Interpolation;

/// <summary>Barriers of an interpolation curve (named <c>Barriers</c>, not <c>Barrier</c>, to avoid clashing with <see cref="System.Threading.Barrier"/> under implicit usings) (Git Re-Basin, Definition 2.2; ALGORITHMS.md §1.7).</summary>
public static class Barriers
{
    /// <summary>
    /// Loss barrier <c>max_α L(α) − ½(L(0) + L(1))</c>, with L(0) and L(1) the curve's first and last values. Never
    /// negative for finite values (the maximum includes the endpoints); NaN if any loss is NaN.
    /// </summary>
    /// <param name="alphas">The curve's alphas (<see cref="Alphas.Validate"/>).</param>
    /// <param name="loss">The loss at each alpha.</param>
    /// <exception cref="ArgumentException">Invalid alphas, or the lengths differ.</exception>
    public static double Loss(IReadOnlyList<double> alphas, IReadOnlyList<double> loss)
    {
        Check(alphas, loss, nameof(loss));
        double max = double.NegativeInfinity;
        foreach (double value in loss)
        {
            max = double.IsNaN(value) ? double.NaN : Math.Max(max, value);
        }

        return max - 0.5 * (loss[0] + loss[^1]);
    }

    /// <summary>
    /// Accuracy barrier <c>½(Acc(0) + Acc(1)) − min_α Acc(α)</c>, with Acc(0) and Acc(1) the curve's first and last
    /// values. Never negative for finite values; NaN if any accuracy is NaN.
    /// </summary>
    /// <param name="alphas">The curve's alphas (<see cref="Alphas.Validate"/>).</param>
    /// <param name="accuracy">The accuracy at each alpha.</param>
    /// <exception cref="ArgumentException">Invalid alphas, or the lengths differ.</exception>
    public static double Accuracy(IReadOnlyList<double> alphas, IReadOnlyList<double> accuracy)
    {
        Check(alphas, accuracy, nameof(accuracy));
        double min = double.PositiveInfinity;
        foreach (double value in accuracy)
        {
            min = double.IsNaN(value) ? double.NaN : Math.Min(min, value);
        }

        return 0.5 * (accuracy[0] + accuracy[^1]) - min;
    }

    private static void Check(IReadOnlyList<double> alphas, IReadOnlyList<double> values, string name)
    {
        Alphas.Validate(alphas);
        ArgumentNullException.ThrowIfNull(values, name);
        if (values.Count != alphas.Count)
        {
            throw new ArgumentException($"Got {values.Count} values for {alphas.Count} alphas.", name);
        }
    }
}
