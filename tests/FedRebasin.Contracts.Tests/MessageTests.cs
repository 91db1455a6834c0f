using FedRebasin.Contracts.V1;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;

namespace FedRebasin.Contracts.Tests;

public sealed class MessageTests
{
    [Fact]
    public void UpdateHeader_WithMoments_RoundTrips()
    {
        var header = new UpdateHeader
        {
            ClientId = "client-1",
            SessionId = "s-42",
            Round = 3,
            ModelVersion = "v3",
            SampleCount = 25_000,
            Sha256 = Sha256Hex.Compute([1, 2, 3]),
            TotalBytes = 1_234_567,
            Metrics = { ["train_loss"] = 0.42, ["train_accuracy"] = 0.87, ["seconds"] = 12.5 },
            Moments =
            {
                new ChannelMoments { Point = "layer1.0.conv1", Count = 1024, Sum = { 1.5, -2.25 }, SumSquares = { 3.0, 4.5 } },
                new ChannelMoments { Point = "fc", Count = 8, Sum = { double.Epsilon }, SumSquares = { 1e300 } },
            },
        };
        var message = new UpdateMessage { Header = header };

        var parsed = UpdateMessage.Parser.ParseFrom(message.ToByteArray());

        Assert.Equal(UpdateMessage.BodyOneofCase.Header, parsed.BodyCase);
        Assert.Equal(header, parsed.Header);
        Assert.Equal(-2.25, parsed.Header.Moments[0].Sum[1]);
        Assert.Equal(0.87, parsed.Header.Metrics["train_accuracy"]);
    }

    [Fact]
    public void UpdateMessage_Chunk_RoundTrips()
    {
        var message = new UpdateMessage { Chunk = ByteString.CopyFrom(1, 2, 3) };

        var parsed = UpdateMessage.Parser.ParseFrom(message.ToByteArray());

        Assert.Equal(UpdateMessage.BodyOneofCase.Chunk, parsed.BodyCase);
        Assert.Equal(new byte[] { 1, 2, 3 }, parsed.Chunk.ToByteArray());
        Assert.Null(parsed.Header);
    }

    [Fact]
    public void TaskReply_TrainTask_RoundTrips()
    {
        var reply = new TaskReply
        {
            Train = new TrainTask
            {
                Round = 7,
                ModelVersion = "v7",
                ModelSha256 = Sha256Hex.Compute([7]),
                ModelBytes = 300_000_000,
                HyperParameters = new HyperParameters
                {
                    LocalEpochs = 2,
                    BatchSize = 128,
                    LearningRate = 0.05,
                    Optimizer = "sgd",
                    Seed = 1234,
                    Momentum = 0.9,
                    WeightDecay = 5e-4,
                },
                Deadline = Timestamp.FromDateTimeOffset(new DateTimeOffset(2026, 1, 2, 3, 4, 5, TimeSpan.Zero)),
                CollectMoments = true,
            },
        };

        var parsed = TaskReply.Parser.ParseFrom(reply.ToByteArray());

        Assert.Equal(TaskReply.TaskOneofCase.Train, parsed.TaskCase);
        Assert.Equal(reply, parsed);
        Assert.Null(parsed.Wait);
        Assert.Equal(0.9, parsed.Train.HyperParameters.Momentum);
    }

    [Fact]
    public void TaskReply_SettingAnotherCase_ReplacesTheFirst()
    {
        var reply = new TaskReply { Train = new TrainTask { Round = 1 } };

        reply.Wait = new WaitTask { RetryAfter = Duration.FromTimeSpan(TimeSpan.FromSeconds(5)) };
        var parsed = TaskReply.Parser.ParseFrom(reply.ToByteArray());

        Assert.Equal(TaskReply.TaskOneofCase.Wait, parsed.TaskCase);
        Assert.Null(parsed.Train);
        Assert.Equal(TimeSpan.FromSeconds(5), parsed.Wait.RetryAfter.ToTimeSpan());
    }

    [Fact]
    public void TaskReply_StatisticsAndDone_RoundTrip()
    {
        var statistics = new TaskReply
        {
            Statistics = new StatisticsTask
            {
                Round = 4,
                ModelVersion = "v4-merged",
                RepairMode = "repair",
                Targets = { new RepairTarget { Point = "layer1", Means = { 0.1, 0.2 }, Stds = { 1.0, 2.0 } } },
            },
        };
        var done = new TaskReply { Done = new DoneTask { FinalRound = 10 } };

        Assert.Equal(statistics, TaskReply.Parser.ParseFrom(statistics.ToByteArray()));
        Assert.Equal(10, TaskReply.Parser.ParseFrom(done.ToByteArray()).Done.FinalRound);
    }

    [Fact]
    public void StatusReply_Defaults_AreUnspecified()
    {
        var parsed = StatusReply.Parser.ParseFrom(new StatusReply().ToByteArray());

        Assert.Equal(RunState.Unspecified, parsed.State);
        Assert.Equal(RunState.Done, StatusReply.Parser.ParseFrom(new StatusReply { State = RunState.Done }.ToByteArray()).State);
    }

    [Fact]
    public void FederationService_Descriptor_HasAllMethods()
    {
        var methods = Federation.Descriptor.Methods.Select(m => m.Name).ToList();

        Assert.Equal(
            ["Register", "GetTask", "DownloadModel", "SubmitUpdate", "SubmitStatistics", "Heartbeat", "GetStatus"],
            methods);
        Assert.True(Federation.Descriptor.FindMethodByName("DownloadModel").IsServerStreaming);
        Assert.True(Federation.Descriptor.FindMethodByName("SubmitUpdate").IsClientStreaming);
        Assert.Equal("fedrebasin.v1.Federation", Federation.Descriptor.FullName);
    }
}
