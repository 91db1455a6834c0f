namespace FedRebasin.Cli;

/// <summary>JSON has no NaN or infinity: reports write null for a figure that is not a finite number.</summary>
internal static class JsonNumbers
{
    public static double? Finite(double value) => double.IsFinite(value) ? value : null;
}
