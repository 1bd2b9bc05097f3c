// SIMD matrix products out[M, N] = x[M, K] · w[N, K]^T for f32, f16 and bf16 weights.
//
// Two paths:
// - matvec (M < kGemmMinRows): memory-bound, so it streams each weight row once per activation
//   row, widening 16-bit weights in registers (F16C / AVX-512 / shifts; see convert.hpp) and
//   accumulating into f32 batches. Groups of 4 (SSE), 6 (AVX2) or 8 (AVX-512) weight rows
//   share each load of x; each step reads 512 bytes of every row of the group and prefetches
//   the next 512.
// - GEMM (M >= kGemmMinRows): compute-bound, register-blocked; see gemm.hpp.
//
// Determinism and accumulation order (the contract in dispatch.hpp):
// - Work is split over N only (blocks of rows claimed by the threads), so each output is
//   computed by exactly one thread with the same instructions whatever the thread count.
// - matvec: output n uses two batch accumulators over alternating batches of k, summed, reduced
//   horizontally (xsimd::hadd), then the K % lanes tail added left to right. A row gets the same
//   arithmetic whether it is processed in a group or alone.
// - GEMM: output (m, n) is one FMA chain over k = 0, 1, ..., K-1 in order (the tile is stored and
//   reloaded between kKc blocks, which does not change the chain).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "lav2/core/thread_pool.hpp"
#include "lav2/kernels/epilogue.hpp"
#include "lav2/kernels/simd/convert.hpp"
#include "lav2/kernels/simd/gemm.hpp"
#include "lav2/kernels/simd/quant_matvec.hpp"
#include "lav2/tensor/dtype.hpp"

