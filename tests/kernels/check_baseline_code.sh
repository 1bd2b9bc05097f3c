#!/usr/bin/env bash
# check_baseline_code.sh BINARY: fails if any function of BINARY outside the AVX kernel units uses
# AVX or AVX-512 instructions (VEX/EVEX mnemonics v*, opmask kmov*). A program built with
# lav2_add_kernel_units() and no -march must run on any x86-64 CPU: only the units' functions,
# whose names carry their xsimd architecture (avx2, fma3, avx512...), and the table functions of
# the AVX units (lav2::kernels::isa::avx2_table, avx512_table) may hold such code; they run only
# after cpuid said the CPU has it (kernels/dispatch.hpp). See kernels/isa/detail/kernel_unit.hpp.
set -euo pipefail
bin=$1
command -v objdump >/dev/null || { echo "check_baseline_code: objdump not found (binutils)"; exit 1; }
report=$(objdump -d -C --no-show-raw-insn "$bin" | awk '
  /^[0-9a-f]+ <.*>:$/ { fn = $0; sub(/^[0-9a-f]+ </, "", fn); sub(/>:$/, "", fn); next }
  /\t(v[a-z0-9]+|kmov[a-z]*)([ \t]|$)/ { if (fn !~ /avx|fma3/) bad[fn]++; else ok[fn]++ }
  END {
    for (f in bad) printf "%6d AVX instruction(s) in %s\n", bad[f], substr(f, 1, 240)
    printf "# %d functions of the AVX units hold AVX code\n", length(ok)
  }')
echo "$report" | sort -rn | head -30
if echo "$report" | grep -q "AVX instruction"; then
  echo "check_baseline_code: $bin has AVX code outside the kernel units: it would die with SIGILL on an SSE-only CPU"
  exit 1
fi
# The units must be there at all: otherwise the check above proves nothing.
echo "$report" | grep -q "^# [1-9]" || { echo "check_baseline_code: no AVX kernel-unit code found in $bin"; exit 1; }
echo "check_baseline_code: ok"
