using System.CommandLine;
using System.Globalization;
using FedRebasin.Coordinator;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace FedRebasin.Cli.Commands;

/// <summary><c>fedrebasin coordinator</c>: serves the federation over gRPC (HTTP/2, plain or TLS) on one port.</summary>
internal static class CoordinatorCommand
{
    /// <summary>Input shape and classes of the data sets the CLI knows, so the coordinator needs no data files.</summary>
    private static readonly Dictionary<string, (string Shape, int Classes)> s_datasetShapes = new(StringComparer.Ordinal)
    {
        ["fashion-mnist"] = ("1,28,28", 10),
        ["mnist"] = ("1,28,28", 10),
        ["synthetic"] = ("1,28,28", 10),
        ["cifar10"] = ("3,32,32", 10),
        ["cifar100"] = ("3,32,32", 100),
    };

    public static Command Create(TextWriter output, TextWriter error)
    {
        var config = new Option<string?>("--config") { Description = "appsettings.json with a \"Coordinator\" section (environment variables FEDREBASIN_Coordinator__Rounds etc. and these options override it)." };
        var port = new Option<int>("--port") { Description = "Port for gRPC (HTTP/2; TLS with --tls-cert) on all interfaces.", DefaultValueFactory = _ => 50051 };
        var rounds = new Option<int?>("--rounds") { Description = "Rounds to run; with --out the coordinator exits after the last one." };
        var strategy = new Option<string?>("--strategy") { Description = "Merge strategy: fedavg, wm, wm+repair, wm+rescale, fedavg+rescale, wm+median, ..." };
        var minClients = new Option<int?>("--min-clients") { Description = "Clients needed before a round starts." };
        var model = new Option<string?>("--model") { Description = "Architecture of the global model (mlp, vgg11, vgg16, resnet20)." };
        var hidden = new Option<string?>("--hidden") { Description = "MLP hidden widths, e.g. 512,512,512." };
        var dataset = new Option<string?>("--dataset") { Description = "Data set the clients train on (sets the model's input shape and classes)." };
        var localEpochs = new Option<int?>("--local-epochs") { Description = "Local epochs per round." };
        var lr = new Option<double?>("--lr") { Description = "Clients' learning rate." };
        var seed = new Option<int?>("--seed") { Description = "Seed of the initial model, client sampling and alignment." };
        var outDir = new Option<string?>("--out") { Description = "Folder for final.safetensors (written when the run is done) and, unless --checkpoints says otherwise, the checkpoints." };
        var metricsPort = new Option<int?>("--metrics-port") { Description = "Serve Prometheus metrics (plain HTTP) at http://HOST:PORT/metrics." };
        var checkpoints = new Option<string?>("--checkpoints") { Description = "Checkpoint folder (model, round state, audit trail after every round); a restart with the same settings resumes from it." };
        var evaluate = new Option<bool>("--evaluate") { Description = "Evaluate every published model (and plain FedAvg of the same updates) on --dataset's test split." };
        var calibration = new Option<int?>("--calibration") { Description = "Examples of --dataset's training split the coordinator holds for repair (else clients answer statistics tasks)." };
        var data = CommonOptions.Data();
        var tlsCert = new Option<string?>("--tls-cert") { Description = "Serve TLS with this certificate: PEM (with --tls-key) or .pfx/.p12 (password: FEDREBASIN_Coordinator__Tls__CertificatePassword). See docs/SECURITY.md." };
        var tlsKey = new Option<string?>("--tls-key") { Description = "PEM private key of --tls-cert." };
        var clientCa = new Option<string?>("--client-ca") { Description = "Require mutual TLS: client certificates must chain to this PEM CA bundle and name the client_id (CN or DNS SAN)." };
        var command = new Command("coordinator", "Run the federation coordinator (gRPC).")
        {
            config, port, rounds, strategy, minClients, model, hidden, dataset, localEpochs, lr, seed, outDir, metricsPort, checkpoints, evaluate, calibration, data, tlsCert, tlsKey, clientCa,
        };

        command.SetAction(async (parse, cancellationToken) =>
        {
            var ui = ConsoleUi.For(output);
            var overrides = new Dictionary<string, string?>();
            void Set(string key, string? value)
            {
                if (value is not null)
                {
                    overrides[$"{CoordinatorOptions.SectionName}:{key}"] = value;
                }
            }

            Set("Rounds", parse.GetValue(rounds)?.ToString(CultureInfo.InvariantCulture));
            Set("MetricsPort", parse.GetValue(metricsPort)?.ToString(CultureInfo.InvariantCulture));
            Set("CheckpointDirectory", parse.GetValue(checkpoints) ?? parse.GetValue(outDir));
            if (parse.GetValue(evaluate) || parse.GetValue(calibration) is not null)
            {
                string datasetName = parse.GetValue(dataset) ?? throw new ArgumentException("--evaluate and --calibration read --dataset: give --dataset too.");
                if (parse.GetValue(evaluate))
                {
                    Set("Evaluation:Dataset", datasetName);
                    Set("Evaluation:Directory", parse.GetValue(data));
                    Set("Evaluation:Examples", "10000");
                }

                if (parse.GetValue(calibration) is int examples)
                {
                    Set("Calibration:Dataset", datasetName);
                    Set("Calibration:Directory", parse.GetValue(data));
                    Set("Calibration:Examples", examples.ToString(CultureInfo.InvariantCulture));
                }
            }

            Set("Strategy", parse.GetValue(strategy));
            Set("MinClients", parse.GetValue(minClients)?.ToString(CultureInfo.InvariantCulture));
            Set("Seed", parse.GetValue(seed)?.ToString(CultureInfo.InvariantCulture));
            Set("Model:Architecture", parse.GetValue(model));
            Set("Training:LocalEpochs", parse.GetValue(localEpochs)?.ToString(CultureInfo.InvariantCulture));
            Set("Training:LearningRate", parse.GetValue(lr)?.ToString("R", CultureInfo.InvariantCulture));
            Set("Tls:CertificatePath", parse.GetValue(tlsCert));
            Set("Tls:KeyPath", parse.GetValue(tlsKey));
            Set("Tls:ClientCertificateAuthorityPath", parse.GetValue(clientCa));
            if (parse.GetValue(hidden) is { } widths)
            {
                var parsed = CommonOptions.ParseWidths(widths, "--hidden");
                for (int i = 0; i < parsed.Length; i++)
                {
                    Set($"Model:Hidden:{i}", parsed[i].ToString(CultureInfo.InvariantCulture));
                }
            }

            if (parse.GetValue(dataset) is { } name)
            {
                if (!s_datasetShapes.TryGetValue(name, out var shape))
                {
                    throw new ArgumentException($"--dataset must be one of {string.Join(", ", s_datasetShapes.Keys)}, not '{name}'.");
                }

                Set("Model:InputShape", shape.Shape);
                Set("Model:Classes", shape.Classes.ToString(CultureInfo.InvariantCulture));
            }

            string? configFile = parse.GetValue(config);
            if (configFile is not null && !File.Exists(configFile))
            {
                throw new FileNotFoundException($"--config {configFile}: no such file.");
            }

            string? finalDirectory = parse.GetValue(outDir);
            if (finalDirectory is not null && parse.GetValue(rounds) is null)
            {
                throw new ArgumentException("--out writes the final model when the run is done: give --rounds too.");
            }

            var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = [] });
            if (configFile is not null)
            {
                builder.Configuration.AddJsonFile(Path.GetFullPath(configFile), optional: false);
            }

            builder.Configuration.AddEnvironmentVariables("FEDREBASIN_");
            builder.Configuration.AddInMemoryCollection(overrides);
            builder.Logging.ClearProviders();
            builder.Logging.AddSimpleConsole(o => o.SingleLine = true);
            builder.Logging.SetMinimumLevel(LogLevel.Information);
            builder.Logging.AddFilter("Microsoft", LogLevel.Warning);
            int listenPort = parse.GetValue(port);
            // The TLS settings come from the validated options, so a bad file is reported naming its setting.
            builder.WebHost.ConfigureKestrel(k =>
            {
                var settings = k.ApplicationServices.GetRequiredService<IOptions<CoordinatorOptions>>().Value;
                CoordinatorEndpoint.ListenAnyIP(k, listenPort, settings.Tls);
                if (settings.MetricsPort is int metricsPort)
                {
                    k.ListenAnyIP(metricsPort, l => l.Protocols = HttpProtocols.Http1);
                }
            });
            builder.Services.AddCoordinator(builder.Configuration);
            CoordinatorHosting.TuneNativeMemoryForServing();
            await using var app = builder.Build();
            app.MapCoordinator();
            await app.StartAsync(cancellationToken);
            var run = app.Services.GetRequiredService<CoordinatorRun>();
            var tls = app.Services.GetRequiredService<IOptions<CoordinatorOptions>>().Value.Tls;
            ui.Line($"Coordinator listening on port {listenPort} ({CoordinatorEndpoint.Describe(tls)}).");
            if (finalDirectory is null)
            {
                await app.WaitForShutdownAsync(cancellationToken);
                return ExitCodes.Success;
            }

            try
            {
                await run.WaitUntilDoneAsync(cancellationToken);
            }
            catch (InvalidOperationException e) when (run.StopReason is not null)
            {
                // Gave up on a round (Coordinator:MaxRoundAttempts): no final model; the checkpoints keep the last complete round.
                error.WriteLine($"error: {e.Message} No final model was written; the checkpoints hold round {run.Round}.");
                await Task.Delay(TimeSpan.FromSeconds(2), cancellationToken);
                await app.StopAsync(CancellationToken.None);
                return ExitCodes.Failure;
            }

            Directory.CreateDirectory(finalDirectory);
            string final = Path.Combine(finalDirectory, "final.safetensors");
            string temporary = final + ".tmp";
            await File.WriteAllBytesAsync(temporary, run.ModelBytes.ToArray(), cancellationToken);
            File.Move(temporary, final, overwrite: true);
            ui.Line(double.IsNaN(run.LastAccuracy)
                ? $"Run done after round {run.Round}: {final}"
                : string.Create(CultureInfo.InvariantCulture, $"Run done after round {run.Round}: {final} (test accuracy {run.LastAccuracy:P2})"));
            // Let clients that are still polling hear that the run is over before the server goes away.
            await Task.Delay(TimeSpan.FromSeconds(2), cancellationToken);
            await app.StopAsync(CancellationToken.None);
            return ExitCodes.Success;
        });
        return command;
    }
}
