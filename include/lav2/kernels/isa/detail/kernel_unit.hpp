// The body of one per-level kernel unit: the generated source of lav2_add_kernel_units()
// (cmake/lav2_kernel_units.cmake) defines LAV2_KERNEL_UNIT to 1 (sse2), 2 (avx2) or 3 (avx512),
// includes this header, and is compiled with that level's flags, so xsimd::default_arch is that
// level. The unit defines the one table function of its level (unit_tables.hpp).
//
// Why this is safe to link next to code compiled for plain x86-64: everything a unit instantiates
// from the kernels is a template over the xsimd architecture, so its symbols are its own. Inline
// functions that are not (the scalar reference, dtype conversions, the thread pool, the standard
// library) are also compiled into the program's baseline objects and into the SSE2 unit, and the
// helper links the units after the program's objects, SSE2 first: the linker keeps the first copy
// of an inline function it sees, so the program never calls an AVX copy of one. (One that only
// the AVX units define is called only from AVX code.) Tests: baseline_code
// (tests/kernels/check_baseline_code.sh: no function that a baseline object defines holds AVX
// code in the linked binary) and the emulated-CPU runs of tests/cli/test_emulated_cpus.cpp.
#pragma once

#ifndef LAV2_KERNEL_UNIT
#error "kernel_unit.hpp is included only by the sources that lav2_add_kernel_units() generates"
#endif

#include <type_traits>

#include "lav2/kernels/isa/unit_tables.hpp"
#include "lav2/kernels/simd/simd_table.hpp"

namespace lav2::kernels::isa {

#if LAV2_KERNEL_UNIT == 1
static_assert(std::is_same_v<xsimd::default_arch, xsimd::sse2>, "the SSE2 unit is compiled for plain x86-64");
const KernelTable& sse2_table() {
  static const KernelTable t = simd::make_simd_table<xsimd::sse2>(Isa::sse2);
  return t;
}
#elif LAV2_KERNEL_UNIT == 2
static_assert(std::is_same_v<xsimd::default_arch, xsimd::fma3<xsimd::avx2> >,
              "the AVX2 unit is compiled with -mavx2 -mfma -mf16c");
const KernelTable& avx2_table() {
  static const KernelTable t = simd::make_simd_table<xsimd::fma3<xsimd::avx2> >(Isa::avx2);
  return t;
}
#elif LAV2_KERNEL_UNIT == 3
static_assert(std::is_same_v<xsimd::default_arch, xsimd::avx512bw>,
              "the AVX-512 unit is compiled with -mavx512f -mavx512cd -mavx512bw -mavx512dq -mavx512vl");
const KernelTable& avx512_table() {
  static const KernelTable t = simd::make_simd_table<xsimd::avx512bw>(Isa::avx512);
  return t;
}
#else
#error "LAV2_KERNEL_UNIT must be 1 (sse2), 2 (avx2) or 3 (avx512)"
#endif

}  // namespace lav2::kernels::isa
