using System.CommandLine;
using FedRebasin.Cli.Commands;
using FedRebasin.Data;
using FedRebasin.Models;
using FedRebasin.Tensors;

namespace FedRebasin.Cli;

/// <summary>Exit codes of the command line.</summary>
public static class ExitCodes
{
    /// <summary>The command did what it was asked.</summary>
    public const int Success = 0;

    /// <summary>The command ran but failed: missing data, a bad file, a failed check.</summary>
    public const int Failure = 1;

    /// <summary>The command line itself was wrong (unknown option, bad value).</summary>
    public const int Usage = 2;
}

/// <summary>Builds and runs the <c>fedrebasin</c> command tree.</summary>
public static class CliApplication
{
    /// <summary>Parses <paramref name="args"/>, runs the command and returns its exit code. Errors are one line on <paramref name="error"/>.</summary>
    public static int Run(string[] args, TextWriter output, TextWriter error)
    {
        ArgumentNullException.ThrowIfNull(error);
        var root = BuildRootCommand(output, error);
        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            string command = string.Join(' ', parse.CommandResult.Command is RootCommand ? [] : new[] { parse.CommandResult.Command.Name });
            error.WriteLine($"error: {parse.Errors[0].Message} Run 'fedrebasin {command}{(command.Length > 0 ? " " : "")}--help' for usage.");
            return ExitCodes.Usage;
        }

        try
        {
            return parse.Invoke(new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false });
        }
        catch (Exception e) when (IsUserError(e))
        {
            error.WriteLine($"error: {e.Message}");
            return e is ArgumentException or FormatException ? ExitCodes.Usage : ExitCodes.Failure;
        }
    }

    /// <summary>The root command with every verb (exposed for parser tests).</summary>
    internal static RootCommand BuildRootCommand(TextWriter output, TextWriter error) => new(
        "FedRebasin: federated learning with permutation-aware merging (Git Re-Basin weight matching, REPAIR).")
    {
        TrainCommand.Create(output, error),
        EvalCommand.Create(output, error),
        MergeCommand.Create(output, error),
        InterpolateCommand.Create(output, error),
        CoordinatorCommand.Create(output, error),
        ClientCommand.Create(output, error),
        SimulateCommand.Create(output, error),
    };

    private static bool IsUserError(Exception e) => e is ArgumentException or FormatException or DatasetNotFoundException
        or DataFormatException or SafeTensorsFormatException or ModelFileException or FileNotFoundException
        or DirectoryNotFoundException or UnauthorizedAccessException or IOException
        or FedRebasin.Models.Permutations.PermutationSpecException or FedRebasin.Training.TrainingDivergedException or Microsoft.Extensions.Options.OptionsValidationException
        or Grpc.Core.RpcException; // e.g. a client refused by the coordinator (token, certificate) or a failed TLS handshake
}
