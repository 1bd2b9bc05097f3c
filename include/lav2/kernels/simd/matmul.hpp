// SIMD matrix products out[M, N] = x[M, K] · w[N, K]^T for f32, f16 and bf16 weights.
//
// Two paths:
// - matvec (M < kGemmMinRows): memory-bound, so it streams each weight row once per activation
//   row, widening 16-bit weights in registers (F16C / AVX-512 / shifts; see convert.hpp) and
//   accumulating into f32 batches. Groups of 4 (AVX2) or 8 (AVX-512) weight rows share each
//   load of x; each row is software-prefetched 1 KiB ahead (and into the next group at its end).
// - GEMM (M >= kGemmMinRows): compute-bound, register-blocked. x is packed once, transposed,
//   into panels of 2 batches of activation rows; the micro-kernel holds a tile of kNr outputs n
//   (14 on AVX-512, 6 on AVX2) x 2 batches of rows m in 2 * kNr registers and, per k, broadcasts
//   one weight of each of the kNr rows into 2 * kNr FMAs. Each thread widens (f16/bf16) or copies
//   (f32) a chunk of its weight rows, kKc inputs at a time, into an L2-resident f32 block with a
//   compile-time row stride (every broadcast is a constant offset from one pointer), prefetching
//   the next block, and runs every panel of x against it: the weights are read from DRAM once.
//
// Determinism and accumulation order (the contract in dispatch.hpp):
// - Work is split over N only (parallel_for over rows / NR blocks), so each output is computed
//   by exactly one thread with the same instructions whatever the thread count.
// - matvec: output n uses two batch accumulators over alternating batches of k, summed, reduced
//   horizontally (xsimd::hadd), then the K % lanes tail added left to right. A row gets the same
//   arithmetic whether it is processed in a group or alone.
// - GEMM: output (m, n) is one FMA chain over k = 0, 1, ..., K-1 in order (the tile is stored and
//   reloaded between kKc blocks, which does not change the chain).
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <new>
#include <type_traits>
#include <vector>

#include "lav2/core/thread_pool.hpp"
#include "lav2/kernels/simd/convert.hpp"
#include "lav2/tensor/dtype.hpp"

