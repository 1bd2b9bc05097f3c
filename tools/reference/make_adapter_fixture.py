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

Non-default sizes (sizes_fixtures()): the official class takes query_len, query_layer, lora_rank and
v_depth as constructor arguments that its config never records, so lav2 reads them from the shapes.
These checkpoints hold the LLaMA side and the visual branch (as officially, one file):

    tests/data/tiny_adapter/sizes_bias/adapter.pth    V2 BIAS, query_len 4, query_layer 1 (of 3),
                                                      v_depth 2; config names query_len and
                                                      query_layer, equal to the shapes
    tests/data/tiny_adapter/sizes_lora/adapter.pth    V2 LORA-BIAS, query_len 3, query_layer 3 (all
                                                      layers, layer 0 too), lora_rank 5, v_depth 1;
                                                      config {'w_bias', 'w_lora'} only: the sizes
                                                      are in the shapes alone
    tests/data/tiny_adapter/sizes_<v>/golden/         prompt_ids, prompt_last_logits, hidden_prefill,
                                                      step_logits, generated_ids (as above) computed
                                                      with golden/visual_query.npy [Q, 64], the
                                                      reference projector (clip_ref.forward_visual,
                                                      float64) of tests/data/tiny_clip/golden/
                                                      clip_features_image.npy [1, 257, 32]
    tests/data/tiny_adapter/bad/sizes_config_disagrees.pth          config query_len 5, visual_query.weight
                                                                    has 4 rows
    tests/data/tiny_adapter/bad/sizes_prompt_rows_inconsistent.pth  adapter_query.weight has 6 rows,
                                                                    not a multiple of visual_query's 4
    tests/data/tiny_adapter/bad/sizes_lora_ranks_disagree.pth       attention lora_*_l1 rank 5 (lora_wq_l1
                                                                    among them), feed_forward rank 6
    tests/data/tiny_adapter/bad/sizes_visual_blocks_gap.pth         visual_blocks.0 and visual_blocks.2, no 1

A caption adapter (caption_fixture()), CAPTION-7B style: a pretrain-phase checkpoint without config:

    tests/data/tiny_adapter/caption/adapter.pth       {'model': gates (fp32), adapter_query, visual branch}
    tests/data/tiny_adapter/caption/golden/           visual_query, prompt_ids, generated_ids, step_logits
                                                      of format_prompt("Generate caption of this image")

Run: /usr/bin/python3 tools/reference/make_adapter_fixture.py [main] [bad] [full] [sizes] [caption]
(no argument: all five; each part has its own seed, so one part can be rewritten alone and the
others stay byte-identical).
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


def prefill(params, base, adapter_sd, ref_cfg, query, ids):
    """Last-position logits [vocab] and per-layer last-position hidden states [n_layers, dim]."""
    m = AdapterRef(params, base, adapter_sd, ref_cfg, query)
    logits = m.forward(ids, 0)[-1]
    return logits, torch.stack([h[-1] for h in m.hidden_states])


def write_goldens(gd, params, base, sd, ref_cfg, query, ids, eos_id, name):
    """prompt_ids, prompt_last_logits [1, vocab], hidden_prefill [n_layers, dim], and MAX_NEW greedy
    steps (generated_ids, step_logits [steps, vocab]); returns the smallest greedy top-2 margin."""
    logits, hidden = prefill(params, base, sd, ref_cfg, query, ids)
    m = AdapterRef(params, base, sd, ref_cfg, query)
    generated, steps = greedy_generate(m, ids, MAX_NEW, eos_id, 512)
    top2 = torch.topk(steps, 2, dim=-1).values
    margin = float((top2[:, 0] - top2[:, 1]).min())
    assert margin > 1e-3, f"{name}: greedy near-tie (margin {margin})"
    save_npy(os.path.join(gd, "prompt_ids.npy"), ids, np.int64)
    save_npy(os.path.join(gd, "prompt_last_logits.npy"), logits[None].numpy(), np.float32)
    save_npy(os.path.join(gd, "hidden_prefill.npy"), hidden.numpy(), np.float32)
    save_npy(os.path.join(gd, "step_logits.npy"), steps.numpy(), np.float32)
    save_npy(os.path.join(gd, "generated_ids.npy"), generated, np.int64)
    return margin


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
            return prefill(params, base, adapter_sd, ref_cfg, query, ids)

        gd = os.path.join(d, "golden")
        margin = write_goldens(gd, params, base, sd, ref_cfg, query, ids, sp.eos_id(), name)
        logits, _ = run(sd)
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


