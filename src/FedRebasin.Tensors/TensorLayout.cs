namespace FedRebasin.Tensors;

/// <summary>A tensor to be written whose bytes come later: its name, dtype and shape (see <see cref="SafeTensors.ToBytes(IReadOnlyList{TensorLayout}, IReadOnlyDictionary{string, string}?, TensorDataWriter)"/>).</summary>
/// <param name="Name">The tensor's name.</param>
/// <param name="DType">Its element type as stored.</param>
/// <param name="Shape">Its dimensions.</param>
public sealed record TensorLayout(string Name, SafeTensorDType DType, IReadOnlyList<long> Shape);

/// <summary>Writes the little-endian bytes of tensor <paramref name="index"/> into <paramref name="destination"/>, which is exactly their size.</summary>
/// <param name="index">The tensor's position in the layout list.</param>
/// <param name="destination">Its slice of the data buffer.</param>
public delegate void TensorDataWriter(int index, Span<byte> destination);
