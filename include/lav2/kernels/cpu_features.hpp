// What this CPU (and its operating system) can run: the cpuid feature bits of each
// instruction-set level of kernel_table.hpp, and XGETBV's check that the OS saves the wide
// registers. Read once; emulators (qemu-x86_64 -cpu Haswell) answer these the way the CPU they
// model would, which is how the tests check each level's choice.
//
// cpuid is read directly (<cpuid.h>) rather than through __builtin_cpu_supports, which does not
// know "f16c" in every compiler lav2 builds with (clang 14).
#pragma once

#include <string>

#include "lav2/kernels/kernel_table.hpp"

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define LAV2_X86_CPUID 1
#include <cpuid.h>
#else
#define LAV2_X86_CPUID 0
#endif

namespace lav2::kernels {

/// \brief The feature bits lav2's levels need.
struct CpuFeatures {
  bool sse2 = false;
  bool avx2 = false, fma = false, f16c = false;                                // + OS-saved YMM state
  bool avx512f = false, avx512cd = false, avx512bw = false, avx512dq = false;  // + OS-saved ZMM and
  bool avx512vl = false;                                                       //   opmask state
};

namespace detail {
inline CpuFeatures read_cpu_features() {
  CpuFeatures f;
#if LAV2_X86_CPUID
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  f.sse2 = (d >> 26) & 1;
  const bool osxsave = (c >> 27) & 1, avx = (c >> 28) & 1;
  const bool fma = (c >> 12) & 1, f16c = (c >> 29) & 1;
  unsigned xcr0 = 0;
  if (osxsave) {
    unsigned hi = 0;
    __asm__ volatile("xgetbv" : "=a"(xcr0), "=d"(hi) : "c"(0));
  }
  const bool ymm_saved = (xcr0 & 0x6) == 0x6;    // SSE and AVX state
  const bool zmm_saved = (xcr0 & 0xE6) == 0xE6;  // + opmask, ZMM_Hi256, Hi16_ZMM
  unsigned b7 = 0;
  if (__get_cpuid_count(7, 0, &a, &b7, &c, &d)) {
    if (avx && ymm_saved) {
      f.avx2 = (b7 >> 5) & 1;
      f.fma = fma;
      f.f16c = f16c;
    }
    if (zmm_saved) {
      f.avx512f = (b7 >> 16) & 1;
      f.avx512dq = (b7 >> 17) & 1;
      f.avx512cd = (b7 >> 28) & 1;
      f.avx512bw = (b7 >> 30) & 1;
      f.avx512vl = (b7 >> 31) & 1;
    }
  }
#endif
  return f;
}
}  // namespace detail

/// \brief This CPU's features, read on first use.
inline const CpuFeatures& cpu_features() {
  static const CpuFeatures f = detail::read_cpu_features();
  return f;
}

/// \brief Whether this CPU can run level `isa` (the flags its unit is compiled with:
/// cmake/lav2_kernel_units.cmake). ref and native (a build's own -march) always can.
inline bool cpu_supports(Isa isa) {
  const CpuFeatures& f = cpu_features();
  switch (isa) {
    case Isa::ref: return true;
    case Isa::sse2: return f.sse2;
    case Isa::avx2: return f.sse2 && f.avx2 && f.fma && f.f16c;
    case Isa::avx512:
      return cpu_supports(Isa::avx2) && f.avx512f && f.avx512cd && f.avx512bw && f.avx512dq && f.avx512vl;
    case Isa::native: return true;
  }
  return false;
}

/// \brief The features level `isa` needs that this CPU lacks, as "avx512bw avx512vl" (empty if none).
inline std::string missing_features(Isa isa) {
  const CpuFeatures& f = cpu_features();
  std::string out;
  const auto need = [&out](bool have, const char* name) {
    if (!have) out += out.empty() ? name : std::string(" ") + name;
  };
  if (isa == Isa::sse2 || isa == Isa::avx2 || isa == Isa::avx512) need(f.sse2, "sse2");
  if (isa == Isa::avx2 || isa == Isa::avx512) need(f.avx2, "avx2"), need(f.fma, "fma"), need(f.f16c, "f16c");
  if (isa == Isa::avx512) {
    need(f.avx512f, "avx512f"), need(f.avx512cd, "avx512cd"), need(f.avx512bw, "avx512bw");
    need(f.avx512dq, "avx512dq"), need(f.avx512vl, "avx512vl");
  }
  return out;
}

}  // namespace lav2::kernels
