using ScottPlot;

namespace FedRebasin.Reporting;

/// <summary>One line of a chart.</summary>
/// <param name="Label">Legend text.</param>
/// <param name="X">X values.</param>
/// <param name="Y">Y values (same count as X).</param>
/// <param name="RightAxis">Plot against the right-hand Y axis.</param>
public sealed record LineSeries(string Label, IReadOnlyList<double> X, IReadOnlyList<double> Y, bool RightAxis = false);

/// <summary>PNG charts for results (ScottPlot 5). Every method overwrites <c>path</c>.</summary>
public static class Charts
{
    /// <summary>Default image size in pixels.</summary>
    public const int DefaultWidth = 900;

    /// <summary>Default image height in pixels.</summary>
    public const int DefaultHeight = 540;

    /// <summary>A line chart with markers; series flagged <see cref="LineSeries.RightAxis"/> use a second Y axis labelled <paramref name="rightLabel"/>.</summary>
    public static void SaveLines(string path, string title, string xLabel, string yLabel, IReadOnlyList<LineSeries> series, string? rightLabel = null, int width = DefaultWidth, int height = DefaultHeight)
    {
        ArgumentNullException.ThrowIfNull(series);
        using var plot = new Plot();
        plot.Title(title);
        plot.XLabel(xLabel);
        plot.YLabel(yLabel);
        var palette = new ScottPlot.Palettes.Category10();
        for (int i = 0; i < series.Count; i++)
        {
            var s = series[i];
            if (s.X.Count != s.Y.Count)
            {
                throw new ArgumentException($"Series '{s.Label}' has {s.X.Count} x values and {s.Y.Count} y values.");
            }

            var line = plot.Add.Scatter(s.X.ToArray(), s.Y.ToArray(), palette.GetColor(i));
            line.LegendText = s.Label;
            line.LineWidth = 2;
            line.MarkerSize = 6;
            if (s.RightAxis)
            {
                line.Axes.YAxis = plot.Axes.Right;
                line.LinePattern = LinePattern.Dashed;
            }
        }

        if (rightLabel is not null)
        {
            plot.Axes.Right.Label.Text = rightLabel;
        }

        plot.ShowLegend(Alignment.LowerRight);
        plot.SavePng(path, width, height);
    }

    /// <summary>Grouped bars: one group per category, one bar per series.</summary>
    public static void SaveBars(string path, string title, string yLabel, IReadOnlyList<string> categories, IReadOnlyList<(string Label, IReadOnlyList<double> Values)> series, int width = DefaultWidth, int height = DefaultHeight)
    {
        ArgumentNullException.ThrowIfNull(categories);
        ArgumentNullException.ThrowIfNull(series);
        using var plot = new Plot();
        plot.Title(title);
        plot.YLabel(yLabel);
        var palette = new ScottPlot.Palettes.Category10();
        int groups = categories.Count;
        double barWidth = 0.8 / Math.Max(1, series.Count);
        for (int s = 0; s < series.Count; s++)
        {
            if (series[s].Values.Count != groups)
            {
                throw new ArgumentException($"Series '{series[s].Label}' has {series[s].Values.Count} values for {groups} categories.");
            }

            var bars = Enumerable.Range(0, groups).Select(g => new Bar
            {
                Position = g + ((s - ((series.Count - 1) / 2.0)) * barWidth),
                Value = series[s].Values[g],
                Size = barWidth * 0.95,
                FillColor = palette.GetColor(s),
            }).ToArray();
            var plotted = plot.Add.Bars(bars);
            plotted.LegendText = series[s].Label;
        }

        plot.Axes.Bottom.SetTicks(Enumerable.Range(0, groups).Select(g => (double)g).ToArray(), categories.ToArray());
        plot.Axes.Margins(bottom: 0);
        if (series.Count > 1)
        {
            plot.ShowLegend(Alignment.UpperRight);
        }

        plot.SavePng(path, width, height);
    }
}
