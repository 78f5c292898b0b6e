#!/usr/bin/env python3
"""Independent reference for the server's strategies: fixed inputs and the expected outputs of every
aggregation rule, server optimiser, SCAFFOLD's server step and FedBuff's step, computed here in plain
Python (float64), from the papers' definitions, not from edgebed's code.

Run once; the output is committed and read by tests/server/strategy_reference_test.cc:
  python3 tests/server/reference/strategy_reference.py > tests/server/reference/strategy_reference.json

Conventions (documented in server/robust_aggregate.h and docs/strategies.md): median of an even count
= mean of the two middle values; trimmed mean cuts floor(trim_fraction x n) from each end; Krum's
score sums the n - f - 2 smallest squared distances, ties to the lower index; Bulyan picks
theta = n - 2f updates by Krum one at a time on what is left (with f lowered to len - 3 once the set
is that small), then per coordinate averages the theta - 2f values closest to their median;
norm_bound scales each update to norm <= clip, then the sample-weighted mean. Server optimisers:
Reddi et al. 2021, Algorithm 2 (m from 0, v from tau^2, x += lr m / (sqrt(v) + tau)); FedAvgM:
v = momentum v + delta, x += lr v. SCAFFOLD (option II, server side): x += lr mean(delta), c +=
sum(control deltas) / N. FedBuff: x += lr (1/K) sum 1/sqrt(1 + s_i) delta_i.
"""
import json
import math
import random

rng = random.Random(20261130)
N, DIM = 11, 16
updates = [[rng.gauss(0.1 * (j % 3), 1.0) for _ in range(DIM)] for j in range(N)]
for j in (3, 8):  # two attackers: far out, in opposite directions
    updates[j] = [v * 20.0 * (1 if j == 3 else -1) + 5.0 for v in updates[j]]
weights = [float(rng.randint(50, 500)) for _ in range(N)]


def wmean(us, ws):
    total = sum(ws)
    return [sum(w * u[c] for u, w in zip(us, ws)) / total for c in range(DIM)]


def trimmed(us, trim):
    out = []
    for c in range(DIM):
        col = sorted(u[c] for u in us)
        kept = col[trim:len(col) - trim]
        out.append(sum(kept) / len(kept))
    return out


def median(us):
    out = []
    for c in range(DIM):
        col = sorted(u[c] for u in us)
        n = len(col)
        out.append(col[n // 2] if n % 2 else 0.5 * (col[n // 2 - 1] + col[n // 2]))
    return out


def sqdist(a, b):
    return sum((x - y) ** 2 for x, y in zip(a, b))


def krum_scores(us, f):
    n = len(us)
    k = max(0, n - f - 2)
    scores = []
    for i in range(n):
        ds = sorted(sqdist(us[i], us[j]) for j in range(n) if j != i)
        scores.append(sum(ds[:k]))
    return scores


def ranked(scores):
    return sorted(range(len(scores)), key=lambda i: (scores[i], i))


def krum(us, ws, f, m):
    keep = ranked(krum_scores(us, f))[:m]
    return wmean([us[i] for i in keep], [ws[i] for i in keep]), keep


def bulyan(us, f):
    theta = len(us) - 2 * f
    left = list(range(len(us)))
    keep = []
    while len(keep) < theta:
        fl = min(f, len(left) - 3) if len(left) >= 3 else 0
        best = ranked(krum_scores([us[i] for i in left], fl))[0]
        keep.append(left.pop(best))
    beta = theta - 2 * f
    out = []
    for c in range(DIM):
        col = sorted(us[i][c] for i in keep)
        med = col[theta // 2] if theta % 2 else 0.5 * (col[theta // 2 - 1] + col[theta // 2])
        closest = sorted(col, key=lambda v: abs(v - med))[:beta]
        out.append(sum(closest) / beta)
    return out, keep


def clip(u, c):
    n = math.sqrt(sum(v * v for v in u))
    return [v * c / n for v in u] if n > c else list(u)


rules = {
    "mean": (wmean(updates, weights), {}),
    "median": (median(updates), {}),
    "trimmed_mean": (trimmed(updates, int(math.floor(0.2 * N))), {"trim_fraction": 0.2}),
    "norm_bound": (wmean([clip(u, 1.5) for u in updates], weights), {"clip_norm": 1.5}),
}
k_out, k_keep = krum(updates, weights, 2, 1)
rules["krum"] = (k_out, {"byzantine": 2})
mk_out, mk_keep = krum(updates, weights, 2, N - 2)
rules["multi_krum"] = (mk_out, {"byzantine": 2})
b_out, b_keep = bulyan(updates, 2)
rules["bulyan"] = (b_out, {"byzantine": 2})

# Server optimisers: three steps from x0 with the deltas below.
x0 = [rng.uniform(-1, 1) for _ in range(DIM)]
deltas = [[rng.gauss(0, 0.1) for _ in range(DIM)] for _ in range(3)]
LR, B1, B2, TAU, MOM = 0.1, 0.9, 0.99, 0.01, 0.9


def optimise(kind):
    x = list(x0)
    m = [0.0] * DIM
    v = [TAU * TAU] * DIM if kind != "momentum" else [0.0] * DIM
    for d in deltas:
        for i in range(DIM):
            if kind == "momentum":
                v[i] = MOM * v[i] + d[i]
                x[i] += LR * v[i]
                continue
            m[i] = B1 * m[i] + (1 - B1) * d[i]
            d2 = d[i] * d[i]
            if kind == "adagrad":
                v[i] += d2
            elif kind == "adam":
                v[i] = B2 * v[i] + (1 - B2) * d2
            else:  # yogi
                v[i] -= (1 - B2) * d2 * (1 if v[i] > d2 else -1 if v[i] < d2 else 0)
            x[i] += LR * m[i] / (math.sqrt(v[i]) + TAU)
    return x


optimisers = {k: optimise(k) for k in ("momentum", "adagrad", "adam", "yogi")}

# SCAFFOLD's server step (N_ALL nodes in the federation, 3 answered): x += lr mean(d), c += sum(cd) / N_ALL.
N_ALL = 8
sc_updates = updates[:3]
sc_controls = [[rng.gauss(0, 0.5) for _ in range(DIM)] for _ in range(3)]
sc_x = [x0[i] + 1.0 * sum(u[i] for u in sc_updates) / 3 for i in range(DIM)]
sc_c = [sum(c[i] for c in sc_controls) / N_ALL for i in range(DIM)]

# FedBuff's step: 4 updates of staleness 0, 1, 3, 8; x += lr (1/4) sum w(s) d.
fb_stale = [0, 1, 3, 8]
fb_updates = updates[4:8]
FB_LR = 0.7
fb_x = [x0[i] + FB_LR * sum(d[i] / math.sqrt(1 + s) for d, s in zip(fb_updates, fb_stale)) / 4 for i in range(DIM)]

print(json.dumps({
    "generated_by": "python3 tests/server/reference/strategy_reference.py",
    "updates": updates, "weights": weights,
    "rules": {name: {"expected": out, **opts} for name, (out, opts) in rules.items()},
    "krum_keep": k_keep, "multi_krum_keep": mk_keep, "bulyan_keep": b_keep,
    "x0": x0, "deltas": deltas, "lr": LR, "beta1": B1, "beta2": B2, "tau": TAU, "momentum": MOM,
    "optimisers": optimisers,
    "scaffold": {"nodes": N_ALL, "controls": sc_controls, "x": sc_x, "c": sc_c},
    "fedbuff": {"staleness": fb_stale, "lr": FB_LR, "x": fb_x},
}, indent=1))
