#!/usr/bin/python3
"""Writes tiny LLaMA-Adapter V2 checkpoints for every policy combination lav2 accepts, on top of
tests/data/tiny_llama (dim 64, 3 layers, 4 heads), with golden outputs from adapter_ref.py:

    tests/data/tiny_adapter/<variant>/adapter.pth     the official layout {'model': ..., 'config': ...}
                                                      (V1: a plain dict without prefix, as V1's file)
    tests/data/tiny_adapter/<variant>/golden/         prompt_ids, prompt_last_logits, hidden_prefill
                                                      (per-layer last position), step_logits,
                                                      generated_ids, perturb_<group>.npy
    tests/data/tiny_adapter/visual_query.npy          the injected visual query [10, 64]

Perturbation: every tensor of a group becomes t * 1.25 + 0.05 (in float32); lav2's test applies the
same change and must match the perturbed golden logits.
Run: /usr/bin/python3 tools/reference/make_adapter_fixture.py
"""
import json
import os
import sys

import numpy as np
import sentencepiece as spm
import torch

sys.path.insert(0, os.path.dirname(__file__))
from adapter_ref import LINEARS, OFFICIAL_BIAS, AdapterRef, config_defaults  # noqa: E402
from llama_ref import ffn_hidden_dim, greedy_generate  # noqa: E402
from prompts import format_prompt  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
LLAMA = os.path.join(ROOT, "tests", "data", "tiny_llama")
OUT = os.path.join(ROOT, "tests", "data", "tiny_adapter")
PROMPT = format_prompt("alpaca", "What is in the image?")
MAX_NEW = 12

VARIANTS = {
    # name: config as stored in the checkpoint (official keys, plus lav2's where the variant needs them)
    "bias": {"w_bias": True, "w_lora": False, "lora_rank": 16},
    "lora_bias": {"w_bias": True, "w_lora": True, "lora_rank": 4},
    "first_k": {"w_bias": True, "w_lora": False, "lora_rank": 16, "fusion_mode": "first_k", "fusion_depth": 1},
    "paper_early": {"w_bias": True, "w_lora": False, "lora_rank": 16, "fusion_mode": "paper_early", "fusion_depth": 1},
    "lora_paper_early": {"w_bias": True, "w_lora": True, "lora_rank": 4, "fusion_mode": "paper_early",
                         "fusion_depth": 2},
    "chat65b_scale": {"w_bias": True, "w_lora": False, "adapter": "none", "bias_set": "all", "scale_mode": "input"},
    "paper_scale": {"w_bias": True, "w_lora": False, "bias_set": "all", "scale_mode": "output",
                    "fusion_mode": "paper_early", "fusion_depth": 1},
    "v1": None,  # V1's adapter file: {'adapter_query.weight', 'layers.{i}.attention.gate'}, no config
}

GROUPS = {
    "gates": lambda k: k.endswith(".attention.gate"),
    "new_gate": lambda k: k.endswith(".attention.new_gate"),
    "adapter_prompts": lambda k: k == "adapter_query.weight",
    "biases": lambda k: k.endswith(".bias") or k.endswith("_bias"),
    "lora": lambda k: ".lora_" in k,
    "norms": lambda k: k.endswith("_norm.weight") or k == "llama.norm.weight",
    "scales": lambda k: k.endswith("_scale"),
}


