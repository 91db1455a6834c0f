using System.Globalization;
using System.Text.RegularExpressions;
using FedRebasin.Tensors;
using FedRebasin.Torch;
using TorchSharp;
using static TorchSharp.torch;

namespace FedRebasin.Models;

/// <summary>A model file did not match the model it should rebuild.</summary>
public sealed class ModelFileException : Exception
{
    /// <summary>Creates the exception; the message names the file and the tensor or field.</summary>
    public ModelFileException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with an inner cause.</summary>
    public ModelFileException(string message, Exception inner)
        : base(message, inner)
    {
    }

    /// <summary>Creates the exception.</summary>
    public ModelFileException()
    {
    }
}

/// <summary>
/// Saves and loads models as safetensors files: PyTorch <c>state_dict</c> names, the <see cref="ModelSpec"/> in
/// <c>__metadata__</c>. Files written by PyTorch (<c>safetensors.torch.save_file(model.state_dict(), ...)</c>) load
/// too: without metadata, an <c>nn.Sequential</c> MLP is recognised from its tensor names and shapes.
/// </summary>
public static partial class ModelFile
{
    /// <summary>The state of a model as safetensors entries (copies on the CPU), with its spec as metadata.</summary>
    public static SafeTensorsFile ToSafeTensors(ClassifierModel model, IReadOnlyDictionary<string, string>? extraMetadata = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        var entries = model.state_dict().Select(p => TensorConversion.ToEntry(p.Key, p.Value)).ToList();
        return new SafeTensorsFile(entries, Metadata(model, extraMetadata));
    }

    /// <summary>
    /// The bytes of <see cref="ToSafeTensors"/>'s file, written with one copy of each tensor straight into the result
    /// (the payload path: every client update and every published model goes through here).
    /// </summary>
    public static byte[] ToBytes(ClassifierModel model, IReadOnlyDictionary<string, string>? extraMetadata = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        var state = model.state_dict().ToList();
        var layouts = state.ConvertAll(p => new TensorLayout(p.Key, TensorConversion.ToSafeTensorDType(p.Value.dtype), p.Value.shape));
        return SafeTensors.ToBytes(layouts, Metadata(model, extraMetadata), (index, destination) =>
        {
            using var cpu = state[index].Value.detach().cpu().contiguous();
            cpu.bytes.CopyTo(destination);
        });
    }

    private static Dictionary<string, string> Metadata(ClassifierModel model, IReadOnlyDictionary<string, string>? extraMetadata)
    {
        var metadata = new Dictionary<string, string>(model.Spec.ToMetadata());
        foreach (var (key, value) in extraMetadata ?? new Dictionary<string, string>())
        {
            metadata[key] = value;
        }

        return metadata;
    }

    /// <summary>Writes the model atomically to <paramref name="path"/>.</summary>
    public static void Save(ClassifierModel model, string path, IReadOnlyDictionary<string, string>? extraMetadata = null) =>
        SafeTensors.Write(path, ToSafeTensors(model, extraMetadata));

    /// <summary>Reads a model file and rebuilds the model on <paramref name="device"/>.</summary>
    /// <exception cref="SafeTensorsFormatException">The file is not valid safetensors.</exception>
    /// <exception cref="ModelFileException">The tensors do not fit the architecture; the message names the tensor.</exception>
    public static ClassifierModel Load(string path, Device? device = null)
    {
        var file = SafeTensors.Read(path);
        return FromSafeTensors(file, Path.GetFileName(path), device);
    }

