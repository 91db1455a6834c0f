using FedRebasin.Data;
using FedRebasin.Models;
using FedRebasin.Tensors;
using FedRebasin.Training;
using Microsoft.Extensions.DependencyInjection;
using static TorchSharp.torch;

namespace FedRebasin.Coordinator.Tests;

/// <summary>Every accepted update is evaluated for the merge barrier (on a model the coordinator keeps and reloads).</summary>
public sealed class UpdateEvaluationTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Round_ThreeDifferentUpdates_ClientModelsLossIsTheMeanOfEachUpdatesOwnLoss()
    {
        // Arrange: fedavg with server-side evaluation on the catalog's synthetic test set.
        await using var host = await CoordinatorTestHost.StartAsync(new Dictionary<string, string?>
        {
            ["Coordinator:Strategy"] = "fedavg",
            ["Coordinator:Model:InputShape"] = "1,28,28",
            ["Coordinator:Model:Classes"] = "10",
            ["Coordinator:Evaluation:Dataset"] = "synthetic",
            ["Coordinator:Evaluation:Examples"] = "200",
        });
        var clients = new[] { "a", "b", "c" }.Select(id => new TestClient(host.Client, id)).ToArray();
        foreach (var client in clients)
        {
            await client.RegisterAsync();
        }

        var train = (await clients[0].WaitForTaskAsync(0)).Train;
        var payloads = new List<byte[]>();

        // Act: three updates that differ (each perturbed with its own seed); equal sample counts.
        foreach (var (client, seed) in clients.Select((c, i) => (c, i)))
        {
            payloads.Add(await client.TrainAsync(train, seed * 10 + 1));
            await client.UploadAsync(train.Round, train.ModelVersion, payloads[^1]);
        }

        var run = host.Services.GetRequiredService<CoordinatorRun>();
        for (int i = 0; i < 100 && run.CompletedRounds.Count == 0; i++)
        {
            await Task.Delay(50, Token);
        }

        // Assert: the same figure as evaluating each update's model on its own, on the coordinator's evaluation sample.
        Assert.NotEmpty(run.CompletedRounds);
        using var evaluation = TensorData.Sample(DatasetCatalog.Load("synthetic", DataSplit.Test, null), 200, 7, CPU);
        var losses = payloads.Select(p =>
        {
            using var model = ModelFile.FromSafeTensors(SafeTensors.Parse(p, "update"), "update");
            return Evaluator.Evaluate(model, evaluation).Loss;
        }).ToList();
        Assert.True(losses.Distinct().Count() == 3, "the updates should differ");
        Assert.Equal(losses.Average(), run.CompletedRounds[0].ClientModelsLoss, 5);
    }
}
