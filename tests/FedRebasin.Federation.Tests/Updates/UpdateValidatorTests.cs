using FedRebasin.Federation.Updates;
using FedRebasin.Models.Permutations;
using FedRebasin.Tensors;
using TorchSharp;
using static TorchSharp.torch;
using Kit = FedRebasin.Federation.Tests.Updates.UpdateTestKit;

namespace FedRebasin.Federation.Tests.Updates;

public class UpdateValidatorTests
{
    [Fact]
    public void Validate_ValidUpdate_AcceptsWithEqualTensors()
    {
        // Arrange
        using var global = Kit.Model(1);
        using var client = Kit.Model(2);
        var validator = new UpdateValidator(Kit.State(global), global.RepairPoints);
        var moments = Kit.Moments(global.RepairPoints, 1, 0);
        var submission = Kit.Submission("alice", Kit.Payload(Kit.State(client)), samples: 42, moments) with
        {
            Metrics = new Dictionary<string, double> { ["loss"] = 0.5 },
        };

        // Act
        var result = validator.Validate(submission);

        // Assert
        Assert.True(result.IsAccepted);
        using var update = result.Update;
        Assert.Equal("alice", update.ClientId);
        Assert.Equal(1, update.Round);
        Assert.Equal(42, update.SampleCount);
        Assert.Equal(0.5, update.Metrics["loss"]);
        Assert.Equal(global.RepairPoints.Count, update.Moments!.Count);
        foreach (var (name, tensor) in Kit.State(client))
        {
            Assert.True(tensor.allclose(update.State[name], rtol: 0, atol: 0), name);
        }
    }

