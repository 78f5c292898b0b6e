#!/usr/bin/python3
"""Writes an irbnet backbone as TorchScript with Debian's python3-torch 1.13.1 (the libtorch edgebed
links), and what it computes on a fixed input, for the import test (tests/splitnets/mobiletl_test.cc):
edgebed must load the module's weights by name (transfer.backbone accepts such a file) and compute the
same features.

    apt-get install python3-torch
    /usr/bin/python3 tools/export_torchscript_backbone.py tests/splitnets/data/irbnet_torchscript.pt

The architecture mirrors splitnets/mobiletl_ops.h and IrbNetBlocks() in splitnets/transfer.cc.
"""
import json
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

# in, out, hidden, stride, input side
BLOCKS = [(16, 16, 64, 2, 28), (16, 24, 64, 1, 14), (24, 24, 96, 1, 14),
          (24, 32, 96, 2, 14), (32, 32, 128, 1, 7), (32, 64, 128, 1, 7)]


def activate(x: torch.Tensor, hardswish: bool) -> torch.Tensor:
    return F.hardswish(x) if hardswish else F.hardtanh(x, 0.0, 6.0)


class Stem(nn.Module):
    def __init__(self, hardswish: bool):
        super().__init__()
        self.conv = nn.Conv2d(1, 16, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        self.hardswish = hardswish

    def forward(self, x):
        return activate(self.bn(self.conv(x)), self.hardswish)


class Irb(nn.Module):
    def __init__(self, cin: int, cout: int, hidden: int, stride: int, hardswish: bool):
        super().__init__()
        self.expand = nn.Conv2d(cin, hidden, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(hidden)
        self.depthwise = nn.Conv2d(hidden, hidden, 3, stride=stride, padding=1, groups=hidden, bias=False)
        self.bn2 = nn.BatchNorm2d(hidden)
        self.project = nn.Conv2d(hidden, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.residual = stride == 1 and cin == cout
        self.hardswish = hardswish

    def forward(self, x):
        h = activate(self.bn1(self.expand(x)), self.hardswish)
        h = activate(self.bn2(self.depthwise(h)), self.hardswish)
        h = self.bn3(self.project(h))
        return h + x if self.residual else h


class Features(nn.Module):
    def __init__(self, hardswish: bool = False):
        super().__init__()
        self.stem = Stem(hardswish)
        self.blocks = nn.ModuleList([Irb(i, o, h, s, hardswish) for i, o, h, s, _ in BLOCKS])

    def forward(self, x):
        h = self.stem(x)
        for b in self.blocks:
            h = b(h)
        return h


def fixed_input() -> torch.Tensor:
    """sin(0.37 i) in double, then float: the C++ test computes the same values."""
    return torch.sin(torch.arange(2 * 28 * 28, dtype=torch.float64) * 0.37).float().reshape(2, 1, 28, 28)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/splitnets/data/irbnet_torchscript.pt"
    torch.manual_seed(0)
    f = Features(hardswish=False)
    with torch.no_grad():  # statistics away from the defaults, so a missed buffer shows
        for m in f.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_(0.0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0.0, 0.1)
    f.eval()
    torch.jit.script(f).save(out)
    with torch.no_grad():
        y = f(fixed_input())
    expected = {"torch_version": torch.__version__, "shape": list(y.shape),
                "pooled": y.mean((2, 3)).flatten().tolist(), "sum": float(y.sum())}
    with open(out + ".json", "w") as fh:
        json.dump(expected, fh, indent=1)
    print(f"wrote {out} and {out}.json (torch {torch.__version__}, output {list(y.shape)})")


if __name__ == "__main__":
    main()
