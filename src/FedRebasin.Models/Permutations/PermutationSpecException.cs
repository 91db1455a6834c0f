namespace FedRebasin.Models.Permutations;

/// <summary>
/// A permutation spec is inconsistent, or does not fit a state dict. The message names the tensor, group and axis
/// involved and, where sizes disagree, both sizes.
/// </summary>
public sealed class PermutationSpecException : Exception
{
    /// <summary>Creates the exception with a message naming the tensor, group or axis at fault.</summary>
    public PermutationSpecException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with an inner cause.</summary>
    public PermutationSpecException(string message, Exception inner)
        : base(message, inner)
    {
    }

    /// <summary>Creates the exception.</summary>
    public PermutationSpecException()
    {
    }
}
