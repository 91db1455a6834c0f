using System.Globalization;
using FedRebasin.Merging.Interpolation;
using FedRebasin.Merging.Matching;
using FedRebasin.Models;
using FedRebasin.Models.Permutations;
using FedRebasin.Reporting;
using FedRebasin.Training;
using static TorchSharp.torch;

namespace FedRebasin.Simulation;

/// <summary>Test loss and accuracy along the straight line between two client models.</summary>
/// <param name="From">Client index at α = 0 (the reference).</param>
/// <param name="To">Client index at α = 1.</param>
/// <param name="Alphas">Interpolation weights.</param>
/// <param name="Naive">The line between the models as trained.</param>
/// <param name="Aligned">The line after weight matching <paramref name="To"/> onto <paramref name="From"/>.</param>
public sealed record ClientInterpolation(int From, int To, IReadOnlyList<double> Alphas, InterpolationResult Naive, InterpolationResult Aligned)
{
    /// <summary>Points on each curve.</summary>
    public const int Steps = 11;

    /// <summary>
    /// The curves from <paramref name="a"/> to <paramref name="b"/> as trained and after weight matching
    /// <paramref name="b"/> onto <paramref name="a"/>, scored on <paramref name="testData"/>.
    /// </summary>
    public static ClientInterpolation Compute(int from, ClassifierModel a, int to, ClassifierModel b, TensorData testData, int seed)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        ArgumentNullException.ThrowIfNull(testData);
        double[] alphas = FedRebasin.Merging.Interpolation.Alphas.Linspace(Steps);
        (double, double) Score(ClassifierModel model)
        {
            var e = Evaluator.Evaluate(model, testData);
            return (e.Loss, e.Accuracy);
        }

        var naive = InterpolationCurve.Compute(a.Spec, a.state_dict(), b.state_dict(), alphas, Score);
        var permutationSpec = PermutationSpecs.For(a);
        var match = WeightMatching.Match(permutationSpec, a.state_dict(), b.state_dict(), new WeightMatchingOptions { Seed = seed });
        using var scope = NewDisposeScope();
        var aligned = permutationSpec.Permute(b.state_dict(), match.Permutations);
        var alignedCurve = InterpolationCurve.Compute(a.Spec, a.state_dict(), aligned, alphas, Score);
        return new ClientInterpolation(from, to, alphas, naive, alignedCurve);
    }

    /// <summary>Both curves (accuracy on the left axis, loss on the right) as a PNG titled <paramref name="title"/>.</summary>
    public void SavePlot(string path, string title)
    {
        Charts.SaveLines(path, title, "alpha", "accuracy",
            [
                new LineSeries("accuracy, as trained", Alphas, Naive.Accuracy),
                new LineSeries("accuracy, weight-matched", Alphas, Aligned.Accuracy),
                new LineSeries("loss, as trained", Alphas, Naive.Loss, RightAxis: true),
                new LineSeries("loss, weight-matched", Alphas, Aligned.Loss, RightAxis: true),
            ],
            rightLabel: "loss");
    }

    /// <summary>The curves as JSON-friendly values (snake_case keys).</summary>
    internal object ToJson() => new
    {
        from_client = From,
        to_client = To,
        alphas = Alphas,
        naive = new { loss = Naive.Loss, accuracy = Naive.Accuracy, loss_barrier = Naive.LossBarrier, accuracy_barrier = Naive.AccuracyBarrier },
        aligned = new { loss = Aligned.Loss, accuracy = Aligned.Accuracy, loss_barrier = Aligned.LossBarrier, accuracy_barrier = Aligned.AccuracyBarrier },
    };

    /// <summary>"Client 3 to client 5".</summary>
    internal string Describe() => string.Create(CultureInfo.InvariantCulture, $"Client {From} to client {To}");
}
