using System.CommandLine;
using FedRebasin.Client;

namespace FedRebasin.Cli.Commands;

/// <summary><c>fedrebasin client</c>: a federation client that trains on its own split until the run is over.</summary>
internal static class ClientCommand
{
    public static Command Create(TextWriter output, TextWriter error)
    {
        var coordinator = new Option<string>("--coordinator") { Description = "Coordinator address, e.g. http://127.0.0.1:50051 (https:// for TLS).", Required = true };
        var clientId = new Option<string>("--client-id") { Description = "This client's id.", Required = true };
        var token = new Option<string?>("--token") { Description = "Bearer token, when the coordinator requires one (or FEDREBASIN_TOKEN)." };
        var dataset = CommonOptions.Dataset();
        var data = CommonOptions.Data();
        var partition = new Option<string>("--partition") { Description = "iid, dirichlet:ALPHA[,min=M] or shards:K.", DefaultValueFactory = _ => "iid" };
        var clients = new Option<int>("--clients") { Description = "Number of clients the training set is split among.", DefaultValueFactory = _ => 1 };
        var client = new Option<int>("--client") { Description = "This client's split (0-based).", DefaultValueFactory = _ => 0 };
        var seed = new Option<int>("--partition-seed") { Description = "Seed of the split (the same for every client of a run).", DefaultValueFactory = _ => 0 };
        var device = CommonOptions.Device();
        var ca = new Option<string?>("--ca") { Description = "Trust only this PEM CA bundle for the coordinator's TLS certificate (default: the system's trust store). Needs an https:// --coordinator." };
        var cert = new Option<string?>("--cert") { Description = "PEM client certificate for mutual TLS (CN or a DNS SAN equal to --client-id); with --key." };
        var key = new Option<string?>("--key") { Description = "PEM private key of --cert." };
        var torchThreads = new Option<int>("--torch-threads") { Description = "LibTorch intra-op threads for training (0: LibTorch's default, all cores); set it when several clients share one machine.", DefaultValueFactory = _ => 0 };
        var metricsPort = new Option<int?>("--metrics-port") { Description = "Serve this client's Prometheus metrics (plain HTTP) at http://HOST:PORT/metrics." };
        var command = new Command("client", "Run a federation client: train on this client's split each round until the run is over.")
        {
            coordinator, clientId, token, dataset, data, partition, clients, client, seed, device, torchThreads, ca, cert, key, metricsPort,
        };

        command.SetAction(async (parse, cancellationToken) =>
        {
            string address = parse.GetValue(coordinator)!;
            if (!Uri.TryCreate(address, UriKind.Absolute, out var uri) || (uri.Scheme != "http" && uri.Scheme != "https"))
            {
                throw new ArgumentException($"--coordinator must be an http:// or https:// address, not '{address}'.");
            }

            var options = new ClientOptions
            {
                CoordinatorAddress = uri,
                ClientId = parse.GetValue(clientId)!,
                Token = parse.GetValue(token) ?? Environment.GetEnvironmentVariable("FEDREBASIN_TOKEN"),
                DatasetName = parse.GetValue(dataset)!,
                DataDirectory = parse.GetValue(data),
                Partition = parse.GetValue(partition)!,
                Clients = parse.GetValue(clients),
                ClientIndex = parse.GetValue(client),
                PartitionSeed = parse.GetValue(seed),
                Device = parse.GetValue(device)!,
                TorchThreads = parse.GetValue(torchThreads),
                CaCertificatePath = parse.GetValue(ca),
                ClientCertificatePath = parse.GetValue(cert),
                ClientKeyPath = parse.GetValue(key),
            };
            options.Validate();
            int? port = parse.GetValue(metricsPort);
            if (port is not (null or (>= 1 and <= 65535)))
            {
                throw new ArgumentException($"--metrics-port must be a port in [1, 65535], not {port}.");
            }

            await using var metrics = port is int p ? await MetricsServer.StartAsync(p, [ClientMetrics.MeterName], cancellationToken) : null;
            var worker = new ClientWorker(options, metrics: metrics?.Metrics);
            long finalRound = await worker.RunAsync(cancellationToken);
            output.WriteLine($"Client {options.ClientId}: the run is over (final round {finalRound}).");
            return ExitCodes.Success;
        });
        return command;
    }
}
