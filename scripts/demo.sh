#!/usr/bin/env bash
# The main job: installs what is missing, builds, and runs lav2 on the bundled model.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
./build/bin/lav2 --version
./build/bin/lav2 selfcheck
