#!/usr/bin/env python3
"""Trains the small test tokenizers in tests/data/tokenizer/ the way LLaMA's was trained.

LLaMA-1's tokenizer.model (read from its trainer_spec / normalizer_spec) is a SentencePiece BPE model with
byte_fallback, split_digits, allow_whitespace_only_pieces, the 'identity' normaliser, add_dummy_prefix and
remove_extra_whitespaces=False; unk=0, bos=1, eos=2, pad=-1. These models use the same settings with a
vocabulary of 512 so they are small enough to commit (and to serve as the tiny test LLaMA's tokenizer).

  tiny.model       the LLaMA settings above, vocab 512 (the tiny model's tokenizer; do not change casually:
                   the model tests depend on its ids)
  tiny_user.model  the same plus user_defined_symbols, to test that user-defined pieces are matched first

The corpus is generated deterministically (fixed seed): English words, digits, punctuation, some Latin-1,
Greek, Cyrillic, CJK and emoji, with whitespace runs, tabs and newlines, so that merges exist across scripts.
Requires python3-sentencepiece (run with /usr/bin/python3). Usage:
  /usr/bin/python3 tools/reference/make_tokenizer.py [OUT_DIR]   (default tests/data/tokenizer)
"""
import os
import random
import sys
import tempfile

import sentencepiece as spm

WORDS = """the of and to in is was for that on with as by at from his her it an were are which this be or
has had not but what all when there can who been one more their if will would about out up them some she
other into time only new could than first may these people like over then its two also after did many before
must through back years where much your way well down should because each just those how too little state
good very make world still own see men work long get here between both life being under never day same another
know while last might us great old year off come since against go came right used take three small large
language model adapter vision image token tokenizer llama visual prompt instruction answer question caption
hello world quick brown fox jumps lazy dog running jumped happily simply computer science learning neural
network training inference matrix vector attention layer""".split()

UNICODE_WORDS = ["café", "naïve", "résumé", "über", "Straße", "façade", "señor", "Ελλάδα", "λόγος", "Москва",
                 "привет", "мир", "日本語", "中文", "你好", "世界", "東京", "こんにちは", "ありがとう", "한국어",
                 "안녕하세요", "😀", "🦙", "👍", "🚀", "❤️", "🎉", "∑", "π", "→", "—", "…", "€", "£", "°C"]

PUNCT = [".", ",", "!", "?", ";", ":", "'s", "-", "(", ")", "\"", "/"]


def sentence(rng):
    out = []
    for _ in range(rng.randint(3, 16)):
        r = rng.random()
        if r < 0.70:
            w = rng.choice(WORDS)
            if rng.random() < 0.15:
                w = w.capitalize()
            out.append(w)
        elif r < 0.82:
            out.append(rng.choice(UNICODE_WORDS))
        elif r < 0.92:
            out.append(str(rng.randint(0, 100000)))
        else:
            out.append(rng.choice(PUNCT))
    text = ""
    for w in out:
        sep = " "
        r = rng.random()
        if r < 0.05:
            sep = "  "
        elif r < 0.07:
            sep = "\t"
        elif r < 0.08:
            sep = "    "
        text += (sep if text else "") + w
    if rng.random() < 0.1:
        text = "  " + text
    return text + rng.choice([".", "!", "?", ""])


def make_corpus(path, n_lines=6000, seed=1234):
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        for _ in range(n_lines):
            f.write(sentence(rng) + "\n")


def train(corpus, prefix, **extra):
    spm.SentencePieceTrainer.train(
        input=corpus, model_prefix=prefix, model_type="bpe", vocab_size=512,
        byte_fallback=True, split_digits=True, allow_whitespace_only_pieces=True,
        normalization_rule_name="identity", add_dummy_prefix=True, remove_extra_whitespaces=False,
        character_coverage=0.9995, unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
        num_threads=1, minloglevel=2, **extra)
    os.remove(prefix + ".vocab")


def main():
    out_dir = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "tests/data/tokenizer")
    os.makedirs(out_dir, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)  # trainer_spec.input records the corpus path: keep it fixed so the output is reproducible
        corpus = "corpus.txt"
        make_corpus(corpus)
        train(corpus, os.path.join(out_dir, "tiny"))
        train(corpus, os.path.join(out_dir, "tiny_user"),
              user_defined_symbols=["<image>", "###", "Instruction:", "🦙llama"])
    for name in ("tiny", "tiny_user"):
        sp = spm.SentencePieceProcessor(model_file=os.path.join(out_dir, name + ".model"))
        print(name, sp.vocab_size(), sp.encode("Hello world! 日本語 🦙 12345"))


if __name__ == "__main__":
    main()
