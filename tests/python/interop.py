"""Interop checks between PyTorch and FedRebasin, driven by the C# tests.

  interop.py make-mlp OUT_MODEL OUT_IO [SEED]   train an nn.Sequential MLP briefly, save it without metadata,
                                                 and save an input batch with its logits
  interop.py check MODEL IO                     load a FedRebasin file into the PyTorch twin (strict) and
                                                 compare its logits on IO's input with IO's logits
"""
import sys

import torch

from fedrebasin_torch import build, load_file, mlp, save_file


def make_mlp(model_path, io_path, seed="7"):
    torch.manual_seed(int(seed))
    model = mlp(784, (64, 32), 10)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randn(256, 1, 28, 28)
    y = torch.randint(0, 10, (256,))
    for _ in range(20):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x.flatten(1)), y)
        loss.backward()
        opt.step()
    model.eval()
    probe = torch.randn(16, 1, 28, 28)
    with torch.no_grad():
        logits = model(probe.flatten(1))
    save_file(model.state_dict(), model_path)
    save_file({"input": probe, "logits": logits}, io_path)


def check(model_path, io_path):
    state, metadata = load_file(model_path)
    model, flatten = build(metadata)
    model.load_state_dict(state, strict=True)
    model.eval()
    io, _ = load_file(io_path)
    with torch.no_grad():
        x = io["input"]
        logits = model(x.flatten(1) if flatten else x)
    err = (logits - io["logits"]).abs().max().item()
    print(f"max abs logit difference {err:.3g}")
    if err > 1e-4:
        sys.exit(f"logits differ by {err}")


if __name__ == "__main__":
    {"make-mlp": make_mlp, "check": check}[sys.argv[1]](*sys.argv[2:])
