using System.Diagnostics;

namespace FedRebasin.Tests.Shared;

/// <summary>Runs the repository's Python helpers with Debian's python3 (which has python3-torch and python3-scipy).</summary>
internal static class PythonRunner
{
    /// <summary>Debian's interpreter: the one the system packages install into.</summary>
    public const string Interpreter = "/usr/bin/python3";

    /// <summary>The repository root, found from the test's build output.</summary>
    public static string RepositoryRoot { get; } = FindRoot();

    /// <summary>
    /// Skips the test when Debian's python3 cannot import <paramref name="module"/>, except under CI (CI=true),
    /// where .ci/run installs it and a missing module is a failure, not a skip.
    /// </summary>
    public static void RequireModule(string module)
    {
        bool available = File.Exists(Interpreter) && Run(["-c", $"import {module}"], throwOnError: false).ExitCode == 0;
        Requirements.Require(available, $"{Interpreter} with the '{module}' module");
    }

    /// <summary>Runs a script under tests/python with arguments; fails the test with its output when it fails.</summary>
    public static (int ExitCode, string Output) RunScript(string script, params string[] arguments) =>
        Run([Path.Combine(RepositoryRoot, "tests", "python", script), .. arguments], throwOnError: true);

    private static (int ExitCode, string Output) Run(IReadOnlyList<string> arguments, bool throwOnError)
    {
        var start = new ProcessStartInfo(Interpreter)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(5)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"python3 {string.Join(' ', arguments)} did not finish in 5 minutes.");
        }

        string output = stdout.Result + stderr.Result;
        if (throwOnError && process.ExitCode != 0)
        {
            Assert.Fail($"python3 {string.Join(' ', arguments)} exited {process.ExitCode}:\n{output}");
        }

        return (process.ExitCode, output);
    }

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "FedRebasin.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("FedRebasin.sln not found above the test's build output.");
    }
}
