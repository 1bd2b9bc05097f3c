#!/usr/bin/env bash
# The main job: installs what is missing, builds, checks the kernels, and generates text with the
# bundled tiny LLaMA (random weights in Meta's format: the text is noise, the pipeline is real).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
./build/bin/lav2 --version
./build/bin/lav2 selfcheck
./build/bin/lav2 generate --llama-dir tests/data/tiny_llama/tiny --prompt "Tell me about alpacas." \
  --max-new-tokens 32 --seed 1