def adapter_state_dict(params, cfg, g, v1=False):
    n, dim, H = params["n_layers"], params["dim"], params["n_heads"]
    hidden = ffn_hidden_dim(dim, params["multiple_of"])
    c = config_defaults(cfg or {"adapter": "v1"}, n)
    out_in = {"wq": (dim, dim), "wk": (dim, dim), "wv": (dim, dim), "wo": (dim, dim),
              "w1": (hidden, dim), "w2": (dim, hidden), "w3": (hidden, dim)}
    pre = "" if v1 else "llama."
    sd = {}
    if c["adapter"] != "none":
        sd["adapter_query.weight"] = torch.randn(c["query_layer"] * c["query_len"], dim, generator=g)
        for i in range(n):  # gates exist in every layer; fp16, as in a finetune-phase model
            sd[f"{pre}layers.{i}.attention.gate"] = (0.8 * torch.randn(1, H, 1, 1, generator=g)).half()
            if c["w_lora"]:
                sd[f"{pre}layers.{i}.attention.new_gate"] = (1.0 + 0.3 * torch.randn(1, 1, 1, 1, generator=g)).half()
    if v1:
        return sd
    for i in range(n):
        for name, (o, inn) in out_in.items():
            p = f"llama.layers.{i}.{LINEARS[name]}."
            if c["w_bias"] and c["bias_set"] == "official" and name in OFFICIAL_BIAS:
                sd[p + name + ".bias"] = 0.05 * torch.randn(o, generator=g)
            if c["w_bias"] and c["bias_set"] == "all":
                sd[p + name + "_bias"] = 0.05 * torch.randn(o, generator=g)
            if c["scale_mode"] == "input":
                sd[p + name + "_scale"] = 1.0 + 0.1 * torch.randn(inn, generator=g)
            if c["scale_mode"] == "output":
                sd[p + name + "_scale"] = 1.0 + 0.1 * torch.randn(o, generator=g)
            if c["w_lora"]:
                r = c["lora_rank"]
                sd[p + f"lora_{name}_l1.weight"] = torch.randn(r, inn, generator=g) / inn ** 0.5
                sd[p + f"lora_{name}_l2.weight"] = 0.1 * torch.randn(o, r, generator=g)
        sd[f"llama.layers.{i}.attention_norm.weight"] = 1.0 + 0.1 * torch.randn(dim, generator=g)
        sd[f"llama.layers.{i}.ffn_norm.weight"] = 1.0 + 0.1 * torch.randn(dim, generator=g)
    sd["llama.norm.weight"] = 1.0 + 0.1 * torch.randn(dim, generator=g)
    return sd


def save_npy(path, a, dtype):
    np.save(path, np.asarray(a, dtype=dtype))


def main():
    sp = spm.SentencePieceProcessor(model_file=os.path.join(LLAMA, "tokenizer.model"))
    with open(os.path.join(LLAMA, "tiny", "params.json")) as f:
        params = json.load(f)
    params["vocab_size"] = sp.vocab_size()
    base = torch.load(os.path.join(LLAMA, "tiny", "consolidated.00.pth"))
    os.makedirs(OUT, exist_ok=True)
    g = torch.Generator().manual_seed(2024)
    vq = 0.5 * torch.randn(10, params["dim"], generator=g)
    save_npy(os.path.join(OUT, "visual_query.npy"), vq.numpy(), np.float32)
    ids = [sp.bos_id()] + sp.encode(PROMPT)

    for name, cfg in VARIANTS.items():
        v1 = cfg is None
        sd = adapter_state_dict(params, cfg, g, v1=v1)
        d = os.path.join(OUT, name)
        os.makedirs(os.path.join(d, "golden"), exist_ok=True)
        torch.save(sd if v1 else {"model": sd, "config": cfg}, os.path.join(d, "adapter.pth"))
        ref_cfg = {"adapter": "v1"} if v1 else cfg
        query = None if v1 else vq

        def run(adapter_sd):
            m = AdapterRef(params, base, adapter_sd, ref_cfg, query)
            logits = m.forward(ids, 0)[-1]
            return logits, torch.stack([h[-1] for h in m.hidden_states])

        logits, hidden = run(sd)
        m = AdapterRef(params, base, sd, ref_cfg, query)
        generated, steps = greedy_generate(m, ids, MAX_NEW, sp.eos_id(), 512)
        top2 = torch.topk(steps, 2, dim=-1).values
        margin = float((top2[:, 0] - top2[:, 1]).min())
        assert margin > 1e-3, f"{name}: greedy near-tie (margin {margin})"
        gd = os.path.join(d, "golden")
        save_npy(os.path.join(gd, "prompt_ids.npy"), ids, np.int64)
        save_npy(os.path.join(gd, "prompt_last_logits.npy"), logits[None].numpy(), np.float32)
        save_npy(os.path.join(gd, "hidden_prefill.npy"), hidden.numpy(), np.float32)
        save_npy(os.path.join(gd, "step_logits.npy"), steps.numpy(), np.float32)
        save_npy(os.path.join(gd, "generated_ids.npy"), generated, np.int64)
        changes = {}
        for group, match in GROUPS.items():
            keys = [k for k in sd if match(k)]
            if not keys:
                continue
            perturbed = dict(sd, **{k: sd[k].float() * 1.25 + 0.05 for k in keys})
            plogits, _ = run(perturbed)
            change = float((plogits - logits).abs().max())
            assert change > 1e-3, f"{name}/{group}: perturbation changes logits by only {change}"
            changes[group] = change
            save_npy(os.path.join(gd, f"perturb_{group}.npy"), plogits[None].numpy(), np.float32)
        with open(os.path.join(gd, "case.json"), "w") as f:
            json.dump({"prompt": PROMPT, "config": ref_cfg, "max_new_tokens": MAX_NEW, "min_greedy_margin": margin,
                       "perturbation_max_abs_change": changes}, f, indent=1)
        print(f"{name}: margin {margin:.4f}, perturbation changes {', '.join(f'{k} {v:.3f}' for k, v in changes.items())}")