# name: sizes written into the shapes, the config as stored, and the visual branch's depth.
SIZES = {
    "sizes_bias": {"query_len": 4, "query_layer": 1, "lora_rank": 16, "v_depth": 2,
                   "config": {"w_bias": True, "w_lora": False, "lora_rank": 16, "query_len": 4, "query_layer": 1}},
    "sizes_lora": {"query_len": 3, "query_layer": 3, "lora_rank": 5, "v_depth": 1,
                   "config": {"w_bias": True, "w_lora": True}},
}


def sizes_fixtures():
    """Checkpoints whose sizes (those each variant has) differ from the defaults and live in the
    shapes (see the module comment): the LLaMA side from adapter_state_dict, the visual branch from
    make_clip_fixture's adapter_visual_state_dict (width 32, 16 heads, mlp 64, -> dim 64), Q = query_len."""
    from clip_ref import forward_visual
    from make_clip_fixture import V_HEADS, adapter_visual_state_dict

    sp = spm.SentencePieceProcessor(model_file=os.path.join(LLAMA, "tokenizer.model"))
    with open(os.path.join(LLAMA, "tiny", "params.json")) as f:
        params = dict(json.load(f), vocab_size=sp.vocab_size())
    n = params["n_layers"]
    base = torch.load(os.path.join(LLAMA, "tiny", "consolidated.00.pth"))
    feats = torch.from_numpy(np.load(os.path.join(ROOT, "tests", "data", "tiny_clip", "golden",
                                                  "clip_features_image.npy")))[0]  # [257, 32]
    ids = [sp.bos_id()] + sp.encode(PROMPT)
    g = torch.Generator().manual_seed(7001)
    sds = {}
    for vseed, (name, s) in enumerate(SIZES.items(), start=7100):
        assert 1 <= s["query_layer"] <= n, f"{name}: query_layer {s['query_layer']} does not fit {n} layers"
        # The reference needs every size; the stored config keeps only what the variant names.
        ref_cfg = dict(s["config"], query_len=s["query_len"], query_layer=s["query_layer"], lora_rank=s["lora_rank"])
        defaults = config_defaults({}, n)
        assert all(ref_cfg[k] != defaults[k] for k in ("query_len", "query_layer")), f"{name}: a default size"
        visual = adapter_visual_state_dict(seed=vseed, depth=s["v_depth"], query_len=s["query_len"])
        vq = forward_visual(visual, feats, V_HEADS).float()  # [Q, 64]
        sd = dict(adapter_state_dict(params, ref_cfg, g), **visual)
        sds[name] = sd
        d = os.path.join(OUT, name)
        gd = os.path.join(d, "golden")
        os.makedirs(gd, exist_ok=True)
        torch.save({"model": sd, "config": s["config"]}, os.path.join(d, "adapter.pth"))
        save_npy(os.path.join(gd, "visual_query.npy"), vq.numpy(), np.float32)
        margin = write_goldens(gd, params, base, sd, ref_cfg, vq, ids, sp.eos_id(), name)
        with open(os.path.join(gd, "case.json"), "w") as f:
            json.dump({"prompt": PROMPT, "config": ref_cfg, "v_depth": s["v_depth"], "max_new_tokens": MAX_NEW,
                       "min_greedy_margin": margin}, f, indent=1)
        print(f"{name}: margin {margin:.4f}")

    # Broken sizes, each from a good state dict with one thing changed. The visual branch shrinks
    # to visual_query.weight, the one visual tensor the size checks read (keeps the files small).
    d = os.path.join(OUT, "bad")
    visual_keys = set(adapter_visual_state_dict(depth=2)) - {"visual_query.weight"}
    bias, lora = ({k: v for k, v in sds[v].items() if k not in visual_keys} for v in ("sizes_bias", "sizes_lora"))
    disagree = {"model": bias, "config": dict(SIZES["sizes_bias"]["config"], query_len=5)}
    # visual_query.weight [4, 32] -> query_len 4; adapter_query.weight [6, 64] is not 4 x layers.
    rows = {"model": dict(bias, **{"adapter_query.weight": torch.randn(6, params["dim"], generator=g)}),
            "config": {"w_bias": True, "w_lora": False}}
    # Attention LoRA keeps rank 5; every feed_forward pair becomes rank 6 (each l1/l2 pair is
    # consistent in itself, only the ranks across linears disagree).
    ranks = dict(lora)
    for k, v in lora.items():
        if ".feed_forward.lora_" in k:
            shape = (6, v.shape[1]) if k.endswith("_l1.weight") else (v.shape[0], 6)
            ranks[k] = 0.1 * torch.randn(*shape, generator=g)
    # visual_blocks.0 and .2 (sizes_bias's block 1 renamed): v_depth counts to the gap, 1, so
    # block 2 would be dropped unseen. Of the rest of the visual branch, only visual_query.weight.
    gap = dict(bias, **{k.replace("visual_blocks.1.", "visual_blocks.2."): v for k, v in sds["sizes_bias"].items()
                        if k.startswith("visual_blocks.1.")})
    gap.update({k: v for k, v in sds["sizes_bias"].items() if k.startswith("visual_blocks.0.")})
    cases = {"sizes_config_disagrees": disagree, "sizes_prompt_rows_inconsistent": rows,
             "sizes_lora_ranks_disagree": {"model": ranks, "config": SIZES["sizes_lora"]["config"]},
             "sizes_visual_blocks_gap": {"model": gap, "config": SIZES["sizes_bias"]["config"]}}
    for name, obj in cases.items():
        torch.save(obj, os.path.join(d, name + ".pth"))


