using Spectre.Console;

namespace FedRebasin.Cli;

/// <summary>Progress bars and tables on a console; plain lines when output is redirected.</summary>
internal sealed class ConsoleUi
{
    private ConsoleUi(IAnsiConsole console)
    {
        Console = console;
    }

    public IAnsiConsole Console { get; }

    /// <summary>A console writing to <paramref name="output"/> (the real terminal when it is <see cref="System.Console.Out"/>).</summary>
    public static ConsoleUi For(TextWriter output) => new(ReferenceEquals(output, System.Console.Out)
        ? AnsiConsole.Console
        : AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(output), Ansi = AnsiSupport.No, Interactive = InteractionSupport.No }));

    /// <summary>Whether live progress bars can be drawn (an interactive terminal, not CI).</summary>
    public bool CanShowProgress => Console.Profile.Capabilities.Interactive && Environment.GetEnvironmentVariable("CI") != "true";

    /// <summary>Writes one line of plain text (no markup).</summary>
    public void Line(string text) => Console.WriteLine(text);

    /// <summary>
    /// Runs <paramref name="work"/> with one progress bar of <paramref name="total"/> steps. The callback sets the
    /// steps done and a short status. Runs on the calling thread (TorchSharp's dispose scopes are per thread).
    /// </summary>
    public T WithProgress<T>(string title, double total, Func<Action<double, string>, T> work)
    {
        if (!CanShowProgress)
        {
            return work((_, _) => { });
        }

        return Console.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(context =>
            {
                var task = context.AddTask(Markup.Escape(title), maxValue: total);
                var result = work((done, status) =>
                {
                    task.Value = done;
                    task.Description = Markup.Escape(status.Length > 0 ? $"{title} {status}" : title);
                });
                task.Value = total;
                return result;
            });
    }
}
