// The inner loops of the machine probes (probes.hpp) for one xsimd architecture: a streaming sum
// that reads memory as fast as the batches allow, and independent FMA chains that keep every FMA
// port busy. They live with the kernels so that each instruction-set unit measures its own width.
#pragma once

#include <algorithm>
#include <cstdint>

#include "lav2/kernels/kernel_table.hpp"
#include "lav2/kernels/simd/arch.hpp"

namespace lav2::kernels::simd {

/// \brief Sum of x (n, a multiple of 64 floats, 64-byte aligned), four batch accumulators.
template <class Arch>
float stream_sum(const float* x, std::int64_t n) {
  using B = xsimd::batch<float, Arch>;
  constexpr std::int64_t kLanes = B::size;
  static_assert(64 % (4 * kLanes) == 0, "a 64-float block is whole steps of four batches");
  B a0(0.0f), a1(0.0f), a2(0.0f), a3(0.0f);
  for (std::int64_t i = 0; i < n; i += 4 * kLanes) {
    a0 += B::load_aligned(x + i);
    a1 += B::load_aligned(x + i + kLanes);
    a2 += B::load_aligned(x + i + 2 * kLanes);
    a3 += B::load_aligned(x + i + 3 * kLanes);
  }
  return xsimd::hadd((a0 + a1) + (a2 + a3));
}

/// \brief The same sum with x's two halves read in step: two streams per thread (more lines in
/// flight where one stream's prefetcher stalls). n a multiple of 128.
template <class Arch>
float stream_sum_two(const float* x, std::int64_t n) {
  using B = xsimd::batch<float, Arch>;
  constexpr std::int64_t kLanes = B::size;
  const float* y = x + n / 2;
  B a0(0.0f), a1(0.0f), a2(0.0f), a3(0.0f);
  for (std::int64_t i = 0; i < n / 2; i += 2 * kLanes) {
    a0 += B::load_aligned(x + i);
    a1 += B::load_aligned(x + i + kLanes);
    a2 += B::load_aligned(y + i);
    a3 += B::load_aligned(y + i + kLanes);
  }
  return xsimd::hadd((a0 + a1) + (a2 + a3));
}

/// \brief The same sum with a software prefetch 2 KiB ahead of every 64-byte line.
template <class Arch>
float stream_sum_prefetch(const float* x, std::int64_t n) {
  using B = xsimd::batch<float, Arch>;
  constexpr std::int64_t kLanes = B::size, kAhead = 512;  // floats: 2 KiB
  B a0(0.0f), a1(0.0f), a2(0.0f), a3(0.0f);
  for (std::int64_t i = 0; i < n; i += 4 * kLanes) {
    for (std::int64_t l = 0; l < 4 * kLanes; l += 16) __builtin_prefetch(x + std::min(i + l + kAhead, n - 1));
    a0 += B::load_aligned(x + i);
    a1 += B::load_aligned(x + i + kLanes);
    a2 += B::load_aligned(x + i + 2 * kLanes);
    a3 += B::load_aligned(x + i + 3 * kLanes);
  }
  return xsimd::hadd((a0 + a1) + (a2 + a3));
}

/// \brief kFmaChains independent chains of `iterations` batch FMAs; returns the sum of all lanes
/// (so the work cannot be optimised away). Flops: 2 * lanes * kFmaChains * iterations.
template <class Arch>
float fma_chains(std::int64_t iterations) {
  using B = xsimd::batch<float, Arch>;
  B acc[kFmaChains];
  for (int c = 0; c < kFmaChains; ++c) acc[c] = B(float(c) * 1e-3f);
  const B mul(0.999999f), add(1e-6f);
  for (std::int64_t i = 0; i < iterations; ++i) {
    for (int c = 0; c < kFmaChains; ++c) acc[c] = xsimd::fma(acc[c], mul, add);
  }
  B total(0.0f);
  for (int c = 0; c < kFmaChains; ++c) total += acc[c];
  return xsimd::hadd(total);
}

}  // namespace lav2::kernels::simd