def broken_adapters():
    """Small broken adapter checkpoints for the load-error tests: tests/data/tiny_adapter/bad/<case>.pth."""
    with open(os.path.join(LLAMA, "tiny", "params.json")) as f:
        params = dict(json.load(f), vocab_size=512)
    g = torch.Generator().manual_seed(99)
    ok = {"w_bias": True, "w_lora": False, "lora_rank": 16}
    sd = adapter_state_dict(params, ok, g)
    d = os.path.join(OUT, "bad")
    os.makedirs(d, exist_ok=True)
    cases = {
        "fusion_too_deep": ({"model": sd, "config": dict(ok, fusion_mode="first_k", fusion_depth=5)}),
        "fusion_unknown": ({"model": sd, "config": dict(ok, fusion_mode="late")}),
        "unexpected_key": ({"model": dict(sd, **{"llama.layers.0.attention.foo": torch.zeros(3)}), "config": ok}),
        "wrong_prompt_rows": ({"model": dict(sd, **{"adapter_query.weight": torch.zeros(7, 64)}), "config": ok}),
        "wrong_gate_shape": ({"model": dict(sd, **{"llama.layers.1.attention.gate": torch.zeros(1, 3, 1, 1)}), "config": ok}),
        "lora_rank_mismatch": ({"model": adapter_state_dict(params, dict(ok, w_lora=True, lora_rank=4), g),
                                "config": dict(ok, w_lora=True, lora_rank=8)}),
        "config_not_dict": ({"model": sd, "config": [1, 2]}),
    }
    for name, obj in cases.items():
        torch.save(obj, os.path.join(d, name + ".pth"))


def full_pipeline():
    """The whole official path for BIAS and LORA-BIAS: tiny CLIP (tests/data/tiny_clip) -> visual
    projector (tests/data/tiny_adapter/visual_only.pth) -> adapter LLaMA. Writes
    tests/data/tiny_adapter/full_<variant>/adapter.pth (LLaMA side + visual modules, one file as
    officially) and golden/<image|zero>/ (generated_ids, step_logits) from the golden visual queries
    that make_clip_fixture.py computed in float64."""
    sp = spm.SentencePieceProcessor(model_file=os.path.join(LLAMA, "tokenizer.model"))
    with open(os.path.join(LLAMA, "tiny", "params.json")) as f:
        params = dict(json.load(f), vocab_size=sp.vocab_size())
    base = torch.load(os.path.join(LLAMA, "tiny", "consolidated.00.pth"))
    visual = torch.load(os.path.join(OUT, "visual_only.pth"))["model"]
    clip_golden = os.path.join(ROOT, "tests", "data", "tiny_clip", "golden")
    ids = [sp.bos_id()] + sp.encode(PROMPT)
    for name in ("bias", "lora_bias"):
        ckpt = torch.load(os.path.join(OUT, name, "adapter.pth"))
        merged = {"model": dict(ckpt["model"], **visual), "config": ckpt["config"]}
        d = os.path.join(OUT, "full_" + name)
        os.makedirs(d, exist_ok=True)
        torch.save(merged, os.path.join(d, "adapter.pth"))
        for case in ("image", "zero"):
            vq = torch.from_numpy(np.load(os.path.join(clip_golden, f"visual_query_{case}.npy")))[0]
            m = AdapterRef(params, base, merged["model"], merged["config"], vq)
            generated, steps = greedy_generate(m, ids, MAX_NEW, sp.eos_id(), 512)
            top2 = torch.topk(steps, 2, dim=-1).values
            margin = float((top2[:, 0] - top2[:, 1]).min())
            assert margin > 1e-3, f"full_{name}/{case}: greedy near-tie (margin {margin})"
            gd = os.path.join(d, "golden", case)
            os.makedirs(gd, exist_ok=True)
            save_npy(os.path.join(gd, "prompt_ids.npy"), ids, np.int64)
            save_npy(os.path.join(gd, "step_logits.npy"), steps.numpy(), np.float32)
            save_npy(os.path.join(gd, "generated_ids.npy"), generated, np.int64)
            print(f"full_{name}/{case}: margin {margin:.4f}")


if __name__ == "__main__":
    main()
    broken_adapters()
    full_pipeline()
