#!/usr/bin/python3
"""Writes the fixture that `lav2 train --dump-grads` is checked against (tests/cli/test_train_cli.cpp):
the first step's loss and gradients, from train_ref.py's autograd, of a batch made as the official
FinetuneDataset makes it from a data file, on tests/data/tiny_llama + tests/data/tiny_adapter/
full_bias with the visual query of the all-zero image (tests/data/tiny_clip/golden/
clip_features_zero.npy through clip_ref.forward_visual, 16 heads):

    tests/data/train/cli/data.json                    two text-only records (one with an input)
    tests/data/train/cli/<phase>/loss.json            {"loss": ...}
    tests/data/train/cli/<phase>/grad_<key>.npy       float32, every trainable tensor the step reads

The tokens: prompt = encode(format_prompt(...), bos); example = encode(prompt + output, bos, eos),
padded with 0 to MAX_WORDS; labels 0 over the prompt and the padding (spec 8). Both records form
the one batch of the step (lav2 train --batch 2 --steps 1).
Phases: finetune (llama.* norms and biases; the projector frozen) and pretrain (w_bias False, the
gates, adapter_query and every projector tensor, the visual query differentiable).
Run with Debian's python3-torch:  /usr/bin/python3 tools/reference/make_train_cli_fixture.py
"""
import json
import os

import numpy as np
import sentencepiece as spm
import torch

from clip_ref import forward_visual
from train_ref import train_step, write_fixture

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "..", "tests", "data")
OUT = os.path.join(DATA, "train", "cli")
MAX_WORDS = 192
RECORDS = [
    {"instruction": "Name a colour of the sky.", "output": "Blue, on a clear day."},
    {"instruction": "Add the numbers.", "input": "2 and 3", "output": "5"},
]
PRETRAIN_KEYS = ("gate", "clip_proj", "clip_proj_norm", "visual_query", "visual_blocks", "visual_proj",
                 "visual_proj_norm", "adapter_query")


def format_prompt(instruction, inp=None):  # llama.format_prompt (spec 7)
    if inp is None:
        return ("Below is an instruction that describes a task. Write a response that appropriately completes "
                "the request.\n\n### Instruction:\n" + instruction + "\n\n### Response:")
    return ("Below is an instruction that describes a task, paired with an input that provides further context. "
            "Write a response that appropriately completes the request.\n\n### Instruction:\n" + instruction +
            "\n\n### Input:\n" + inp + "\n\n### Response:")


def tokenize(sp, rec):  # FinetuneDataset.__getitem__
    prompt = format_prompt(rec["instruction"], rec.get("input"))
    p = [sp.bos_id()] + sp.encode(prompt)
    e = [sp.bos_id()] + sp.encode(prompt + rec["output"]) + [sp.eos_id()]
    e = (e + [0] * MAX_WORDS)[:MAX_WORDS]
    labels = [0] * len(p) + e[len(p):]
    return e, labels


def main():
    with open(os.path.join(DATA, "tiny_llama", "tiny", "params.json")) as f:
        params = dict(json.load(f), vocab_size=512)
    base = torch.load(os.path.join(DATA, "tiny_llama", "tiny", "consolidated.00.pth"))
    sp = spm.SentencePieceProcessor(model_file=os.path.join(DATA, "tiny_llama", "tokenizer.model"))
    tokens, labels = zip(*[tokenize(sp, r) for r in RECORDS])
    ckpt = torch.load(os.path.join(DATA, "tiny_adapter", "full_bias", "adapter.pth"))
    feats = torch.from_numpy(np.load(os.path.join(DATA, "tiny_clip", "golden", "clip_features_zero.npy")))[0]
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "data.json"), "w") as f:
        json.dump(RECORDS, f, indent=1)
        f.write("\n")
    for phase in ("finetune", "pretrain"):
        sd = {k: v.float() for k, v in ckpt["model"].items()}
        if phase == "pretrain":
            visual = {k: v.clone().requires_grad_(True) for k, v in sd.items() if not k.startswith("llama.") and
                      k != "adapter_query.weight"}
            vq = forward_visual(visual, feats, heads=16, dtype=torch.float32)
            rule = lambda k: any(s in k for s in PRETRAIN_KEYS)  # noqa: E731
            cfg = dict(ckpt["config"], w_bias=False)
        else:
            visual = {}
            vq = forward_visual(sd, feats, heads=16, dtype=torch.float32).detach()
            rule = lambda k: k.startswith("llama.") and ("norm" in k or "bias" in k)  # noqa: E731
            cfg = dict(ckpt["config"])
        loss, grads = train_step(params, base, sd, cfg, vq, list(tokens), list(labels), rule)
        grads.pop("visual_query", None)
        for k, t in visual.items():
            grads[k] = t.grad.detach().clone()
        d = os.path.join(OUT, phase)
        write_fixture(d, loss, grads)
        print(f"{phase}: loss {loss:.6f}, {len(grads)} gradients, lengths {[sum(t != 0 for t in x) for x in tokens]}")


if __name__ == "__main__":
    main()
