// The tables that the per-level kernel units define (kernel_unit.hpp), declared for dispatch.hpp.
// A program has them when it calls lav2_add_kernel_units() (cmake/lav2_kernel_units.cmake), which
// also defines LAV2_KERNEL_UNITS=1 for it.
#pragma once

#include "lav2/kernels/kernel_table.hpp"

namespace lav2::kernels::isa {
const KernelTable& sse2_table();    ///< compiled for x86-64 (SSE2)
const KernelTable& avx2_table();    ///< compiled with -mavx2 -mfma -mf16c
const KernelTable& avx512_table();  ///< compiled with AVX-512 F, CD, BW, DQ, VL (+ AVX2, FMA, F16C)
}  // namespace lav2::kernels::isa