namespace lav2::kernels::simd {

namespace detail {

/// Bytes of each weight row that one matvec step reads (8 cache lines), and how far ahead of
/// that step it asks for the row: exactly one step. The rows of a group are kRows concurrent
/// streams of a few KiB each, which hardware prefetchers pick up late and drop at page
/// boundaries. Reading 8 consecutive lines of a row at a time while the next 8 are requested
/// keeps more DRAM reads in flight than one line per row per step: with f16 weights, whose
/// conversions add dependent work per line, it lifted the 11008x4096 matvec from ~0.83 to ~0.94
/// of the stream probe here (AVX-512, 2 threads; docs/kernels.md). Distances of 256 B and 1 KiB
/// per row were both slower.
#ifndef LAV2_MATVEC_STEP_BYTES
#define LAV2_MATVEC_STEP_BYTES 512
#endif
inline constexpr std::int64_t kMatvecStepBytes = LAV2_MATVEC_STEP_BYTES;

/// Batches of k per row in one matvec step: kMatvecStepBytes of weights, an even number (so the
/// two accumulators keep alternating the same way in the 2-batch loop that finishes a row), at
/// most 32 (code size on narrow targets).
template <class Arch, class W>
inline constexpr std::int64_t matvec_step_batches() {
  constexpr std::int64_t kBatchBytes = std::int64_t(fbatch<Arch>::size * sizeof(W));
  return std::clamp<std::int64_t>(kMatvecStepBytes / kBatchBytes / 2 * 2, 2, 32);
}

/// out[r] = sum_k x[k] * w[r*K + k] for the kRows consecutive rows starting at `w`, each then
/// passed through `ep` as feature `n0 + r`.
/// Batch b of k (lanes b*L .. b*L+L-1) goes into acc0 when b is even and acc1 when it is odd,
/// whichever loop reads it, so a row's arithmetic depends on K only, not on kRows.
/// The prefetch for the last step of a row points at the same place in row r + kRows, the next
/// group's (past the matrix the hints are wasted, never faulting).
template <class Arch, int kRows, class W>
inline void matvec_rows(float* out, const float* x, const W* w, std::int64_t K, const Epilogue& ep, std::int64_t n0) {
  using B = fbatch<Arch>;
  constexpr std::int64_t kLanes = B::size;
  constexpr std::int64_t kBatches = matvec_step_batches<Arch, W>();
  constexpr std::int64_t kStep = kBatches * kLanes;  // elements of each row per step
  constexpr std::int64_t kStepLines = std::max<std::int64_t>(1, kStep * std::int64_t(sizeof(W)) / 64);
  B acc0[kRows], acc1[kRows];
  for (int r = 0; r < kRows; ++r) acc0[r] = acc1[r] = B(0.0f);
  const char* bytes = reinterpret_cast<const char*>(w);
  std::int64_t k = 0;
  for (; k + kStep <= K; k += kStep) {
    // Element k + kStep of row r, or (past the end of the row) of row r + kRows.
    const std::int64_t ahead = k + kStep < K ? k + kStep : k + kStep + (kRows - 1) * K;
    for (int r = 0; r < kRows; ++r) {
      const char* next = bytes + (r * K + ahead) * std::int64_t(sizeof(W));
      for (std::int64_t line = 0; line < kStepLines; ++line) __builtin_prefetch(next + 64 * line, 0, 3);
      const W* row = w + r * K + k;
      for (std::int64_t b = 0; b < kBatches; b += 2) {
        acc0[r] = xsimd::fma(load_as_f32<Arch>(row + b * kLanes), B::load_unaligned(x + k + b * kLanes), acc0[r]);
        acc1[r] =
            xsimd::fma(load_as_f32<Arch>(row + (b + 1) * kLanes), B::load_unaligned(x + k + (b + 1) * kLanes), acc1[r]);
      }
    }
  }
  for (; k + 2 * kLanes <= K; k += 2 * kLanes) {
    const B x0 = B::load_unaligned(x + k), x1 = B::load_unaligned(x + k + kLanes);
    for (int r = 0; r < kRows; ++r) {
      acc0[r] = xsimd::fma(load_as_f32<Arch>(w + r * K + k), x0, acc0[r]);
      acc1[r] = xsimd::fma(load_as_f32<Arch>(w + r * K + k + kLanes), x1, acc1[r]);
    }
  }
  if (k + kLanes <= K) {
    const B x0 = B::load_unaligned(x + k);
    for (int r = 0; r < kRows; ++r) acc0[r] = xsimd::fma(load_as_f32<Arch>(w + r * K + k), x0, acc0[r]);
    k += kLanes;
  }
  for (int r = 0; r < kRows; ++r) {
    float sum = xsimd::hadd(acc0[r] + acc1[r]);
    // An explicit fma: left to the compiler, `sum += a * b` is contracted in some instantiations
    // (-ffp-contract=fast is GCC's default) and not in others, and a row would then differ in the
    // last bit between a group and a single-row pass, i.e. between thread counts.
    for (std::int64_t t = k; t < K; ++t) sum = std::fma(x[t], to_f32(w[r * K + t]), sum);
    out[r] = ep.apply(sum, n0 + r, out[r]);
  }
}

/// out[n] for n in [n_begin, n_end): rows of w dotted with x (K).
template <class Arch, class W>
inline void matvec_range(float* out, const float* x, const W* w, std::int64_t K, std::int64_t n_begin,
                         std::int64_t n_end, const Epilogue& ep) {
  // Rows per group: 2 accumulators each must fit the register file with room for a widened
  // weight batch (AVX-512 has 32 registers, AVX2 16; x comes from L1 as a memory operand). More
  // concurrent row streams read DRAM faster: 8 rows beat 4 or 6 on AVX-512, and on AVX2 (8-lane
  // build on the same machine) 6 rows beat 4 by ~6 %.
  constexpr int kGroup = fbatch<Arch>::size >= 16 ? 8 : fbatch<Arch>::size == 8 ? 6 : 4;
  std::int64_t n = n_begin;
  for (; n + kGroup <= n_end; n += kGroup) matvec_rows<Arch, kGroup>(out + n, x, w + n * K, K, ep, n);
  for (; n < n_end; ++n) matvec_rows<Arch, 1>(out + n, x, w + n * K, K, ep, n);
}

}  // namespace detail

/// \brief out[M, N] = x[M, K] · w[N, K]^T, then `ep` (see the file comment for paths and order).
struct matmul_fn {
  /// Smallest block of weight rows the matvec threads claim, and the multiple every block is
  /// made of: a multiple of every row-group size (4, 6, 8), so rows are grouped the same way
  /// whoever runs them; 48 rows of 4096 f16 are 384 KiB.
  static constexpr std::int64_t kMatvecGrain = 48;

  template <class Arch, class W>
  void operator()(Arch, ThreadPool& pool, float* out, const float* x, const W* w, std::int64_t M, std::int64_t N,
                  std::int64_t K, Epilogue ep = {}) const {
    if (M <= 0 || N <= 0) return;
    if constexpr (is_quant_block_v<W>) {  // quant_matvec.hpp, or the GEMM on dequantised blocks
      if (M < kQuantGemmMinRows) detail::quant_matvec<Arch>(pool, out, x, w, M, N, K, ep);
      else detail::gemm<Arch>(pool, out, x, w, M, N, K, ep);
    } else {
      if (M >= detail::kGemmMinRows && K > 0) {
        detail::gemm<Arch>(pool, out, x, w, M, N, K, ep);
        return;
      }
      // Claimed, not statically split: with weights streaming from DRAM, a thread the OS or the
      // hypervisor delays would otherwise hold up the call by its whole half. Guided (shrinking)
      // blocks: every block restarts the prefetch streams, and at 11008x4096 f16 fixed 64-row
      // blocks read ~5 % slower than blocks that start at a quarter of the rows.
      pool.parallel_for_guided(
          N,
          [&](std::int64_t n_begin, std::int64_t n_end) {
            for (std::int64_t m = 0; m < M; ++m)
              detail::matvec_range<Arch>(out + m * N, x + m * K, w, K, n_begin, n_end, ep);
          },
          kMatvecGrain);
    }
  }
};

}  // namespace lav2::kernels::simd
