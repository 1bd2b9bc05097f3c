#!/usr/bin/python3
"""Writes tests/data/train/adamw.json: what torch.optim.AdamW does to a few adapter-shaped
parameters over 3 steps, with the official settings (spec 8): betas (0.9, 0.95), eps 1e-8,
weight decay 0.05 except for 1-D parameters and names ending in '.bias' (util/misc.add_weight_decay),
and the per-iteration schedule of util/lr_sched.adjust_learning_rate (warmup 1 of 4 iterations,
so the three steps run at lr 0, base, 0.75 base). 'llama.layers.0.attention.gate' is selected but
never gets a gradient (p.grad is None, as layer 0's gate in the official forward): torch leaves it
untouched, decay included.

The file holds the initial values, the gradient of every step, the learning rates and the values
after the last step, all float32 written as exact decimals. Run with Debian's python3-torch:
    /usr/bin/python3 tools/reference/make_adamw_fixture.py
"""
import json
import math
import os

import numpy as np
import torch

SHAPES = [
    ("llama.layers.0.attention.gate", [1, 4, 1, 1]),
    ("llama.layers.1.attention.gate", [1, 4, 1, 1]),
    ("llama.layers.1.attention.wq.bias", [6]),
    ("llama.layers.1.attention_norm.weight", [6]),
    ("adapter_query.weight", [3, 4]),
    ("visual_proj.weight", [5, 3]),
    ("visual_proj.bias", [5]),
]
NO_GRAD = {"llama.layers.0.attention.gate"}
BASE_LR, MIN_LR, WARMUP, TOTAL, STEPS, WD = 1e-2, 0.0, 1, 4, 3, 0.05


def lr_at(it):  # util/lr_sched.adjust_learning_rate, in iterations
    if it < WARMUP:
        return BASE_LR * it / WARMUP
    return MIN_LR + (BASE_LR - MIN_LR) * 0.5 * (1.0 + math.cos(math.pi * (it - WARMUP) / (TOTAL - WARMUP)))


def main():
    rng = np.random.RandomState(13)
    init = {n: rng.uniform(-1, 1, s).astype(np.float32) for n, s in SHAPES}
    grads = [{n: rng.uniform(-1, 1, s).astype(np.float32) for n, s in SHAPES if n not in NO_GRAD}
             for _ in range(STEPS)]
    params = {n: torch.nn.Parameter(torch.from_numpy(init[n].copy())) for n, _ in SHAPES}
    decay = [p for n, p in params.items() if not (p.dim() == 1 or n.endswith(".bias"))]
    no_decay = [p for n, p in params.items() if p.dim() == 1 or n.endswith(".bias")]
    opt = torch.optim.AdamW([{"params": no_decay, "weight_decay": 0.0}, {"params": decay, "weight_decay": WD}],
                            lr=BASE_LR, betas=(0.9, 0.95), eps=1e-8)
    lrs = []
    for it in range(STEPS):
        lr = lr_at(it)
        for group in opt.param_groups:
            group["lr"] = lr
        lrs.append(lr)
        for n, p in params.items():
            p.grad = None if n in NO_GRAD else torch.from_numpy(grads[it][n].copy())
        opt.step()

    def flat(a):
        return [float(x) for x in np.asarray(a, dtype=np.float32).reshape(-1)]

    out = {
        "torch": torch.__version__,
        "betas": [0.9, 0.95], "eps": 1e-8, "weight_decay": WD,
        "base_lr": BASE_LR, "min_lr": MIN_LR, "warmup": WARMUP, "total": TOTAL, "lrs": lrs,
        "params": [{"name": n, "shape": s, "init": flat(init[n]),
                    "grads": [flat(g[n]) if n in g else None for g in grads],
                    "final": flat(params[n].detach().numpy())} for n, s in SHAPES],
    }
    path = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "data", "train", "adamw.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=None, separators=(",", ":"))
        f.write("\n")
    print(path, os.path.getsize(path), "bytes")


if __name__ == "__main__":
    main()
