using System.Runtime.InteropServices;
using FedRebasin.Merging.Averaging;
using FedRebasin.Tensors;
using FedRebasin.Torch;
using static TorchSharp.torch;

namespace FedRebasin.Merging.Tests.Averaging;

public sealed class WeightedFoldTests
{
    // Lengths around the vector widths (8 floats / 4 doubles with AVX2, 16 / 8 with AVX-512) and their remainders.
    public static TheoryData<int> Lengths => [0, 1, 3, 7, 8, 9, 15, 16, 17, 33, 1000];

    [Theory]
    [MemberData(nameof(Lengths))]
    public void AddFloat_MatchesTheScalarFormula_ElementByElement(int length)
    {
        var random = new Random(length);
        float[] x = [.. Enumerable.Range(0, length).Select(_ => (float)(random.NextDouble() * 200 - 100))];
        float[] y = [.. Enumerable.Range(0, length).Select(_ => (float)(random.NextDouble() * 2 - 1))];
        var sum = new double[length];

        WeightedFold.Add(sum, x, 3.25, first: true);
        WeightedFold.Add(sum, y, 0.1, first: false);

        for (int i = 0; i < length; i++)
        {
            double expected = (3.25 * x[i]) + (0.1 * y[i]);
            Assert.Equal(expected, sum[i]);
        }
    }

    [Theory]
    [MemberData(nameof(Lengths))]
    public void AddDouble_ThenDivide_MatchesTheScalarFormula(int length)
    {
        var random = new Random(length + 1);
        double[] x = [.. Enumerable.Range(0, length).Select(_ => random.NextDouble() - 0.5)];
        var sum = Enumerable.Repeat(double.NaN, length).ToArray();

        // first: true overwrites whatever the accumulator held (it is allocated uninitialised).
        WeightedFold.Add(sum, x, 2, first: true);
        WeightedFold.Add(sum, x, 5, first: false);
        var asFloat = new float[length];
        var asDouble = new double[length];
        WeightedFold.Divide(sum, 7, asFloat);
        WeightedFold.Divide(sum, 7, asDouble);

        for (int i = 0; i < length; i++)
        {
            double total = (2 * x[i]) + (5 * x[i]);
            Assert.Equal(total, sum[i]);
            Assert.Equal(total / 7, asDouble[i]);
            Assert.Equal((float)(total / 7), asFloat[i]);
        }
    }

    [Fact]
    public void Add_LengthMismatch_Refused()
    {
        var sum = new double[4];

        var error = Assert.Throws<ArgumentException>(() => WeightedFold.Add(sum, new float[5], 1, first: false));

        Assert.Contains("4 elements", error.Message, StringComparison.Ordinal);
    }
}

public sealed class RunningWeightedSumEntriesTests
{
    // Values from System.Random, not torch's generators: seeded model builds in parallel tests share torch's global one.
    private static Dictionary<string, Tensor> State(int seed)
    {
        var random = new Random(seed);
        float[] Values(int n) => [.. Enumerable.Range(0, n).Select(_ => (float)((random.NextDouble() * 4) - 2))];
        return new Dictionary<string, Tensor>(StringComparer.Ordinal)
        {
            ["layer.weight"] = tensor(Values(37 * 11), [37, 11]),
            ["layer.bias"] = tensor(Values(37), [37]).to_type(ScalarType.Float64),
            ["bn.num_batches_tracked"] = tensor(10L + seed),
        };
    }

    private static TensorEntry[] Entries(IReadOnlyDictionary<string, Tensor> state) =>
        [.. state.Select(p => TensorConversion.ToEntry(p.Key, p.Value))];

