using System.Diagnostics;

namespace FedRebasin.Cli.Tests;

/// <summary>Runs the CLI and captures what it writes: in-process, or as its own <c>dotnet fedrebasin.dll</c> process.</summary>
internal static class CliRunner
{
    public static (int ExitCode, string Output, string Error) Run(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        int code = CliApplication.Run(args, output, error);
        return (code, output.ToString(), error.ToString());
    }

    /// <summary>Runs the CLI next to this assembly as a process of its own, as users run it; killed after <paramref name="timeout"/>.</summary>
    public static (int ExitCode, string Output, string Error) RunProcess(TimeSpan timeout, params string[] args)
    {
        using var process = Process.Start(ProcessStart(args))!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
            return (-1, output.Result, $"timed out after {timeout}\n{error.Result}");
        }

        return (process.ExitCode, output.Result, error.Result);
    }

    /// <summary><c>dotnet fedrebasin.dll ARGS</c> (the CLI next to this assembly) with its output redirected.</summary>
    public static ProcessStartInfo ProcessStart(IEnumerable<string> args)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "fedrebasin.dll"));
        foreach (string arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        return info;
    }
}
