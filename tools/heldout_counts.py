#!/usr/bin/env python3
"""Cuts the rounds a decoder never trains on out of a count data file (EBCOUNT1, codecs/count_data.h).

SplitRounds holds out the last fifth of a file's rounds (at least one); this keeps those rounds, each
cut to its first BLOCKS blocks, so a test can decode count vectors of a real federation that neither
the shipped decoder nor a decoder remade by tools/train_decoder was trained on.

Made tests/data/ota/heldout_counts.bin with:
  tools/train_decoder (its collection run: runs/ota-collect/counts.bin, 30 rounds of scenarios/ota.toml)
  python3 tools/heldout_counts.py runs/ota-collect/counts.bin tests/data/ota/heldout_counts.bin 1000
"""
import struct
import sys


def rounds(data):
    if data[:8] != b"EBCOUNT1":
        sys.exit("not an EBCOUNT1 file")
    off = 8
    while off < len(data):
        n, rnd, nodes, blocks, length = struct.unpack_from("<5I", data, off)
        head = off
        off += 20
        pop = data[off:off + 8 * n]
        off += 8 * n
        cent = data[off:off + 4 * n * length]
        off += 4 * n * length
        idx = [data[off + 2 * blocks * k: off + 2 * blocks * (k + 1)] for k in range(nodes)]
        off += 2 * blocks * nodes
        if off > len(data):
            sys.exit(f"the round at byte {head} is cut short")
        yield n, rnd, nodes, blocks, length, pop, cent, idx


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: heldout_counts.py IN OUT BLOCKS")
    src, dst, keep = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with open(src, "rb") as f:
        all_rounds = list(rounds(f.read()))
    held = max(1, len(all_rounds) // 5)
    out = bytearray(b"EBCOUNT1")
    for n, rnd, nodes, blocks, length, pop, cent, idx in all_rounds[-held:]:
        b = min(blocks, keep)
        out += struct.pack("<5I", n, rnd, nodes, b, length) + pop + cent
        for row in idx:
            out += row[:2 * b]
    with open(dst, "wb") as f:
        f.write(out)
    print(f"{dst}: {held} held-out rounds of {len(all_rounds)}, {keep} blocks each, {len(out)} bytes")


if __name__ == "__main__":
    main()