CAPTION_PROMPT = format_prompt("alpaca", "Generate caption of this image")
CAPTION_NEW = 24


def caption_fixture():
    """A caption adapter as the release's CAPTION-7B may hold it (spec section 5.2: its contents are
    undocumented; it loads through the same official load()): a pretrain-phase checkpoint, the
    tensors get_trainable_params('pretrain') trains and nothing else (fp32 gates, adapter_query and
    the visual branch; no biases, so they stay 0; no norms, so they stay LLaMA's) and no 'config'
    (w_lora False). Writes tests/data/tiny_adapter/caption/adapter.pth and golden/: the visual query
    of tests/data/tiny_clip/golden/clip_features_image.npy through its own projector (float64),
    and CAPTION_NEW greedy steps on format_prompt("Generate caption of this image")
    (prompt_ids, generated_ids, step_logits)."""
    from clip_ref import forward_visual
    from make_clip_fixture import V_HEADS, adapter_visual_state_dict

    sp = spm.SentencePieceProcessor(model_file=os.path.join(LLAMA, "tokenizer.model"))
    with open(os.path.join(LLAMA, "tiny", "params.json")) as f:
        params = dict(json.load(f), vocab_size=sp.vocab_size())
    n, dim, H = params["n_layers"], params["dim"], params["n_heads"]
    base = torch.load(os.path.join(LLAMA, "tiny", "consolidated.00.pth"))
    feats = torch.from_numpy(np.load(os.path.join(ROOT, "tests", "data", "tiny_clip", "golden",
                                                  "clip_features_image.npy")))[0]  # [257, 32]
    g = torch.Generator().manual_seed(8001)
    c = config_defaults({}, n)
    sd = {"adapter_query.weight": torch.randn(c["query_layer"] * c["query_len"], dim, generator=g)}
    for i in range(n):
        sd[f"llama.layers.{i}.attention.gate"] = 0.8 * torch.randn(1, H, 1, 1, generator=g)
    visual = adapter_visual_state_dict(seed=8100)
    sd.update(visual)
    vq = forward_visual(visual, feats, V_HEADS).float()  # [10, 64]
    ids = [sp.bos_id()] + sp.encode(CAPTION_PROMPT)
    m = AdapterRef(params, base, sd, {}, vq)
    generated, steps = greedy_generate(m, ids, CAPTION_NEW, sp.eos_id(), 512)
    top2 = torch.topk(steps, 2, dim=-1).values
    margin = float((top2[:, 0] - top2[:, 1]).min())
    assert margin > 1e-3, f"caption: greedy near-tie (margin {margin})"
    d = os.path.join(OUT, "caption")
    gd = os.path.join(d, "golden")
    os.makedirs(gd, exist_ok=True)
    torch.save({"model": sd}, os.path.join(d, "adapter.pth"))
    save_npy(os.path.join(gd, "visual_query.npy"), vq.numpy(), np.float32)
    save_npy(os.path.join(gd, "prompt_ids.npy"), ids, np.int64)
    save_npy(os.path.join(gd, "step_logits.npy"), steps.numpy(), np.float32)
    save_npy(os.path.join(gd, "generated_ids.npy"), generated, np.int64)
    with open(os.path.join(gd, "case.json"), "w") as f:
        json.dump({"prompt": CAPTION_PROMPT, "config": None, "max_new_tokens": CAPTION_NEW,
                   "min_greedy_margin": margin, "text": sp.decode(generated)}, f, indent=1)
    print(f"caption: margin {margin:.4f}, {len(generated)} tokens")


if __name__ == "__main__":
    parts = {"main": main, "bad": broken_adapters, "full": full_pipeline, "sizes": sizes_fixtures,
             "caption": caption_fixture}
    for part in sys.argv[1:] or list(parts):
        parts[part]()
