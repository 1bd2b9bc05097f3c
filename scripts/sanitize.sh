#!/usr/bin/env bash
# The sanitizer job: builds the fast test areas with AddressSanitizer + UndefinedBehaviorSanitizer
# (clang-14) into build-asan/ and runs them, the regression corpus (tests/corpus) included; then the
# concurrency test under ThreadSanitizer (build-tsan/). Any sanitizer report fails the run
# (-fno-sanitize-recover, halt_on_error).
# Every area but cli, which needs the lav2 binary (its hostile-input tests run in scripts/test.sh);
# the text area's one case that runs the lav2 binary is skipped here. The kernels area runs every
# kernel level this CPU has, its slowest cases at smaller shapes of the same structure under ASan
# (tests/kernels/levels.hpp, kSanitized). Measured from empty build dirs on the shared 2-core
# machine: 172 s without kernels and model, 312 s with them (kernels' run 55 s, 18 s once shrunk).
# The experts area is built with Tesseract (LAV2_WITH_TESSERACT), so the OCR expert runs under the
# sanitizers too: its build takes about 100 s, its run about 140 s (the 45 rendered-text images).
#   scripts/sanitize.sh [areas...]     default: core io text vision corpus kernels model experts train
set -euo pipefail
cd "$(dirname "$0")/.."
areas=("$@")
((${#areas[@]})) || areas=(core io text vision corpus kernels model experts train)
out=build-asan
flags="-O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
list=$(IFS=';'; echo "${areas[*]}")
cmake -S . -B $out -G Ninja -DCMAKE_CXX_COMPILER=clang++-14 -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="$flags" \
  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" -DLAV2_BUILD_EXAMPLES=OFF -DLAV2_BUILD_BENCHMARKS=OFF \
  -DLAV2_INSTALL=OFF -DLAV2_WITH_TESSERACT=ON -DLAV2_ONLY_TEST_AREAS="$list" >/dev/null
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

# ThreadSanitizer over the concurrency test: two requests on one model, each with its own pool
# (tests/model/test_run_state.cpp). One translation unit, so it builds in about a minute.
tsan=build-tsan
mkdir -p $tsan
clang++-14 -std=c++17 -O1 -g -fsanitize=thread -fno-omit-frame-pointer -march=native -Iinclude -Itests \
  -DLAV2_TEST_DATA_DIR="\"$PWD/tests/data\"" tests/main.cpp tests/model/test_run_state.cpp -o $tsan/test_run_state -pthread
TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 $tsan/test_run_state -tc="two requests*" >$tsan/test.log 2>&1 \
  && echo "sanitize: tsan ok: $(tail -2 $tsan/test.log | head -1)" \
  || { echo "sanitize: tsan FAILED"; tail -60 $tsan/test.log; exit 1; }
