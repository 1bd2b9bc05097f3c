#!/usr/bin/python3
"""Writes a small random LLaMA whose rows are 256 wide, in Meta's layout, for the llama.cpp GGUF
fixtures of tests/data/llamacpp/ (K-quants need rows that are a multiple of 256; the tiny model's
are 64). Nothing this writes is committed: lav2 converts it to f16 GGUF, llama.cpp's own
`llama-quantize` quantises that, and the quantised files are what the tests read
(tests/data/llamacpp/README.md gives every command).

    /usr/bin/python3 tools/reference/make_quant_llama.py OUT_DIR
        OUT_DIR/params.json, OUT_DIR/consolidated.00.pth (fp16, Meta's key names)

Sizes: dim 256, 4 heads, 1 layer, FFN 768, vocab 512 (tests/data/tokenizer/tiny.model).
"""
import json
import os
import sys

import sentencepiece as spm
import torch

sys.path.insert(0, os.path.dirname(__file__))
from make_llama_fixture import TOKENIZER, random_state_dict  # noqa: E402

PARAMS = {"dim": 256, "multiple_of": 256, "n_heads": 4, "n_layers": 1, "norm_eps": 1e-06, "vocab_size": -1}


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    vocab = spm.SentencePieceProcessor(model_file=TOKENIZER).vocab_size()
    with open(os.path.join(out, "params.json"), "w") as f:
        json.dump(PARAMS, f)
    torch.save(random_state_dict(PARAMS, vocab, seed=2024), os.path.join(out, "consolidated.00.pth"))
    print(f"{out}: dim {PARAMS['dim']}, {PARAMS['n_layers']} layer, vocab {vocab}")


if __name__ == "__main__":
    main()
