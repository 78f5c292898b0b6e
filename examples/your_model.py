#!/usr/bin/python3
"""Bring your own model and data to edgebed: the tutorial's script (docs/your-model.md).
Needs Debian's python3-torch (1.13.1, the version edgebed's libtorch is) and python3-numpy.

    /usr/bin/python3 examples/your_model.py make runs/your-files   # writes train.npz, test.npz, model.pt
    build/edgebed run examples/your_model.toml                      # trains it federated
    /usr/bin/python3 examples/your_model.py check runs/your-model/final_model.pt runs/your-files/test.npz

The data are Fashion-MNIST from Debian's dataset-fashion-mnist, given a client_id per image: 40
"users" who each photograph mostly two kinds of clothing, so data.partition = "natural" gives every
node one user's pictures (the LEAF / FEMNIST way). Replace the arrays with your own: x of any shape
(images, feature vectors, token ids), y int64 labels or float targets, client_id optional.
"""
import gzip
import os
import sys

import numpy as np
import torch
from torch import nn


class Net(nn.Module):
    """A small CNN for 1x28x28 images. Anything TorchScript can script or trace works the same way."""

    def __init__(self, classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(32 * 7 * 7, 64), nn.ReLU(), nn.Linear(64, classes))

    def forward(self, x):
        return self.head(self.features(x))

    # Optional: edgebed uses an exported loss(output, target) when the module has one (model.loss = "auto").
    @torch.jit.export
    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(output, target, label_smoothing=0.05)


def read_idx(path, offset):
    with gzip.open(path) as f:
        return np.frombuffer(f.read(), np.uint8, offset=offset)


def make(out):
    os.makedirs(out, exist_ok=True)
    src = os.environ.get("EDGEBED_DATA_DIR", "/usr/share/datasets/fashion-mnist")
    rng = np.random.default_rng(1)
    for split, prefix, n in (("train", "train", 20000), ("test", "t10k", 5000)):
        x = read_idx(f"{src}/{prefix}-images-idx3-ubyte.gz", 16).reshape(-1, 1, 28, 28)[:n]
        y = read_idx(f"{src}/{prefix}-labels-idx1-ubyte.gz", 8)[:n].astype(np.int64)
        arrays = {"x": x, "y": y}
        if split == "train":  # 40 users, each with two favourite classes (80% of their pictures)
            favourite = rng.integers(0, 10, size=(40, 2))
            users_of = [np.flatnonzero((favourite == c).any(axis=1)) for c in range(10)]
            client = np.array([rng.choice(users_of[c]) if len(users_of[c]) and rng.random() < 0.8 else rng.integers(0, 40)
                               for c in y], dtype=np.int64)
            arrays["client_id"] = client
        np.savez(os.path.join(out, f"{split}.npz"), **arrays)
    torch.manual_seed(1)
    torch.jit.script(Net()).save(os.path.join(out, "model.pt"))
    print(f"wrote {out}/train.npz, {out}/test.npz and {out}/model.pt")


def check(model_path, test_path):
    """Loads edgebed's final_model.pt in PyTorch and evaluates it as edgebed's server did."""
    model = torch.jit.load(model_path)
    model.eval()
    data = np.load(test_path)
    x = (torch.from_numpy(data["x"].astype(np.float32)) / 255.0 - 0.2860) / 0.3530
    y = torch.from_numpy(data["y"])
    with torch.no_grad():
        accuracy = (model(x).argmax(1) == y).float().mean().item()
    print(f"{model_path}: test accuracy {accuracy:.4f} on {len(y)} images")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "make":
        make(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "check":
        check(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
