#!/usr/bin/python3
"""Writes the gradient fixtures of lav2's training model (tests/train/test_llama_train.cpp) from
train_ref.py's autograd, on tests/data/tiny_llama + tests/data/tiny_adapter/{bias,lora_bias} with
tests/data/tiny_adapter/visual_query.npy:

    tests/data/train/batch.json                      tokens and labels [2, 12]: sequence 0 has a
                                                     4-token prompt and an 8-token answer, sequence 1
                                                     a 3-token prompt, a 5-token answer and 4 padding
                                                     tokens (0, as the official datasets leave them)
    tests/data/train/<variant>_<phase>/loss.json      {"loss": ...}
    tests/data/train/<variant>_<phase>/grad_<key>.npy float32 gradient of every trainable tensor the
                                                     forward reads, under its official key, and
                                                     grad_visual_query.npy (d loss / d visual query)

Phases: finetune (llama.* norms and biases), pretrain (gates, adapter_query; the visual branch is
outside the LLM), and for lora_bias also finetune_lora (finetune + LoRA, lav2's --train-lora).
The pretrain-phase model has no LLaMA biases, as officially (w_bias = phase == "finetune"): its
checkpoint's bias tensors are not loaded (config w_bias False here; lav2's train/phase_model.hpp).
Run with Debian's python3-torch:  /usr/bin/python3 tools/reference/make_train_fixture.py
"""
import json
import os

import numpy as np
import torch

from train_ref import train_step, write_fixture

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "..", "tests", "data")
LLAMA = os.path.join(DATA, "tiny_llama")
OUT = os.path.join(DATA, "train")

PRETRAIN_KEYS = ("gate", "clip_proj", "clip_proj_norm", "visual_query", "visual_blocks", "visual_proj",
                 "visual_proj_norm", "adapter_query")


def pretrain(k):  # get_trainable_params('pretrain'), spec 3.3
    return any(s in k for s in PRETRAIN_KEYS)


def finetune(k):  # get_trainable_params('finetune')
    return k.startswith("llama.") and ("norm" in k or "bias" in k)


def finetune_lora(k):
    return finetune(k) or "lora" in k


def batch(vocab):
    g = np.random.RandomState(7)
    S = 12
    t0 = list(g.randint(3, vocab, S))
    t1 = list(g.randint(3, vocab, 8)) + [0] * 4
    t0[0] = t1[0] = 1  # BOS
    l0 = [0] * 4 + t0[4:]
    l1 = [0] * 3 + t1[3:8] + [0] * 4
    return [[int(x) for x in t0], [int(x) for x in t1]], [[int(x) for x in l0], [int(x) for x in l1]]


def main():
    with open(os.path.join(LLAMA, "tiny", "params.json")) as f:
        params = dict(json.load(f), vocab_size=512)
    base = torch.load(os.path.join(LLAMA, "tiny", "consolidated.00.pth"))
    vq = torch.from_numpy(np.load(os.path.join(DATA, "tiny_adapter", "visual_query.npy")))
    tokens, labels = batch(params["vocab_size"])
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "batch.json"), "w") as f:
        json.dump({"tokens": tokens, "labels": labels}, f)
        f.write("\n")
    cases = [("bias", "finetune", finetune), ("bias", "pretrain", pretrain), ("lora_bias", "finetune", finetune),
             ("lora_bias", "pretrain", pretrain), ("lora_bias", "finetune_lora", finetune_lora)]
    for variant, phase, rule in cases:
        ckpt = torch.load(os.path.join(DATA, "tiny_adapter", variant, "adapter.pth"))
        cfg = dict(ckpt["config"], w_bias=phase != "pretrain")
        loss, grads = train_step(params, base, ckpt["model"], cfg, vq, tokens, labels, rule)
        d = os.path.join(OUT, f"{variant}_{phase}")
        write_fixture(d, loss, grads)
        print(f"{variant}_{phase}: loss {loss:.6f}, {len(grads)} gradients")


if __name__ == "__main__":
    main()