    [Fact]
    public void AddEntries_GivesBitForBitTheMeanOfAddingTheTensors()
    {
        using var scope = NewDisposeScope();
        var states = new[] { State(1), State(2), State(3) };
        double[] weights = [100, 250, 31];

        using var fromTensors = new RunningWeightedSum();
        using var fromEntries = new RunningWeightedSum();
        for (int i = 0; i < states.Length; i++)
        {
            fromTensors.Add(states[i], weights[i]);
            fromEntries.Add(Entries(states[i]), weights[i]);
        }

        var a = fromTensors.Mean();
        var b = fromEntries.Mean();

        foreach (var (name, tensor) in a)
        {
            Assert.Equal(tensor.dtype, b[name].dtype);
            Assert.Equal(tensor.shape, b[name].shape);
            Assert.True(tensor.allclose(b[name], rtol: 0, atol: 0), name);
        }

        Assert.Equal(11L, b["bn.num_batches_tracked"].item<long>());
    }

    [Fact]
    public void AddMapped_GivesBitForBitTheMeanOfAddingTheMappedStates()
    {
        using var scope = NewDisposeScope();
        var states = new[] { State(4), State(5) };
        Tensor Flip(string name, Tensor t) => name == "layer.weight" ? t.flip(0) : t.clone();

        using var mapped = new RunningWeightedSum();
        using var premapped = new RunningWeightedSum();
        using var plain = new RunningWeightedSum();
        foreach (var state in states)
        {
            mapped.Add(state, 3, Flip);
            premapped.Add(state.ToDictionary(p => p.Key, p => Flip(p.Key, p.Value), StringComparer.Ordinal), 3);
            plain.Add(state, 3);
        }

        var a = mapped.Mean();
        var b = premapped.Mean();
        foreach (var (name, tensor) in b)
        {
            Assert.True(tensor.allclose(a[name], rtol: 0, atol: 0), name);
        }

        Assert.False(a["layer.weight"].allclose(plain.Mean()["layer.weight"]));
    }

    [Fact]
    public void AddMapped_MapChangesAShapeOrThrows_FaultsTheSum()
    {
        using var scope = NewDisposeScope();
        var state = State(8);
        using var reshaped = new RunningWeightedSum();
        using var failed = new RunningWeightedSum();

        var error = Assert.Throws<ArgumentException>(() => reshaped.Add(state, 1, (name, t) => t.reshape(-1)));
        Assert.Throws<IOException>(() => failed.Add(state, 1, (name, t) => name == "layer.bias" ? throw new IOException("boom") : t.clone()));

        Assert.Contains("changed the shape", error.Message, StringComparison.Ordinal);
        foreach (var sum in new[] { reshaped, failed })
        {
            Assert.Throws<InvalidOperationException>(() => sum.Add(state, 1));
            Assert.Throws<InvalidOperationException>(() => sum.TakeMean());
        }
    }

    [Fact]
    public void TakeMean_EqualsMean_ThenRefusesEverything()
    {
        using var scope = NewDisposeScope();
        var states = new[] { State(6), State(7) };
        using var kept = new RunningWeightedSum();
        using var taken = new RunningWeightedSum();
        foreach (var sum in new[] { kept, taken })
        {
            sum.Add(states[0], 2);
            sum.Add(Entries(states[1]), 5);
        }

        var mean = kept.Mean();
        var takenMean = taken.TakeMean();

        Assert.Equal(mean.Keys.Order(), takenMean.Keys.Order());
        foreach (var (name, tensor) in mean)
        {
            Assert.True(tensor.allclose(takenMean[name], rtol: 0, atol: 0), name);
        }

        Assert.Throws<InvalidOperationException>(() => taken.TakeMean());
        Assert.Throws<InvalidOperationException>(() => taken.Mean());
        Assert.Throws<InvalidOperationException>(() => taken.Add(states[0], 1));
        Assert.Throws<InvalidOperationException>(() => taken.Add(Entries(states[0]), 1));
    }

