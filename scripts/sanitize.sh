#!/usr/bin/env bash
# The sanitizer job: builds the fast test areas with AddressSanitizer + UndefinedBehaviorSanitizer
# (clang-14) into build-asan/ and runs them, the regression corpus (tests/corpus) included. Any
# sanitizer report fails the run (-fno-sanitize-recover, halt_on_error).
# The model and kernels areas are left to the normal build: the model area instantiates every model
# variant and takes minutes to compile; the cli area needs the lav2 binary, likewise (its hostile-input
# tests run in scripts/test.sh). The text area's one case that runs the lav2 binary is skipped here.
#   scripts/sanitize.sh [areas...]     default: core io text vision corpus
set -euo pipefail
cd "$(dirname "$0")/.."
areas=("$@")
((${#areas[@]})) || areas=(core io text vision corpus)
out=build-asan
flags="-O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
list=$(IFS=';'; echo "${areas[*]}")
cmake -S . -B $out -G Ninja -DCMAKE_CXX_COMPILER=clang++-14 -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="$flags" \
  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" -DLAV2_BUILD_EXAMPLES=OFF -DLAV2_BUILD_BENCHMARKS=OFF \
  -DLAV2_INSTALL=OFF -DLAV2_ONLY_TEST_AREAS="$list" >/dev/null
cmake --build $out -j "$(nproc)" --target "${areas[@]/#/lav2_test_}"
export ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
pids=()
for a in "${areas[@]}"; do
  skip=()
  [[ $a == text ]] && skip=(-tce="lav2 tokenize*")
  ("$out/tests/lav2_test_$a" "${skip[@]}" >"$out/test_$a.log" 2>&1 && echo "sanitize: $a ok: $(tail -2 "$out/test_$a.log" | head -1)") \
    || { echo "sanitize: $a FAILED"; tail -40 "$out/test_$a.log"; exit 1; } &
  pids+=($!)
  if ((${#pids[@]} >= $(nproc))); then wait "${pids[0]}"; pids=("${pids[@]:1}"); fi
done
for p in "${pids[@]}"; do wait "$p"; done
