#!/usr/bin/python3
"""Writes the fixture that `lav2 train --dump-grads` is checked against (tests/cli/test_train_cli.cpp):
the first step's loss and gradients, from train_ref.py's autograd, of a batch made as the official
FinetuneDataset makes it from a data file, on tests/data/tiny_llama + tests/data/tiny_adapter/
full_bias with the visual query of the all-zero image (tests/data/tiny_clip/golden/
clip_features_zero.npy through clip_ref.forward_visual, 16 heads):

    tests/data/train/cli/data.json                    two text-only records (one with an input)
    tests/data/train/cli/captions.tsv                 two captions of images/resize/021_449x300_mixed.png
                                                      (tiny_clip/golden/clip_features_image.npy, BGR)
    tests/data/train/cli/<case>/loss.json             {"loss": ...}
    tests/data/train/cli/<case>/grad_<key>.npy        float32, every trainable tensor the step reads

The tokens: prompt = encode(format_prompt(...), bos); example = encode(prompt + output, bos, eos),
padded with 0 to MAX_WORDS; labels 0 over the prompt and the padding (spec 8). Both records form
the one batch of the step (lav2 train --batch 2 --steps 1).
Cases: finetune (llama.* norms and biases; the projector frozen), pretrain (w_bias False, the
gates, adapter_query and every projector tensor, the visual query differentiable), joint (the
first step of --phase joint, an image-text batch of the captions: biases loaded, the visual and
the language group both get gradients, though only the visual group is updated), and
finetune_lora (full_lora_bias with --train-lora: finetune + every LoRA matrix).
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


CAPTIONS = ["a picture of stripes", "colour bands, side by side"]
IMAGE = "../../images/resize/021_449x300_mixed.png"


def tokenize(sp, prompt, answer):  # FinetuneDataset / PretrainDataset.__getitem__
    p = [sp.bos_id()] + sp.encode(prompt)
    e = [sp.bos_id()] + sp.encode(prompt + answer) + [sp.eos_id()]
    e = (e + [0] * MAX_WORDS)[:MAX_WORDS]
    labels = [0] * len(p) + e[len(p):]
    return e, labels


def pretrain_rule(k):
    return any(s in k for s in PRETRAIN_KEYS)


def finetune_rule(k):
    return k.startswith("llama.") and ("norm" in k or "bias" in k)


def main():
    with open(os.path.join(DATA, "tiny_llama", "tiny", "params.json")) as f:
        params = dict(json.load(f), vocab_size=512)
    base = torch.load(os.path.join(DATA, "tiny_llama", "tiny", "consolidated.00.pth"))
    sp = spm.SentencePieceProcessor(model_file=os.path.join(DATA, "tiny_llama", "tokenizer.model"))
    text = [tokenize(sp, format_prompt(r["instruction"], r.get("input")), r["output"]) for r in RECORDS]
    caption_prompt = format_prompt("Generate caption of this image")
    image = [tokenize(sp, caption_prompt, c) for c in CAPTIONS]
    golden = os.path.join(DATA, "tiny_clip", "golden")
    zero = torch.from_numpy(np.load(os.path.join(golden, "clip_features_zero.npy")))[0]
    picture = torch.from_numpy(np.load(os.path.join(golden, "clip_features_image.npy")))[0]
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "data.json"), "w") as f:
        json.dump(RECORDS, f, indent=1)
        f.write("\n")
    with open(os.path.join(OUT, "captions.tsv"), "w") as f:
        f.writelines(f"{IMAGE}\t{c}\n" for c in CAPTIONS)
    # case: (adapter, batch, CLIP features, w_bias, LLM rule, projector trained)
    cases = {
        "finetune": ("full_bias", text, zero, True, finetune_rule, False),
        "pretrain": ("full_bias", text, zero, False, pretrain_rule, True),
        "joint": ("full_bias", image, picture, True, lambda k: pretrain_rule(k) or finetune_rule(k), True),
        "finetune_lora": ("full_lora_bias", text, zero, True, lambda k: finetune_rule(k) or "lora" in k, False),
    }
    for case, (variant, batch, feats, w_bias, rule, visual_trained) in cases.items():
        ckpt = torch.load(os.path.join(DATA, "tiny_adapter", variant, "adapter.pth"))
        sd = {k: v.float() for k, v in ckpt["model"].items()}
        visual = {k: v.clone().requires_grad_(visual_trained) for k, v in sd.items()
                  if not k.startswith("llama.") and k != "adapter_query.weight"}
        vq = forward_visual(visual, feats, heads=16, dtype=torch.float32)
        if not visual_trained:
            vq = vq.detach()
        tokens, labels = zip(*batch)
        cfg = dict(ckpt["config"], w_bias=w_bias)
        loss, grads = train_step(params, base, sd, cfg, vq, list(tokens), list(labels), rule)
        grads.pop("visual_query", None)
        if visual_trained:
            for k, t in visual.items():
                grads[k] = t.grad.detach().clone()
        write_fixture(os.path.join(OUT, case), loss, grads)
        print(f"{case}: loss {loss:.6f}, {len(grads)} gradients")


if __name__ == "__main__":
    main()
