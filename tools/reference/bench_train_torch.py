#!/usr/bin/python3
"""The PyTorch side of the training benchmark (benchmarks/bench_train.cpp, docs/training.md): one
finetune step of train_ref.py's model with autograd (forward of the batch, CrossEntropyLoss
(ignore_index=0), backward, torch.optim.AdamW (0.9, 0.95), wd 0.02 on the finetune group) on a
random LLaMA-Adapter V2 BIAS model in float32, batch 4 x 128 tokens (a 32-token prompt masked),
vocabulary 32000, torch.set_num_threads(2):

    /usr/bin/python3 tools/reference/bench_train_torch.py tiny|small [steps]

tiny: dim 64, 3 layers, 4 heads; small: dim 512, 8 layers, 8 heads. Prints one JSON line:
tokens_per_s (B * S per step, the mean of `steps` timed steps after one untimed) and peak_rss_mib.
"""
import json
import resource
import sys
import time

import torch

from llama_ref import ffn_hidden_dim
from train_ref import TrainRef

CONFIGS = {
    "tiny": {"dim": 64, "n_layers": 3, "n_heads": 4, "multiple_of": 32},
    "small": {"dim": 512, "n_layers": 8, "n_heads": 8, "multiple_of": 256},
}


def random_model(name):
    g = torch.Generator().manual_seed(1)
    p = dict(CONFIGS[name], norm_eps=1e-6, vocab_size=32000)
    d, h, n, V = p["dim"], ffn_hidden_dim(p["dim"], p["multiple_of"]), p["n_layers"], p["vocab_size"]
    r = lambda *shape: 0.02 * (2 * torch.rand(*shape, generator=g) - 1)  # noqa: E731
    base = {"tok_embeddings.weight": r(V, d), "norm.weight": torch.ones(d), "output.weight": r(V, d)}
    adapter = {"llama.norm.weight": torch.ones(d), "adapter_query.weight": r((n - 1) * 10, d) * 50}
    for i in range(n):
        pre = f"layers.{i}."
        for m, shape in (("attention.wq", (d, d)), ("attention.wk", (d, d)), ("attention.wv", (d, d)),
                         ("attention.wo", (d, d)), ("feed_forward.w1", (h, d)), ("feed_forward.w2", (d, h)),
                         ("feed_forward.w3", (h, d))):
            base[pre + m + ".weight"] = r(*shape)
        base[pre + "attention_norm.weight"] = torch.ones(d)
        base[pre + "ffn_norm.weight"] = torch.ones(d)
        for m, width in (("attention.wq", d), ("attention.wo", d), ("feed_forward.w1", h), ("feed_forward.w2", d),
                         ("feed_forward.w3", h)):
            adapter["llama." + pre + m + ".bias"] = r(width)
        adapter["llama." + pre + "attention_norm.weight"] = torch.ones(d)
        adapter["llama." + pre + "ffn_norm.weight"] = torch.ones(d)
        adapter["llama." + pre + "attention.gate"] = 2 * torch.rand(1, p["n_heads"], 1, 1, generator=g) - 1
    vq = r(10, d) * 50
    return p, base, adapter, vq


def main():
    name = sys.argv[1]
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    torch.set_num_threads(2)
    params, base, adapter, vq = random_model(name)
    finetune = lambda k: k.startswith("llama.") and ("norm" in k or "bias" in k)  # noqa: E731
    cfg = {"w_bias": True, "w_lora": False, "lora_rank": 16}
    m = TrainRef(params, base, adapter, cfg, vq, finetune)
    m.vq = m.vq.detach()
    opt = torch.optim.AdamW(list(m.leaves.values()), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.02)
    B, S, prompt, V = 4, 128, 32, params["vocab_size"]
    g = torch.Generator().manual_seed(2)
    tokens = torch.randint(3, V, (B, S), generator=g)
    labels = tokens.clone()
    labels[:, :prompt] = 0
    ce = torch.nn.CrossEntropyLoss(ignore_index=0)

    def step():
        opt.zero_grad()
        logits = torch.stack([m.logits(t.tolist()) for t in tokens])
        loss = ce(logits[:, :-1].reshape(-1, V), labels[:, 1:].reshape(-1))
        loss.backward()
        opt.step()
        return float(loss)

    step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    dt = (time.perf_counter() - t0) / steps
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"model": name, "torch": torch.__version__, "threads": torch.get_num_threads(),
                      "step_ms": dt * 1e3, "tokens_per_s": B * S / dt, "peak_rss_mib": rss}))


if __name__ == "__main__":
    main()
