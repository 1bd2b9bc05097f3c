#!/usr/bin/env bash
# The main job: installs what is missing, builds, checks the kernels, then runs LLaMA-Adapter V2 on
# the bundled tiny model (random weights in the official formats: the text is noise, every step of
# the pipeline is real): text with plain LLaMA, then an image through CLIP and the adapter.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
lav2=./build/bin/lav2
d=tests/data
$lav2 --version
$lav2 selfcheck
echo "== lav2 generate (tiny LLaMA, Meta's format)"
$lav2 generate --llama-dir $d/tiny_llama/tiny --prompt "Tell me about alpacas." --max-new-tokens 32 --seed 1
echo "== lav2 generate --adapter --clip --image (tiny LLaMA-Adapter V2 BIAS, tiny CLIP)"
$lav2 generate --llama-dir $d/tiny_llama/tiny --adapter $d/tiny_adapter/full_bias/adapter.pth \
  --clip $d/tiny_clip/ViT-tiny.pt --image $d/images/resize/021_449x300_mixed.png \
  --prompt "What is in the image?" --max-new-tokens 32 --seed 1 --json
echo "== lav2 info --preset 7b-bias"
$lav2 info --preset 7b-bias
