#!/usr/bin/python3
"""Writes the TorchScript modules and the numpy file the test suites load (committed, so the suites
need no python3-torch). Made with Debian 12's python3-torch 1.13.1 and python3-numpy:

    /usr/bin/python3 tests/data/torchscript/make_test_models.py tests/data/torchscript

cnn.pt           the built-in `cnn` network (same layers, same parameter names) scripted
mlp.pt           784-32-10 perceptron on 1x28x28 images, traced
regressor.pt     8 -> 16 -> 2 regression network (float features in, two float targets out)
with_loss.pt     mlp with an exported loss(output, target): cross-entropy + 0.01 x L2 of the logits
train_throws.pt  forward raises in training mode only (passes the load-time check, fails on a node)
wrong_output.pt  7 class scores where the data has 10
savez.npz        numpy.savez of x (6,2,3) float32, y (6,) int64, client_id (6,) int32
savez_compressed.npz  the same arrays through numpy.savez_compressed
"""
import os
import sys

import numpy as np
import torch
from torch import nn


def cnn():
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 7 * 7, 64), nn.ReLU(), nn.Linear(64, 10))


class WithLoss(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 10))

    def forward(self, x):
        return self.net(x)

    @torch.jit.export
    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(output, target) + 0.01 * output.pow(2).mean()


class TrainThrows(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))

    def forward(self, x):
        if self.training:
            raise RuntimeError("this module refuses to train")
        return self.net(x)


def main(out):
    torch.manual_seed(1)
    torch.jit.script(cnn()).save(os.path.join(out, "cnn.pt"))
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 10))
    torch.jit.trace(mlp, torch.zeros(1, 1, 28, 28)).save(os.path.join(out, "mlp.pt"))
    reg = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 2))
    torch.jit.script(reg).save(os.path.join(out, "regressor.pt"))
    torch.jit.script(WithLoss()).save(os.path.join(out, "with_loss.pt"))
    torch.jit.script(TrainThrows()).save(os.path.join(out, "train_throws.pt"))
    wrong = nn.Sequential(nn.Flatten(), nn.Linear(784, 7))
    torch.jit.script(wrong).save(os.path.join(out, "wrong_output.pt"))
    x = np.arange(36, dtype=np.float32).reshape(6, 2, 3)
    y = np.array([0, 1, 2, 0, 1, 2], dtype=np.int64)
    client = np.array([7, 7, 3, 3, 3, 9], dtype=np.int32)
    np.savez(os.path.join(out, "savez.npz"), x=x, y=y, client_id=client)
    np.savez_compressed(os.path.join(out, "savez_compressed.npz"), x=x, y=y, client_id=client)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__)))
