#!/usr/bin/python3
"""Writes the tiny random LLaMA that lav2's tests load, in Meta's own layout, plus golden outputs.

    tests/data/tiny_llama/tokenizer.model        (a copy of tests/data/tokenizer/tiny.model)
    tests/data/tiny_llama/tiny/params.json       (vocab_size -1, as Meta's)
    tests/data/tiny_llama/tiny/consolidated.00.pth  (fp16, torch.save zip, Meta's key names)
    tests/data/tiny_llama/golden/<case>/         prompt_ids.npy, prompt_last_logits.npy,
                                                 step_logits.npy, generated_ids.npy, prompt.txt,
                                                 hidden_prefill.npy (per-layer last-position hidden)

Run with Debian's python3-torch: /usr/bin/python3 tools/reference/make_llama_fixture.py
"""
import json
import os
import shutil
import sys

import numpy as np
import sentencepiece as spm
import torch

sys.path.insert(0, os.path.dirname(__file__))
from llama_ref import LlamaRef, ffn_hidden_dim, greedy_generate  # noqa: E402
from prompts import format_prompt  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "tests", "data", "tiny_llama")
TOKENIZER = os.path.join(ROOT, "tests", "data", "tokenizer", "tiny.model")

PARAMS = {"dim": 64, "multiple_of": 32, "n_heads": 4, "n_layers": 3, "norm_eps": 1e-06, "vocab_size": -1}
MAX_SEQ_LEN = 512

CASES = {
    # name: (template, instruction, input, max_new_tokens)
    "alpaca": ("alpaca", "Tell me about alpacas.", None, 24),
    "alpaca_input": ("alpaca-input", "Translate the text.", "Hello, world! 123", 16),
    "raw": ("none", "The quick brown fox jumps over 12 lazy dogs", None, 32),
}


def random_state_dict(params, vocab, seed=1234):
    g = torch.Generator().manual_seed(seed)
    dim, hidden = params["dim"], ffn_hidden_dim(params["dim"], params["multiple_of"])
    head_dim = dim // params["n_heads"]

    def lin(out_f, in_f):  # keeps activations O(1) so logits are well separated
        return torch.randn(out_f, in_f, generator=g) / in_f ** 0.5

    def norm(n):
        return 1.0 + 0.1 * torch.randn(n, generator=g)

    sd = {"tok_embeddings.weight": torch.randn(vocab, dim, generator=g)}
    for i in range(params["n_layers"]):
        p = f"layers.{i}."
        sd[p + "attention.wq.weight"] = lin(dim, dim)
        sd[p + "attention.wk.weight"] = lin(dim, dim)
        sd[p + "attention.wv.weight"] = lin(dim, dim)
        sd[p + "attention.wo.weight"] = lin(dim, dim)
        sd[p + "feed_forward.w1.weight"] = lin(hidden, dim)
        sd[p + "feed_forward.w2.weight"] = lin(dim, hidden)
        sd[p + "feed_forward.w3.weight"] = lin(hidden, dim)
        sd[p + "attention_norm.weight"] = norm(dim)
        sd[p + "ffn_norm.weight"] = norm(dim)
    sd["norm.weight"] = norm(dim)
    sd["output.weight"] = lin(vocab, dim) * 4.0
    # Present in LLaMA-1 checkpoints, ignored by the official loader (strict=False).
    sd["rope.freqs"] = 1.0 / (10000.0 ** (torch.arange(0, head_dim, 2).float() / head_dim))
    return {k: v.half() for k, v in sd.items()}


