namespace FedRebasin.Data;

/// <summary>Which part of a dataset to load.</summary>
public enum DataSplit
{
    /// <summary>The training split (e.g. 60000 examples for Fashion-MNIST).</summary>
    Train,

    /// <summary>The held-out test split (e.g. 10000 examples for Fashion-MNIST).</summary>
    Test,
}