    [Fact]
    public void Mean_IsTheWeightedAverageInFloat64_RoundedOnce()
    {
        using var scope = NewDisposeScope();
        var states = new[] { State(4), State(5) };

        using var sum = new RunningWeightedSum();
        sum.Add(states[0], 3);
        sum.Add(Entries(states[1]), 1);
        var mean = sum.Mean();

        var expected = states[0]["layer.weight"].to_type(ScalarType.Float64).mul(3)
            .add(states[1]["layer.weight"].to_type(ScalarType.Float64)).div(4).to_type(ScalarType.Float32);
        Assert.True(expected.allclose(mean["layer.weight"], rtol: 0, atol: 0));
        Assert.Equal(ScalarType.Float64, mean["layer.bias"].dtype);
    }

    [Fact]
    public void AddEntries_ReadsUnalignedPayloadBytesInPlace()
    {
        using var scope = NewDisposeScope();
        var state = State(6);
        var file = SafeTensors.ToBytes(new SafeTensorsFile(Entries(state)));
        // The same file one byte into a larger buffer: every float32 sits at an odd address.
        var shifted = new byte[file.Length + 1];
        file.CopyTo(shifted.AsMemory(1));
        var parsed = SafeTensors.Parse(shifted.AsMemory(1), "shifted");

        using var sum = new RunningWeightedSum();
        sum.Add(parsed.Tensors, 2);
        var mean = sum.Mean();

        Assert.True(state["layer.weight"].allclose(mean["layer.weight"], rtol: 0, atol: 0));
        Assert.True(state["layer.bias"].allclose(mean["layer.bias"], rtol: 0, atol: 0));
    }

    [Fact]
    public void AddEntries_HalfPrecision_AveragedAndReturnedInTheirType()
    {
        using var scope = NewDisposeScope();
        var a = new Dictionary<string, Tensor> { ["w"] = tensor(new float[] { 1, 2, 3 }).to_type(ScalarType.BFloat16) };
        var b = new Dictionary<string, Tensor> { ["w"] = tensor(new float[] { 3, 4, 6 }).to_type(ScalarType.BFloat16) };

        using var sum = new RunningWeightedSum();
        sum.Add(Entries(a), 1);
        sum.Add(b, 1);
        var mean = sum.Mean();

        Assert.Equal(ScalarType.BFloat16, mean["w"].dtype);
        Assert.Equal([2f, 3f, 4.5f], mean["w"].to_type(ScalarType.Float32).data<float>().ToArray());
    }

    [Fact]
    public void AddEntries_OtherLayout_RefusedAndNothingCounted()
    {
        using var scope = NewDisposeScope();
        using var sum = new RunningWeightedSum();
        sum.Add(State(7), 1);
        var wrongShape = Entries(State(8));
        wrongShape[0] = TensorEntry.FromFloat32("layer.weight", [11, 37], new float[11 * 37]);
        var missing = Entries(State(8))[1..];

        var shapeError = Assert.Throws<ArgumentException>(() => sum.Add(wrongShape, 1));
        var missingError = Assert.Throws<ArgumentException>(() => sum.Add(missing, 1));

        Assert.Contains("layer.weight", shapeError.Message, StringComparison.Ordinal);
        Assert.Contains("layer.weight", missingError.Message, StringComparison.Ordinal);
        Assert.Equal(1, sum.Count);
        Assert.Equal(1, sum.TotalWeight);
    }

    [Fact]
    public void AddTensors_NonContiguousInput_ReadInLogicalOrder()
    {
        using var scope = NewDisposeScope();
        var transposed = arange(12, dtype: ScalarType.Float32).reshape(3, 4).t();
        Assert.False(transposed.is_contiguous());

        using var sum = new RunningWeightedSum();
        sum.Add(new Dictionary<string, Tensor> { ["w"] = transposed }, 1);
        var mean = sum.Mean();

        Assert.True(transposed.contiguous().allclose(mean["w"], rtol: 0, atol: 0));
        Assert.Equal(MemoryMarshal.Cast<byte, float>(transposed.contiguous().bytes).ToArray(), MemoryMarshal.Cast<byte, float>(mean["w"].bytes).ToArray());
    }
}