namespace lav2::kernels::simd {

namespace detail {

/// Below this many activation rows, matmul runs the matvec path once per row.
inline constexpr std::int64_t kGemmMinRows = 4;

/// GEMM blocking for one arch. The micro-tile is kNr weight rows (outputs n) x kMb batches of
/// activation rows (m): kNr * kMb accumulators + kMb activation loads + 1 broadcast registers.
/// AVX-512 (32 registers): 14 x 2 = 28 + 2 + 1 = 31; AVX2 and narrower (16): 6 x 2 = 12 + 3 = 15.
/// Either way >= 12 independent FMA chains cover FMA latency x throughput (4 x 2 on Zen 4/5, Intel).
/// Per k the tile does kNr * kMb FMAs for kMb vector loads and kNr broadcast loads.
template <class Arch>
struct GemmShape {
  static constexpr std::int64_t kLanes = fbatch<Arch>::size;
  static constexpr std::int64_t kNr = kLanes >= 16 ? 14 : 6;  // weight rows per micro-tile
  static constexpr std::int64_t kMb = 2;                      // activation batches per micro-tile
  static constexpr std::int64_t kMc = kMb * kLanes;           // activation rows per packed panel
  // Inputs per block: a panel block of x (kKc x kMc f32 = 32 KiB on AVX-512) stays in L1 while
  // the tile's weights (kNr x kKc f32 = 14 KiB) come from L1/L2.
  static constexpr std::int64_t kKc = 256;
  // Weight-row blocks per chunk: the chunk's widened weights (kChunk * kNr x kKc f32, 112 KiB)
  // and tile accumulators (kChunk * kNr x M) stay in L2 while x streams through once per chunk.
  static constexpr std::int64_t kChunk = 8;
  // Panels of x per inner block: kKc x kMcBlock * kMc f32 = 384 KiB of L2, reused by every
  // weight block of the chunk.
  static constexpr std::int64_t kPanelsPerBlock = 12;
};

/// How far ahead of its reads the matvec asks for each weight row, in bytes. The rows of a group
/// are kRows concurrent streams, each a few KiB: hardware prefetchers ramp up too late on each
/// and stop at every 4 KiB page, so a single thread would otherwise wait on DRAM latency.
#ifndef LAV2_MATVEC_PREFETCH
#define LAV2_MATVEC_PREFETCH 1024
#endif
inline constexpr std::int64_t kMatvecPrefetchBytes = LAV2_MATVEC_PREFETCH;

/// out[n] = sum_k x[k] * w[n*K + k] for kRows consecutive rows n starting at `w`.
/// Also prefetches kMatvecPrefetchBytes ahead in every row; near the end of the rows the hint
/// runs on into the next group's rows (prefetches never fault, past the matrix they are wasted).
template <class Arch, int kRows, class W>
inline void matvec_rows(float* out, const float* x, const W* w, std::int64_t K) {
  using B = fbatch<Arch>;
  constexpr std::int64_t kLanes = B::size;
  constexpr std::int64_t kAhead = kMatvecPrefetchBytes / std::int64_t(sizeof(W));
  // Cache lines of each row consumed per step of 2 batches: 1 for 16-bit weights on AVX-512.
  constexpr std::int64_t kLinesPerStep = std::max<std::int64_t>(1, 2 * kLanes * std::int64_t(sizeof(W)) / 64);
  B acc0[kRows], acc1[kRows];
  for (int r = 0; r < kRows; ++r) acc0[r] = acc1[r] = B(0.0f);
  const char* pf = reinterpret_cast<const char*>(w);
  std::int64_t k = 0;
  for (; k + 2 * kLanes <= K; k += 2 * kLanes) {
    const B x0 = B::load_unaligned(x + k), x1 = B::load_unaligned(x + k + kLanes);
    // Element k + kAhead of row r, or (past the end of the row) of row r + kRows.
    const std::int64_t ahead = k + kAhead < K ? k + kAhead : k + kAhead - K + (kRows - 1) * K;
    for (int r = 0; r < kRows; ++r) {
      if constexpr (kAhead > 0)
        for (std::int64_t line = 0; line < kLinesPerStep; ++line)
          __builtin_prefetch(pf + (r * K + ahead) * std::int64_t(sizeof(W)) + 64 * line, 0, 3);
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
    for (std::int64_t t = k; t < K; ++t) sum += x[t] * to_f32(w[r * K + t]);
    out[r] = sum;
  }
}

/// out[n] for n in [n_begin, n_end): rows of w dotted with x (K).
template <class Arch, class W>
inline void matvec_range(float* out, const float* x, const W* w, std::int64_t K, std::int64_t n_begin,
                         std::int64_t n_end) {
  // Rows per group: 2 accumulators each must fit the register file with room for x (AVX-512 has
  // 32 registers, AVX2 16). Eight concurrent row streams also read DRAM faster than four here.
  constexpr int kGroup = fbatch<Arch>::size >= 16 ? 8 : 4;
  std::int64_t n = n_begin;
  for (; n + kGroup <= n_end; n += kGroup) matvec_rows<Arch, kGroup>(out + n, x, w + n * K, K);
  for (; n < n_end; ++n) matvec_rows<Arch, 1>(out + n, x, w + n * K, K);
}

/// Packs x (M, K) transposed into panels of kMc activation rows: panel p holds
/// xt[k][j] = x[p*kMc + j][k] at p*K*kMc + k*kMc + j, zero for rows >= M. Threads split panels.
template <class Arch>
inline void pack_x_transposed(ThreadPool& pool, float* xt, const float* x, std::int64_t M, std::int64_t K) {
  constexpr std::int64_t kMc = GemmShape<Arch>::kMc;
  const std::int64_t panels = (M + kMc - 1) / kMc;
  pool.parallel_for(panels * kMc, [&](std::int64_t r0, std::int64_t r1) {
    for (std::int64_t r = r0; r < r1; ++r) {
      float* dst = xt + (r / kMc) * K * kMc + r % kMc;
      if (r < M) {
        const float* src = x + r * K;
        for (std::int64_t k = 0; k < K; ++k) dst[k * kMc] = src[k];
      } else {
        for (std::int64_t k = 0; k < K; ++k) dst[k * kMc] = 0.0f;
      }
    }
  }, 8);
}

/// acc[r][j] (kNr weight rows x kMbUsed batches of activation rows, row stride kMc) =
/// (accumulate ? acc : 0) + sum over k < kc of w[r][k] * xt[k][j]. `w` is a widened block
/// [kNr][kKc] (the compile-time row stride keeps every broadcast a constant offset from one
/// pointer), `xt` a packed panel [kc][kMc]. kMbUsed = 1 serves a last panel of <= kLanes rows.
template <class Arch, int kMbUsed>
inline void micro_kernel(std::int64_t kc, const float* w, const float* xt, float* acc, bool accumulate) {
  using B = fbatch<Arch>;
  using S = GemmShape<Arch>;
  constexpr std::int64_t kLanes = S::kLanes, kMc = S::kMc, kNr = S::kNr, kKc = S::kKc;
  B c[kNr][kMbUsed];
  for (int r = 0; r < kNr; ++r)
    for (int b = 0; b < kMbUsed; ++b) c[r][b] = accumulate ? B::load_aligned(acc + r * kMc + b * kLanes) : B(0.0f);
  for (std::int64_t k = 0; k < kc; ++k) {
    B xv[kMbUsed];
    for (int b = 0; b < kMbUsed; ++b) xv[b] = B::load_aligned(xt + k * kMc + b * kLanes);
    for (int r = 0; r < kNr; ++r) {
      const B wr(w[r * kKc + k]);
      for (int b = 0; b < kMbUsed; ++b) c[r][b] = xsimd::fma(wr, xv[b], c[r][b]);
    }
  }
  for (int r = 0; r < kNr; ++r)
    for (int b = 0; b < kMbUsed; ++b) c[r][b].store_aligned(acc + r * kMc + b * kLanes);
}

/// 64-byte aligned, uninitialised scratch of floats, owned per call.
class AlignedBuffer {
 public:
  explicit AlignedBuffer(std::int64_t n)
      : data_(static_cast<float*>(::operator new(std::size_t(std::max<std::int64_t>(n, 1)) * sizeof(float),
                                                 std::align_val_t(64)))) {}
  float* get() { return data_.get(); }

 private:
  struct Free {
    void operator()(float* p) const { ::operator delete(p, std::align_val_t(64)); }
  };
  std::unique_ptr<float, Free> data_;
};

/// Hints rows [n_begin, n_end) of w, inputs [k_begin, k_end), into cache: the next block the
/// GEMM will widen. Each row's block is a short run inside its own page, which hardware
/// prefetchers ramp up on too late (and never across a 4 KiB page).
template <class W>
inline void prefetch_rows(const W* w, std::int64_t K, std::int64_t n_begin, std::int64_t n_end, std::int64_t k_begin,
                          std::int64_t k_end) {
  constexpr std::int64_t kPerLine = 64 / std::int64_t(sizeof(W));
  for (std::int64_t n = n_begin; n < n_end; ++n)
    for (std::int64_t k = k_begin; k < k_end; k += kPerLine) __builtin_prefetch(w + n * K + k, 0, 3);
}

/// The GEMM path. Per thread, over its own contiguous range of kNr-row weight blocks, from the
/// outside in:
///   chunk of kChunk weight blocks -> kKc inputs (widen the chunk's weights to f32, prefetch the
///   next block) -> kPanelsPerBlock panels of x -> weight block -> panel -> micro-kernel.
/// x is packed once per call, transposed, into kMc-wide panels. Tile accumulators live in a
/// per-thread buffer across k blocks and go to `out` (transposed) when the chunk is done.
template <class Arch, class W>
void gemm(ThreadPool& pool, float* out, const float* x, const W* w, std::int64_t M, std::int64_t N,
          std::int64_t K) {
  using S = GemmShape<Arch>;
  constexpr std::int64_t kNr = S::kNr, kKc = S::kKc, kMc = S::kMc, kLanes = S::kLanes;
  const std::int64_t m_panels = (M + kMc - 1) / kMc, n_blocks = (N + kNr - 1) / kNr;
  AlignedBuffer xt_buf(m_panels * kMc * K);
  float* xt = xt_buf.get();
  pack_x_transposed<Arch>(pool, xt, x, M, K);
  pool.parallel_for(
      n_blocks,
      [&](std::int64_t j_begin, std::int64_t j_end) {
        const std::int64_t chunk = std::min(S::kChunk, j_end - j_begin);
        AlignedBuffer acc_buf(chunk * m_panels * kNr * kMc), wide_buf(chunk * kNr * kKc);
        float* acc = acc_buf.get();
        float* wide = wide_buf.get();
        for (std::int64_t j0 = j_begin; j0 < j_end; j0 += S::kChunk) {
          const std::int64_t j1 = std::min(j0 + S::kChunk, j_end);
          const std::int64_t n_lo = j0 * kNr, n_hi = std::min(j1 * kNr, N);
          for (std::int64_t pc = 0; pc < K; pc += kKc) {
            const std::int64_t kc = std::min(kKc, K - pc);
            // Widen (or copy) this chunk's weights [n_lo, n_hi) x [pc, pc + kc) into
            // wide[row][kKc]; rows past N repeat row N-1: computed, never written.
            for (std::int64_t row = 0; row < (j1 - j0) * kNr; ++row) {
              const W* src = w + std::min(n_lo + row, N - 1) * K + pc;
              float* dst = wide + row * kKc;
              std::int64_t k = 0;
              for (; k + kLanes <= kc; k += kLanes) load_as_f32<Arch>(src + k).store_aligned(dst + k);
              for (; k < kc; ++k) dst[k] = to_f32(src[k]);
            }
            if (pc + kKc < K) {
              prefetch_rows(w, K, n_lo, n_hi, pc + kKc, std::min(pc + 2 * kKc, K));
            } else if (j1 < j_end) {
              prefetch_rows(w, K, j1 * kNr, std::min(std::min(j1 + S::kChunk, j_end) * kNr, N), 0, std::min(kKc, K));
            }
            for (std::int64_t p0 = 0; p0 < m_panels; p0 += S::kPanelsPerBlock) {
              const std::int64_t p1 = std::min(p0 + S::kPanelsPerBlock, m_panels);
              for (std::int64_t j = j0; j < j1; ++j) {
                const float* wb = wide + (j - j0) * kNr * kKc;
                for (std::int64_t p = p0; p < p1; ++p) {
                  float* tile = acc + ((j - j0) * m_panels + p) * kNr * kMc;
                  const float* xp = xt + p * K * kMc + pc * kMc;
                  if (M - p * kMc > kLanes) micro_kernel<Arch, 2>(kc, wb, xp, tile, pc > 0);
                  else micro_kernel<Arch, 1>(kc, wb, xp, tile, pc > 0);
                }
              }
            }
          }
          // acc[j][p][r][jj] is out[p*kMc + jj][j*kNr + r].
          for (std::int64_t j = j0; j < j1; ++j) {
            const std::int64_t n0 = j * kNr, n_valid = std::min(kNr, N - n0);
            for (std::int64_t p = 0; p < m_panels; ++p) {
              const float* tile = acc + ((j - j0) * m_panels + p) * kNr * kMc;
              for (std::int64_t jj = 0; jj < kMc && p * kMc + jj < M; ++jj) {
                float* dst = out + (p * kMc + jj) * N + n0;
                for (std::int64_t r = 0; r < n_valid; ++r) dst[r] = tile[r * kMc + jj];
              }
            }
          }
        }
      },
      1);
}

}  // namespace detail

/// \brief out[M, N] = x[M, K] · w[N, K]^T (see the file comment for paths and order).
struct matmul_fn {
  template <class Arch, class W>
  void operator()(Arch, ThreadPool& pool, float* out, const float* x, const W* w, std::int64_t M, std::int64_t N,
                  std::int64_t K) const {
    if (M <= 0 || N <= 0) return;
    if (M >= detail::kGemmMinRows && K > 0) {
      detail::gemm<Arch>(pool, out, x, w, M, N, K);
      return;
    }
    pool.parallel_for(
        N,
        [&](std::int64_t n_begin, std::int64_t n_end) {
          for (std::int64_t m = 0; m < M; ++m) detail::matvec_range<Arch>(out + m * N, x + m * K, w, K, n_begin, n_end);
        },
        /*min_chunk=*/16);
  }
};

}  // namespace lav2::kernels::simd