    [Fact]
    public void Validate_WrongDigest_DigestMismatchDataLoss()
    {
        using var global = Kit.Model(1);
        var validator = new UpdateValidator(Kit.State(global), global.RepairPoints);
        byte[] payload = Kit.Payload(Kit.State(global));
        var submission = Kit.Submission("alice", payload) with { Sha256 = Kit.Digest([1, 2, 3]) };

        var refusal = validator.Validate(submission).Refusal;

        Assert.Equal(RefusalReason.DigestMismatch, refusal?.Reason);
        Assert.Equal(RpcStatusCode.DataLoss, refusal?.StatusCode);
        Assert.Contains("SHA-256", refusal?.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_Oversized_TooLargeResourceExhausted()
    {
        using var global = Kit.Model(1);
        var validator = new UpdateValidator(Kit.State(global), global.RepairPoints, new UpdateLimits { MaxModelBytes = 1000 });
        byte[] payload = Kit.Payload(Kit.State(global));

        var refusal = validator.Validate(Kit.Submission("alice", payload)).Refusal;

        Assert.Equal(RefusalReason.TooLarge, refusal?.Reason);
        Assert.Equal(RpcStatusCode.ResourceExhausted, refusal?.StatusCode);
        Assert.Contains("MaxModelBytes", refusal?.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_NotSafeTensors_MalformedInvalidArgument()
    {
        using var global = Kit.Model(1);
        var validator = new UpdateValidator(Kit.State(global), global.RepairPoints);
        byte[] payload = "this is not a safetensors file"u8.ToArray();

        var refusal = validator.Validate(Kit.Submission("alice", payload)).Refusal;

        Assert.Equal(RefusalReason.Malformed, refusal?.Reason);
        Assert.Equal(RpcStatusCode.InvalidArgument, refusal?.StatusCode);
        Assert.Contains("not a valid safetensors file", refusal?.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_MissingTensor_LayoutMismatchNamesIt()
    {
        using var global = Kit.Model(1);
        var state = Kit.State(global);
        var validator = new UpdateValidator(state, global.RepairPoints);
        string missing = state.Keys.Last();
        var entries = Kit.Entries(state).Where(e => e.Name != missing);

        var refusal = validator.Validate(Kit.Submission("alice", Kit.Payload(entries))).Refusal;

        Assert.Equal(RefusalReason.LayoutMismatch, refusal?.Reason);
        Assert.Equal(RpcStatusCode.InvalidArgument, refusal?.StatusCode);
        Assert.Contains($"'{missing}' is missing", refusal?.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_ExtraTensor_LayoutMismatchNamesIt()
    {
        using var global = Kit.Model(1);
        var state = Kit.State(global);
        var validator = new UpdateValidator(state, global.RepairPoints);
        var entries = Kit.Entries(state).Append(TensorEntry.FromFloat32("intruder", [1], [1f]));

        var refusal = validator.Validate(Kit.Submission("alice", Kit.Payload(entries))).Refusal;

        Assert.Equal(RefusalReason.LayoutMismatch, refusal?.Reason);
        Assert.Contains("'intruder'", refusal?.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_WrongShape_LayoutMismatchNamesTensorAndShapes()
    {
        using var global = Kit.Model(1);
        var state = Kit.State(global);
        var validator = new UpdateValidator(state, global.RepairPoints);
        string name = state.Keys.First();
        var entries = Kit.Entries(state).Select(e => e.Name == name ? TensorEntry.FromFloat32(name, [2, 2], [1f, 2f, 3f, 4f]) : e);

        var refusal = validator.Validate(Kit.Submission("alice", Kit.Payload(entries))).Refusal;

        Assert.Equal(RefusalReason.LayoutMismatch, refusal?.Reason);
        Assert.Contains($"'{name}'", refusal?.Message, StringComparison.Ordinal);
        Assert.Contains("[2, 2]", refusal?.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_WrongDType_LayoutMismatchNamesTensorAndDType()
    {
        using var global = Kit.Model(1);
        var state = Kit.State(global);
        var validator = new UpdateValidator(state, global.RepairPoints);
        string name = state.Keys.First();
        var entries = Kit.Entries(state).Select(e => e.Name == name ? e.ConvertTo(SafeTensorDType.F64) : e);

        var refusal = validator.Validate(Kit.Submission("alice", Kit.Payload(entries))).Refusal;

        Assert.Equal(RefusalReason.LayoutMismatch, refusal?.Reason);
        Assert.Contains($"'{name}'", refusal?.Message, StringComparison.Ordinal);
        Assert.Contains("F64", refusal?.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_NaNValue_NonFiniteNamesTensorAndLeaksNothing()
    {
        // Arrange
        using var global = Kit.Model(1);
        var state = Kit.State(global);
        var validator = new UpdateValidator(state, global.RepairPoints);
        string name = state.Keys.Last();
        var entries = Kit.Entries(state).Select(e =>
        {
            if (e.Name != name)
            {
                return e;
            }

            float[] values = e.ToFloat32Array();
            values[0] = float.NaN;
            return TensorEntry.FromFloat32(name, e.GetShapeArray(), values);
        }).ToList();
        byte[] payload = Kit.Payload(entries);
        long baseline = DisposeScopeManager.Statistics.ThreadTotalLiveCount;

        // Act
        var refusal = validator.Validate(Kit.Submission("alice", payload)).Refusal;

        // Assert
        Assert.Equal(RefusalReason.NonFinite, refusal?.Reason);
        Assert.Equal(RpcStatusCode.InvalidArgument, refusal?.StatusCode);
        Assert.Contains($"'{name}'", refusal?.Message, StringComparison.Ordinal);
        Assert.Contains("NaN", refusal?.Message, StringComparison.Ordinal);
        Assert.Equal(baseline, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
    }

    [Theory]
    [InlineData(0L)]
    [InlineData(-5L)]
    [InlineData(2_000_000_000L)]
    public void Validate_BadSampleCount_Refused(long samples)
    {
        using var global = Kit.Model(1);
        var validator = new UpdateValidator(Kit.State(global), global.RepairPoints);

        var refusal = validator.Validate(Kit.Submission("alice", Kit.Payload(Kit.State(global)), samples)).Refusal;

        Assert.Equal(RefusalReason.BadSampleCount, refusal?.Reason);
        Assert.Equal(RpcStatusCode.InvalidArgument, refusal?.StatusCode);
        Assert.Contains("samples", refusal?.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_MomentsWithWrongChannels_BadMomentsNamesPoint()
    {
        using var global = Kit.Model(1);
        var points = global.RepairPoints;
        var validator = new UpdateValidator(Kit.State(global), points);
        var moments = Kit.Moments(points, 1, 0).ToArray();
        moments[1] = new ChannelMoments(10, new double[3], new double[3]);

        var refusal = validator.Validate(Kit.Submission("alice", Kit.Payload(Kit.State(global)), moments: moments)).Refusal;

        Assert.Equal(RefusalReason.BadMoments, refusal?.Reason);
        Assert.Equal(RpcStatusCode.InvalidArgument, refusal?.StatusCode);
        Assert.Contains($"'{points[1].Name}'", refusal?.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_MomentsWithNaN_NonFiniteLikeDivergedWeights()
    {
        using var global = Kit.Model(1);
        var points = global.RepairPoints;
        var validator = new UpdateValidator(Kit.State(global), points);
        var moments = Kit.Moments(points, 1, 0).ToArray();
        double[] sums = [.. moments[0].Sum];
        sums[3] = double.NaN;
        moments[0] = new ChannelMoments(moments[0].Count, sums, moments[0].SumSquares);

        var refusal = validator.Validate(Kit.Submission("alice", Kit.Payload(Kit.State(global)), moments: moments)).Refusal;

        Assert.Equal(RefusalReason.NonFinite, refusal?.Reason);
        Assert.Contains("channel 3", refusal?.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_MomentsForTooFewPoints_BadMoments()
    {
        using var global = Kit.Model(1);
        var points = global.RepairPoints;
        var validator = new UpdateValidator(Kit.State(global), points);
        var moments = Kit.Moments(points, 1, 0).Take(1).ToArray();

        var refusal = validator.Validate(Kit.Submission("alice", Kit.Payload(Kit.State(global)), moments: moments)).Refusal;

        Assert.Equal(RefusalReason.BadMoments, refusal?.Reason);
    }

    [Theory]
    [InlineData(RefusalReason.DigestMismatch, RpcStatusCode.DataLoss)]
    [InlineData(RefusalReason.TooLarge, RpcStatusCode.ResourceExhausted)]
    [InlineData(RefusalReason.Malformed, RpcStatusCode.InvalidArgument)]
    [InlineData(RefusalReason.LayoutMismatch, RpcStatusCode.InvalidArgument)]
    [InlineData(RefusalReason.NonFinite, RpcStatusCode.InvalidArgument)]
    [InlineData(RefusalReason.BadSampleCount, RpcStatusCode.InvalidArgument)]
    [InlineData(RefusalReason.BadMoments, RpcStatusCode.InvalidArgument)]
    [InlineData(RefusalReason.WrongRound, RpcStatusCode.FailedPrecondition)]
    [InlineData(RefusalReason.TooLate, RpcStatusCode.Aborted)]
    [InlineData(RefusalReason.Duplicate, RpcStatusCode.AlreadyExists)]
    [InlineData(RefusalReason.Unauthenticated, RpcStatusCode.Unauthenticated)]
    [InlineData(RefusalReason.NotParticipant, RpcStatusCode.FailedPrecondition)]
    public void ToStatusCode_EveryReason_MapsToGrpcCode(RefusalReason reason, RpcStatusCode expected)
    {
        var code = RefusalReasons.ToStatusCode(reason);

        Assert.Equal(expected, code);
    }

    [Fact]
    public void RpcStatusCode_Values_MirrorGrpc()
    {
        Assert.Equal(3, (int)RpcStatusCode.InvalidArgument);
        Assert.Equal(15, (int)RpcStatusCode.DataLoss);
        Assert.Equal(16, (int)RpcStatusCode.Unauthenticated);
    }

    [Fact]
    public void UpdateLimits_Defaults_OneGibAndValid()
    {
        var limits = UpdateLimits.Default;

        limits.Validate();

        Assert.Equal(1L << 30, limits.MaxModelBytes);
    }

    [Fact]
    public void UpdateLimits_NonPositive_RefusedNamingTheSetting()
    {
        var limits = new UpdateLimits { MaxTensorCount = 0 };

        var error = Assert.Throws<ArgumentException>(limits.Validate);

        Assert.Contains("MaxTensorCount", error.Message, StringComparison.Ordinal);
    }
}
