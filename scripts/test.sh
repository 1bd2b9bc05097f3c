#!/usr/bin/env bash
# The test command: installs what is missing, builds everything and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
# With the OCR expert (Tesseract), so that its tests run too.
bash scripts/build.sh -DLAV2_WITH_TESSERACT=ON
bash scripts/fetch-test-data.sh
# install-deps.sh has installed qemu-user: the emulated-CPU tests must run, not skip.
LAV2_REQUIRE_QEMU=1 ctest --test-dir build --output-on-failure -j 2