    /// <summary>Rebuilds a model from safetensors entries; <paramref name="source"/> names the file in errors.</summary>
    public static ClassifierModel FromSafeTensors(SafeTensorsFile file, string source, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(file);
        var spec = ReadSpec(file, source);
        var model = ModelRegistry.Create(spec);
        try
        {
            LoadState(model, file, source);
            if (device is not null && device.type != DeviceType.CPU)
            {
                model.to(device);
            }

            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The spec of a file: from its metadata, or for metadata-less files from PyTorch, inferred when the tensors
    /// are an <c>nn.Sequential</c> MLP (<c>0.weight</c>, <c>0.bias</c>, <c>2.weight</c>, ...; 28x28 grey input assumed
    /// when the first layer has 784 inputs, else a 1x1xF input).
    /// </summary>
    public static ModelSpec ReadSpec(SafeTensorsFile file, string source)
    {
        ArgumentNullException.ThrowIfNull(file);
        if (file.Metadata.ContainsKey(MetadataKeys.Architecture))
        {
            try
            {
                return ModelSpec.FromMetadata(file.Metadata, source);
            }
            catch (Exception e) when (e is FormatException or ArgumentException)
            {
                throw new ModelFileException(e.Message, e);
            }
        }

        return InferSequentialMlp(file, source);
    }

    /// <summary>Copies every tensor of <paramref name="file"/> into the model's parameters and buffers.</summary>
    /// <exception cref="ModelFileException">A tensor is missing, unexpected, or of another shape.</exception>
    public static void LoadState(ClassifierModel model, SafeTensorsFile file, string source)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(file);
        var state = model.state_dict();
        var unexpected = file.Names.Where(n => !state.ContainsKey(n)).ToList();
        if (unexpected.Count > 0)
        {
            throw new ModelFileException($"{source}: tensor '{unexpected[0]}' is not part of {model.Spec.Describe()}" +
                (unexpected.Count > 1 ? $" (nor are {unexpected.Count - 1} others)." : "."));
        }

        using var noGrad = no_grad();
        foreach (var (name, target) in state)
        {
            if (!file.TryGet(name, out var entry))
            {
                throw new ModelFileException($"{source}: tensor '{name}' is missing; {model.Spec.Describe()} needs it with shape [{string.Join(',', target.shape)}].");
            }

            if (!entry.Shape.SequenceEqual(target.shape))
            {
                throw new ModelFileException($"{source}: tensor '{name}' has shape [{string.Join(',', entry.Shape)}] but {model.Spec.Describe()} needs [{string.Join(',', target.shape)}].");
            }

            using var value = TensorConversion.ToTensor(entry, target.dtype, target.device);
            target.copy_(value);
        }
    }

    private static ModelSpec InferSequentialMlp(SafeTensorsFile file, string source)
    {
        var layers = new SortedDictionary<int, (TensorEntry? Weight, TensorEntry? Bias)>();
        foreach (var entry in file.Tensors)
        {
            var match = SequentialName().Match(entry.Name);
            if (!match.Success)
            {
                throw new ModelFileException($"{source}: no '{MetadataKeys.Architecture}' in the metadata, and tensor '{entry.Name}' is not part of an nn.Sequential MLP; only such MLPs can be recognised without metadata.");
            }

            int index = int.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture);
            var current = layers.GetValueOrDefault(index);
            layers[index] = match.Groups[2].Value == "weight" ? (entry, current.Bias) : (current.Weight, entry);
        }

        if (layers.Count == 0)
        {
            throw new ModelFileException($"{source}: the file holds no tensors.");
        }

        var widths = new List<int>();
        int expectedIndex = 0;
        foreach (var (index, (weight, bias)) in layers)
        {
            if (index != expectedIndex || weight is null || bias is null || weight.Shape.Count != 2 || bias.Shape.Count != 1 || bias.Shape[0] != weight.Shape[0])
            {
                throw new ModelFileException($"{source}: layer {index} does not fit an nn.Sequential(Linear, ReLU, Linear, ...) MLP: expected '{expectedIndex}.weight' (out,in) and '{expectedIndex}.bias' (out).");
            }

            if (widths.Count == 0)
            {
                widths.Add((int)weight.Shape[1]);
            }
            else if (weight.Shape[1] != widths[^1])
            {
                throw new ModelFileException($"{source}: tensor '{index}.weight' has {weight.Shape[1]} inputs but the previous layer has {widths[^1]} outputs.");
            }

            widths.Add((int)weight.Shape[0]);
            expectedIndex += 2;
        }

        int inputs = widths[0];
        var (c, h, w) = inputs == 784 ? (1, 28, 28) : inputs == 3072 ? (3, 32, 32) : (1, 1, inputs);
        return new ModelSpec(ModelRegistry.Mlp, c, h, w, widths[^1], widths.Skip(1).SkipLast(1).ToArray(), 1.0, NormKind.None);
    }

    [GeneratedRegex(@"^(\d+)\.(weight|bias)$")]
    private static partial Regex SequentialName();
}
