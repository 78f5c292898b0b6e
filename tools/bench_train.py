#!/usr/bin/python3
"""The reference side of `edgebed bench train`: the built-in CNN's layers trained by Debian's
PyTorch (python3-torch 1.13.1, the same version as libtorch) on the same Fashion-MNIST rows with the
same batch size, optimiser and one thread. Writes {"samples_per_s": [...], "torch": version} to OUT.

    /usr/bin/python3 tools/bench_train.py DATA_DIR SAMPLES EPOCH_REPS BATCH LR MOMENTUM OUT
"""
import gzip
import json
import sys
import time

import numpy as np
import torch
from torch import nn


def main(data_dir, samples, reps, batch, lr, momentum, out):
    torch.set_num_threads(1)
    with gzip.open(f"{data_dir}/train-images-idx3-ubyte.gz") as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)[:samples]
    with gzip.open(f"{data_dir}/train-labels-idx1-ubyte.gz") as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8)[:samples]
    x = (torch.from_numpy(x.astype(np.float32)) / 255.0 - 0.2860) / 0.3530
    y = torch.from_numpy(y.astype(np.int64))
    torch.manual_seed(1)
    net = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 7 * 7, 64), nn.ReLU(), nn.Linear(64, 10))
    rates = []
    for _ in range(reps):
        opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum)
        order = torch.randperm(len(y))
        t0 = time.perf_counter()
        for b in range(0, len(y), batch):
            i = order[b:b + batch]
            opt.zero_grad()
            loss = nn.functional.cross_entropy(net(x[i]), y[i])
            loss.backward()
            opt.step()
        rates.append(len(y) / (time.perf_counter() - t0))
    with open(out, "w") as f:
        json.dump({"samples_per_s": rates, "torch": torch.__version__}, f)


if __name__ == "__main__":
    a = sys.argv[1:]
    main(a[0], int(a[1]), int(a[2]), int(a[3]), float(a[4]), float(a[5]), a[6])
