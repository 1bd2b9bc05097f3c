#!/usr/bin/env bash
# Checks that the C++ sources follow .clang-format: `clang-format --dry-run --Werror` over every
# tracked *.hpp / *.cpp under include/ cli/ tests/ benchmarks/ examples/, except test data and the
# fuzz regression inputs. Prints each deviation and exits non-zero if there is any.
#   scripts/check-format.sh          check
#   scripts/check-format.sh --fix    rewrite the files in place instead (clang-format -i)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v clang-format >/dev/null 2>&1 || bash scripts/install-deps.sh
mapfile -t files < <(git ls-files -- include cli tests benchmarks examples |
  grep -E '\.(hpp|cpp)$' | grep -vE '^tests/data/|^tests/fuzz/regressions/')
echo "check-format: $(clang-format --version | head -1), ${#files[@]} files"
if [[ "${1:-}" == "--fix" ]]; then
  printf '%s\0' "${files[@]}" | xargs -0 -n 32 clang-format -i --style=file
  exit 0
fi
printf '%s\0' "${files[@]}" | xargs -0 -n 32 clang-format --dry-run --Werror --style=file
echo "check-format: ok"
