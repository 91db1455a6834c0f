"""PyTorch twins of FedRebasin's models and a dependency-free safetensors reader/writer.

The module definitions here are the ones the README shows: their state_dict keys are exactly the tensor
names FedRebasin writes, so files move both ways. Used by the interop tests (Debian's python3-torch).
"""
import json
import struct

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# ---------------------------------------------------------------- models


def mlp(in_features=784, hidden=(512, 512, 512), classes=10):
    """nn.Sequential(Linear, ReLU, ..., Linear); call it on x.flatten(1)."""
    layers, width = [], in_features
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    layers.append(nn.Linear(width, classes))
    return nn.Sequential(*layers)


def _norm(kind, channels):
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "layer":
        return nn.GroupNorm(1, channels)  # LayerNorm over (C,H,W) with a per-channel affine
    return None


class Vgg(nn.Module):
    PLANS = {
        "vgg11": [64, 0, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0],
        "vgg16": [64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0],
    }

    def __init__(self, name="vgg11", in_channels=1, size=28, classes=10, width=1.0, norm="layer"):
        super().__init__()
        layers, channels = [], in_channels
        for entry in self.PLANS[name]:
            if entry == 0:
                if size >= 2:  # no pool once the map is smaller than 2x2
                    layers.append(nn.MaxPool2d(2, 2))
                    size //= 2
                continue
            out = max(1, int(np.floor(entry * width + 0.5)))
            layers.append(nn.Conv2d(channels, out, 3, padding=1, bias=norm == "none"))
            n = _norm(norm, out)
            if n is not None:
                layers.append(n)
            layers.append(nn.ReLU())
            channels = out
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(channels, classes)

    def forward(self, x):
        x = F.adaptive_avg_pool2d(self.features(x), 1).flatten(1)
        return self.classifier(x)


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride, norm):
        super().__init__()
        bias = norm == "none"
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=bias)
        self.norm1 = _norm(norm, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=bias)
        self.norm2 = _norm(norm, cout)
        self.shortcut = None
        if stride != 1 or cin != cout:
            parts = [nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=bias)]
            n = _norm(norm, cout)
            if n is not None:
                parts.append(n)
            self.shortcut = nn.Sequential(*parts)

    def forward(self, x):
        y = self.conv1(x)
        y = F.relu(self.norm1(y) if self.norm1 is not None else y)
        y = self.conv2(y)
        y = self.norm2(y) if self.norm2 is not None else y
        return F.relu(y + (self.shortcut(x) if self.shortcut is not None else x))


class ResNet20(nn.Module):
    def __init__(self, in_channels=1, classes=10, width=1.0, norm="layer"):
        super().__init__()
        w = [max(1, int(np.floor(c * width + 0.5))) for c in (16, 32, 64)]
        self.conv1 = nn.Conv2d(in_channels, w[0], 3, padding=1, bias=norm == "none")
        self.norm1 = _norm(norm, w[0])
        channels, stages = w[0], []
        for s in range(3):
            blocks = []
            for b in range(3):
                blocks.append(BasicBlock(channels, w[s], 2 if s > 0 and b == 0 else 1, norm))
                channels = w[s]
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.linear = nn.Linear(channels, classes)

    def forward(self, x):
        x = self.conv1(x)
        x = F.relu(self.norm1(x) if self.norm1 is not None else x)
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.linear(F.adaptive_avg_pool2d(x, 1).flatten(1))


def build(metadata):
    """Builds the PyTorch twin described by a FedRebasin file's __metadata__."""
    arch = metadata["fedrebasin.architecture"]
    c, h, w = (int(v) for v in metadata["fedrebasin.input_shape"].split(","))
    classes = int(metadata["fedrebasin.classes"])
    width = float(metadata.get("fedrebasin.width", "1"))
    norm = metadata.get("fedrebasin.norm", "none")
    if arch == "mlp":
        hidden = [int(v) for v in metadata["fedrebasin.hidden"].split(",") if v]
        return mlp(c * h * w, hidden, classes), True
    if arch in Vgg.PLANS:
        return Vgg(arch, c, min(h, w), classes, width, norm), False
    if arch == "resnet20":
        return ResNet20(c, classes, width, norm), False
    raise ValueError(f"unknown architecture {arch}")


# ---------------------------------------------------------------- safetensors

_DTYPES = {
    "F32": (np.float32, torch.float32), "F64": (np.float64, torch.float64), "F16": (np.float16, torch.float16),
    "I64": (np.int64, torch.int64), "I32": (np.int32, torch.int32), "U8": (np.uint8, torch.uint8),
    "BOOL": (np.bool_, torch.bool),
}
_BY_TORCH = {t: (name, n) for name, (n, t) in _DTYPES.items()}


def save_file(tensors, path, metadata=None):
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, t in tensors.items():
        kind, np_type = _BY_TORCH[t.dtype]
        data = t.detach().cpu().contiguous().numpy().astype(np_type).tobytes()
        header[name] = {"dtype": kind, "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - (8 + len(text)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def load_file(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    metadata = header.pop("__metadata__", {})
    data = raw[8 + n:]
    tensors = {}
    for name, info in header.items():
        np_type, _ = _DTYPES[info["dtype"]]
        begin, end = info["data_offsets"]
        array = np.frombuffer(data[begin:end], dtype=np_type).reshape(info["shape"])
        tensors[name] = torch.from_numpy(array.copy())
    return tensors, metadata
