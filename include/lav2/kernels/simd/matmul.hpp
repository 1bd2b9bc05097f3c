// SIMD matrix products out[M, N] = x[M, K] · w[N, K]^T for f32, f16 and bf16 weights.
//
// Two paths:
// - matvec (M < kGemmMinRows): memory-bound, so it streams each weight row once per activation
//   row, widening 16-bit weights in registers (F16C / AVX-512 / shifts; see convert.hpp) and
//   accumulating into f32 batches. Groups of 4 (AVX2) or 8 (AVX-512) weight rows share each
//   load of x.
// - GEMM (M >= kGemmMinRows): compute-bound, register-blocked. x is packed once, transposed,
//   into panels of 2 batches of activation rows; the micro-kernel holds a tile of 6 outputs n x
//   2 batches of rows m in 12 batch registers and, per k, broadcasts one weight of each of the 6
//   rows (read in place for f32; widened into an L1 block for f16/bf16) into 12 FMAs.
//   Not copying the weights matters: at M = 64 repacking 4096 x 4096 f32 weights costs as much as
//   a third of the multiply.
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
#include <type_traits>
#include <vector>

#include "lav2/core/thread_pool.hpp"
#include "lav2/kernels/simd/convert.hpp"
#include "lav2/tensor/dtype.hpp"

