#!/usr/bin/env bash
# check_baseline_code.sh BINARY OBJECT...: fails if BINARY could run AVX code on a CPU without it.
#
# A program built with lav2_add_kernel_units() and no -march compiles its own objects and the SSE2
# unit for plain x86-64, and the AVX2 / AVX-512 units with their flags (OBJECT... lists all of
# them; the AVX units are the kernels_avx2 / kernels_avx512 objects). An inline function defined
# both in a baseline object and in an AVX unit is one symbol: the linker keeps the first copy, and
# the units come last, so the baseline copy must win. A function that only the AVX units define
# is called only by AVX code, which runs after cpuid said it may (kernels/dispatch.hpp).
# So: no function of BINARY that a baseline object also defines may hold an AVX or AVX-512
# instruction (VEX/EVEX mnemonics v*, opmask kmov*). See kernels/isa/detail/kernel_unit.hpp.
set -euo pipefail
bin=$1
shift
for tool in objdump nm; do
  command -v $tool >/dev/null || { echo "check_baseline_code: $tool not found (binutils)"; exit 1; }
done
baseline=() avx=()
for o in "$@"; do
  case $(basename "$o") in
    kernels_avx2*|kernels_avx512*) avx+=("$o") ;;
    *) baseline+=("$o") ;;
  esac
done
((${#avx[@]} == 2)) || { echo "check_baseline_code: expected the two AVX unit objects among the objects"; exit 1; }
defs=$(mktemp)
trap 'rm -f "$defs"' EXIT
# Functions (text symbols, weak or global) that baseline code defines, mangled.
nm --defined-only "${baseline[@]}" 2>/dev/null | awk '$2 ~ /^[TWtw]$/ { print $3 }' | sort -u >"$defs"
report=$(objdump -d --no-show-raw-insn "$bin" | awk -v defs="$defs" '
  BEGIN { while ((getline s < defs) > 0) base[s] = 1 }
  /^[0-9a-f]+ <.*>:$/ { fn = $0; sub(/^[0-9a-f]+ </, "", fn); sub(/>:$/, "", fn); next }
  /\t(v[a-z0-9]+|kmov[a-z]*)([ \t]|$)/ { if (fn in base) bad[fn]++; else unit[fn]++ }
  END {
    for (f in bad) printf "%6d AVX instruction(s) in %s\n", bad[f], f
    printf "# %d functions, each defined only by the AVX units, hold AVX code\n", length(unit)
  }')
echo "$report" | head -30
if echo "$report" | grep -q "AVX instruction"; then
  echo "check_baseline_code: $bin has AVX code in functions that baseline code calls: it would die with SIGILL on an SSE-only CPU"
  exit 1
fi
echo "$report" | grep -q "^# [1-9]" || { echo "check_baseline_code: no AVX kernel-unit code found in $bin"; exit 1; }
echo "check_baseline_code: ok"
