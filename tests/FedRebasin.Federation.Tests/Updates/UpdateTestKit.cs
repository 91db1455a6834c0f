using System.Security.Cryptography;
using FedRebasin.Federation.Updates;
using FedRebasin.Models;
using FedRebasin.Models.Permutations;
using FedRebasin.Tensors;
using FedRebasin.Torch;
using TorchSharp;
using static TorchSharp.torch;

namespace FedRebasin.Federation.Tests.Updates;

/// <summary>Tiny MLPs, payloads and submissions for the update tests.</summary>
internal static class UpdateTestKit
{
    public static ModelSpec Spec { get; } = ModelRegistry.DefaultSpec("mlp", 1, 8, 8, 4, hidden: [16, 16]);

    public static PermutationSpec PermutationSpec { get; } = PermutationSpecs.For(Spec);

    public static ClassifierModel Model(long seed) => ModelRegistry.Create(Spec, seed: seed);

    public static Dictionary<string, Tensor> State(ClassifierModel model) =>
        model.state_dict().ToDictionary(p => p.Key, p => p.Value, StringComparer.Ordinal);

    public static byte[] Payload(IEnumerable<TensorEntry> entries) => SafeTensors.ToBytes(new SafeTensorsFile(entries));

    public static List<TensorEntry> Entries(IReadOnlyDictionary<string, Tensor> state) =>
        state.Select(p => TensorConversion.ToEntry(p.Key, p.Value)).ToList();

    public static byte[] Payload(IReadOnlyDictionary<string, Tensor> state) => Payload(Entries(state));

    public static string Digest(byte[] payload) => Convert.ToHexStringLower(SHA256.HashData(payload));

    public static UpdateSubmission Submission(
        string client, byte[] payload, long samples = 10, IReadOnlyList<ChannelMoments>? moments = null, int round = 1) =>
        new(client, round, samples, Digest(payload), payload, moments);

    /// <summary>Moments of random pre-activations (offset by <paramref name="shift"/>) at every repair point.</summary>
    public static IReadOnlyList<ChannelMoments> Moments(IReadOnlyList<RepairPoint> points, int seed, double shift)
    {
        using var scope = NewDisposeScope();
        var generator = new Generator((ulong)seed);
        var result = new List<ChannelMoments>();
        foreach (var point in points)
        {
            var moments = new ChannelMoments(point.Channels);
            moments.Add(randn([32, point.Channels], generator: generator).mul(1 + seed).add(shift));
            result.Add(moments);
        }

        return result;
    }

    /// <summary>The outputs of a model with <paramref name="state"/> on a fixed random batch.</summary>
    public static float[] Outputs(IReadOnlyDictionary<string, Tensor> state)
    {
        using var scope = NewDisposeScope();
        using var model = Model(99);
        using (no_grad())
        {
            foreach (var (name, target) in model.state_dict())
            {
                target.copy_(state[name]);
            }
        }

        model.eval();
        var input = randn([6, 1, 8, 8], generator: new Generator(7));
        using var noGrad = no_grad();
        return model.forward(input).data<float>().ToArray();
    }

    public static double MaxDifference(float[] a, float[] b) => a.Zip(b, (x, y) => Math.Abs((double)x - y)).Max();
}