namespace lav2::kernels::simd {

namespace detail {

/// Below this many activation rows, matmul runs the matvec path once per row.
inline constexpr std::int64_t kGemmMinRows = 4;

/// GEMM blocking for one arch. The micro-tile is kNr weight rows x kMc activation rows:
/// 2 * kNr accumulator batches + 2 activation loads + 1 broadcast = 15 registers, which fits the
/// 16 of AVX2 (and leaves room on AVX-512); 12 independent FMA chains cover FMA latency.
template <class Arch>
struct GemmShape {
  static constexpr std::int64_t kLanes = fbatch<Arch>::size;
  static constexpr std::int64_t kNr = 6;           // weight rows (outputs n) per micro-tile
  static constexpr std::int64_t kMc = 2 * kLanes;  // activation rows (m) per micro-tile
  static constexpr std::int64_t kKc = 512;         // inputs per block: kNr rows of w = 12 KiB (L1)
};

/// out[n] = sum_k x[k] * w[n*K + k] for kRows consecutive rows n starting at `w`.
template <class Arch, int kRows, class W>
inline void matvec_rows(float* out, const float* x, const W* w, std::int64_t K) {
  using B = fbatch<Arch>;
  constexpr std::int64_t kLanes = B::size;
  B acc0[kRows], acc1[kRows];
  for (int r = 0; r < kRows; ++r) acc0[r] = acc1[r] = B(0.0f);
  std::int64_t k = 0;
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

/// acc[r][j] (kNr weight rows x kMc activation rows, row stride kMc) = (accumulate ? acc : 0)
/// + sum over k < kc of w[r][k] * xt[k][j]. `w` are kNr row pointers (f32, unpacked: each
/// element is broadcast straight from its row), `xt` a packed panel [kc][kMc].
template <class Arch>
inline void micro_kernel(std::int64_t kc, const float* const* w, const float* xt, float* acc, bool accumulate) {
  using B = fbatch<Arch>;
  constexpr std::int64_t kLanes = B::size, kMc = GemmShape<Arch>::kMc, kNr = GemmShape<Arch>::kNr;
  B c[kNr][2];
  for (int r = 0; r < kNr; ++r) {
    if (accumulate) {
      c[r][0] = B::load_aligned(acc + r * kMc);
      c[r][1] = B::load_aligned(acc + r * kMc + kLanes);
    } else {
      c[r][0] = c[r][1] = B(0.0f);
    }
  }
  const float* w0 = w[0];
  const float* w1 = w[1];
  const float* w2 = w[2];
  const float* w3 = w[3];
  const float* w4 = w[4];
  const float* w5 = w[5];
  for (std::int64_t k = 0; k < kc; ++k) {
    const B x0 = B::load_aligned(xt + k * kMc), x1 = B::load_aligned(xt + k * kMc + kLanes);
    const float wk[kNr] = {w0[k], w1[k], w2[k], w3[k], w4[k], w5[k]};
    for (int r = 0; r < kNr; ++r) {
      const B wr(wk[r]);
      c[r][0] = xsimd::fma(wr, x0, c[r][0]);
      c[r][1] = xsimd::fma(wr, x1, c[r][1]);
    }
  }
  for (int r = 0; r < kNr; ++r) {
    c[r][0].store_aligned(acc + r * kMc);
    c[r][1].store_aligned(acc + r * kMc + kLanes);
  }
}

/// 64-byte aligned scratch of floats, owned per call (std::vector does not guarantee alignment).
class AlignedBuffer {
 public:
  explicit AlignedBuffer(std::int64_t n) : data_(std::size_t(n + 16)) {}
  float* get() {
    auto p = reinterpret_cast<std::uintptr_t>(data_.data());
    return data_.data() + ((64 - p % 64) % 64) / sizeof(float);
  }

 private:
  std::vector<float> data_;
};

/// The GEMM path. Blocking, from the outside in (per thread, over its own weight rows):
///   kNr weight rows (n) -> kKc inputs (k) -> kMc activation rows (m) -> micro-kernel.
/// f32 weights are broadcast straight from w, so the big operand is never copied; 16-bit weights
/// are first widened (contiguous SIMD conversion) into a kNr x kKc f32 block that stays in L1.
/// x is packed once, transposed, into kMc-wide panels that stay in L2 across weight rows.
/// Tile accumulators live in a small per-thread buffer and go to `out` (transposed) at the end.
template <class Arch, class W>
void gemm(ThreadPool& pool, float* out, const float* x, const W* w, std::int64_t M, std::int64_t N,
          std::int64_t K) {
  using Shape = GemmShape<Arch>;
  constexpr std::int64_t kNr = Shape::kNr, kKc = Shape::kKc, kMc = Shape::kMc, kLanes = Shape::kLanes;
  const std::int64_t m_panels = (M + kMc - 1) / kMc, n_blocks = (N + kNr - 1) / kNr;
  AlignedBuffer xt_buf(m_panels * kMc * K);
  float* xt = xt_buf.get();
  pack_x_transposed<Arch>(pool, xt, x, M, K);
  pool.parallel_for(
      n_blocks,
      [&](std::int64_t j_begin, std::int64_t j_end) {
        AlignedBuffer acc_buf(m_panels * kNr * kMc), wide_buf(std::is_same_v<W, float> ? 0 : kNr * kKc);
        float* acc = acc_buf.get();
        float* wide = wide_buf.get();
        for (std::int64_t j = j_begin; j < j_end; ++j) {
          const std::int64_t n0 = j * kNr, n_valid = std::min(kNr, N - n0);
          for (std::int64_t pc = 0; pc < K; pc += kKc) {
            const std::int64_t kc = std::min(kKc, K - pc);
            // Rows past N repeat the last row: computed, never written.
            const float* rows[kNr];
            for (std::int64_t r = 0; r < kNr; ++r) {
              const W* src = w + (n0 + std::min(r, n_valid - 1)) * K + pc;
              if constexpr (std::is_same_v<W, float>) {
                rows[r] = src;
              } else {
                float* dst = wide + r * kKc;
                std::int64_t k = 0;
                for (; k + kLanes <= kc; k += kLanes) load_as_f32<Arch>(src + k).store_aligned(dst + k);
                for (; k < kc; ++k) dst[k] = to_f32(src[k]);
                rows[r] = dst;
              }
            }
            for (std::int64_t p = 0; p < m_panels; ++p)
              micro_kernel<Arch>(kc, rows, xt + p * K * kMc + pc * kMc, acc + p * kNr * kMc, pc > 0);
          }
          // acc[p][r][j] is out[p*kMc + j][n0 + r].
          for (std::int64_t p = 0; p < m_panels; ++p)
            for (std::int64_t r = 0; r < n_valid; ++r)
              for (std::int64_t jj = 0; jj < kMc && p * kMc + jj < M; ++jj)
                out[(p * kMc + jj) * N + n0 + r] = acc[(p * kNr + r) * kMc + jj];
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