def main():
    sp = spm.SentencePieceProcessor(model_file=TOKENIZER)
    vocab = sp.vocab_size()
    model_dir = os.path.join(OUT, "tiny")
    os.makedirs(model_dir, exist_ok=True)
    shutil.copyfile(TOKENIZER, os.path.join(OUT, "tokenizer.model"))
    with open(os.path.join(model_dir, "params.json"), "w") as f:
        json.dump(PARAMS, f)
    sd = random_state_dict(PARAMS, vocab)
    torch.save(sd, os.path.join(model_dir, "consolidated.00.pth"))

    # The reference reads back what was saved: fp16 values, upcast to fp32.
    sd = torch.load(os.path.join(model_dir, "consolidated.00.pth"))
    params = dict(PARAMS, vocab_size=vocab)
    for name, (template, instruction, inp, max_new) in CASES.items():
        prompt = format_prompt(template, instruction, inp)
        ids = [sp.bos_id()] + sp.encode(prompt)
        model = LlamaRef(params, sd, MAX_SEQ_LEN)
        prefill = model.forward(ids, 0)
        hidden = torch.stack([h[-1] for h in model.hidden_states])  # [n_layers, dim]
        model = LlamaRef(params, sd, MAX_SEQ_LEN)
        generated, step_logits = greedy_generate(model, ids, max_new, sp.eos_id(), MAX_SEQ_LEN)
        top2 = torch.topk(step_logits, 2, dim=-1).values
        margin = float((top2[:, 0] - top2[:, 1]).min())
        assert margin > 1e-3, f"{name}: greedy near-tie (margin {margin}); change the seed"
        d = os.path.join(OUT, "golden", name)
        os.makedirs(d, exist_ok=True)
        np.save(os.path.join(d, "prompt_ids.npy"), np.array(ids, dtype=np.int64))
        np.save(os.path.join(d, "prompt_last_logits.npy"), prefill[-1:].numpy().astype(np.float32))
        np.save(os.path.join(d, "step_logits.npy"), step_logits.numpy().astype(np.float32))
        np.save(os.path.join(d, "generated_ids.npy"), np.array(generated, dtype=np.int64))
        np.save(os.path.join(d, "hidden_prefill.npy"), hidden.numpy().astype(np.float32))
        with open(os.path.join(d, "prompt.txt"), "w", encoding="utf-8") as f:
            f.write(prompt)
        with open(os.path.join(d, "case.json"), "w", encoding="utf-8") as f:
            json.dump({"template": template, "instruction": instruction, "input": inp,
                       "max_new_tokens": max_new, "text": sp.decode([t for t in generated if t != sp.eos_id()]),
                       "min_greedy_margin": margin}, f, ensure_ascii=False, indent=1)
        print(f"{name}: {len(ids)} prompt tokens, {len(generated)} generated, margin {margin:.4f}")


def broken_models():
    """Small broken LLaMA dirs for the error tests: tests/data/tiny_llama_bad/<case>/."""
    sp = spm.SentencePieceProcessor(model_file=TOKENIZER)
    params = {"dim": 16, "multiple_of": 16, "n_heads": 2, "n_layers": 1, "norm_eps": 1e-06, "vocab_size": -1}
    sd = random_state_dict(params, sp.vocab_size(), seed=7)
    cases = {
        "missing_tensor": (params, {k: v for k, v in sd.items() if k != "layers.0.feed_forward.w3.weight"}),
        "wrong_shape": (params, dict(sd, **{"layers.0.attention.wk.weight": sd["layers.0.attention.wk.weight"][:8]})),
        "params_disagree": (dict(params, n_heads=3), sd),          # 16 % 3 != 0
        "params_more_layers": (dict(params, n_layers=2), sd),
        "unexpected_tensor": (params, dict(sd, **{"layers.0.attention.extra.weight": torch.zeros(2, 2).half()})),
        "int_weights": (params, dict(sd, **{"layers.0.attention.wq.weight": torch.zeros(16, 16, dtype=torch.int64)})),
    }
    for name, (p, d) in cases.items():
        out = os.path.join(ROOT, "tests", "data", "tiny_llama_bad", name)
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "params.json"), "w") as f:
            json.dump(p, f)
        torch.save(d, os.path.join(out, "consolidated.00.pth"))


if __name__ == "__main__":
    main()
    broken_models()
