// SIMD matrix products out[M, N] = x[M, K] · w[N, K]^T for f32, f16 and bf16 weights.
//
// Two paths:
// - matvec (M < kGemmMinRows): memory-bound, so it streams each weight row once per activation
//   row, widening 16-bit weights in registers (F16C / AVX-512 / shifts; see convert.hpp) and
//   accumulating into f32 batches. Four weight rows share each load of x.
// - GEMM (M >= kGemmMinRows): compute-bound, BLIS-style. x is packed once into MR-row panels
//   ([k][MR] per panel); for every block of NR output features and KC inputs the weights are
//   widened to f32 and packed into an L1-resident panel ([k][NR]); a register-blocked micro-kernel
//   keeps an MR x NR tile of out in 2*MR batch registers and does 2*MR FMAs per k.
//
// Determinism and accumulation order (the contract in dispatch.hpp):
// - Work is split over N only (parallel_for over rows / NR blocks), so each output is computed
//   by exactly one thread with the same instructions whatever the thread count.
// - matvec: output n uses two batch accumulators over alternating batches of k, summed, reduced
//   horizontally (xsimd::hadd), then the K % lanes tail added left to right. A row gets the same
//   arithmetic whether it is processed in a group of four or alone.
// - GEMM: output (m, n) is one FMA chain over k = 0, 1, ..., K-1 in order (the tile is stored and
//   reloaded between KC blocks, which does not change the chain).
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "lav2/core/thread_pool.hpp"
#include "lav2/kernels/simd/convert.hpp"
#include "lav2/tensor/dtype.hpp"

namespace lav2::kernels::simd {

namespace detail {

/// Below this many activation rows, matmul runs the matvec path once per row.
inline constexpr std::int64_t kGemmMinRows = 4;

/// Rows of out held by the micro-kernel (2 * kMr accumulators + 2 panel loads + 1 broadcast fit
/// the 16 registers of AVX2 and leave room on AVX-512).
inline constexpr std::int64_t kMr = 6;

template <class Arch>
struct GemmShape {
  static constexpr std::int64_t kLanes = fbatch<Arch>::size;
  static constexpr std::int64_t kNr = 2 * kLanes;  // columns of out per micro-tile
  static constexpr std::int64_t kKc = 4096 / kNr;  // packed weight panel = kKc * kNr floats = 16 KiB
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
  std::int64_t n = n_begin;
  for (; n + 4 <= n_end; n += 4) matvec_rows<Arch, 4>(out + n, x, w + n * K, K);
  for (; n < n_end; ++n) matvec_rows<Arch, 1>(out + n, x, w + n * K, K);
}

/// Packs rows [m0, m0 + kMr) x cols [k0, k0 + kc) of x (M, K) as [k][kMr], zero-padding m >= M.
inline void pack_x_panel(float* dst, const float* x, std::int64_t M, std::int64_t K, std::int64_t m0,
                         std::int64_t k0, std::int64_t kc) {
  for (std::int64_t r = 0; r < kMr; ++r) {
    const std::int64_t m = m0 + r;
    if (m < M) {
      const float* src = x + m * K + k0;
      for (std::int64_t k = 0; k < kc; ++k) dst[k * kMr + r] = src[k];
    } else {
      for (std::int64_t k = 0; k < kc; ++k) dst[k * kMr + r] = 0.0f;
    }
  }
}

/// Packs weight rows [n0, n0 + kNr) x cols [k0, k0 + kc) as f32 [k][kNr], zero-padding n >= N.
/// Each row is widened with batch loads into `row` (kc floats) and then scattered.
template <class Arch, class W>
inline void pack_w_panel(float* dst, float* row, const W* w, std::int64_t N, std::int64_t K, std::int64_t n0,
                         std::int64_t k0, std::int64_t kc) {
  constexpr std::int64_t kNr = GemmShape<Arch>::kNr, kLanes = GemmShape<Arch>::kLanes;
  for (std::int64_t c = 0; c < kNr; ++c) {
    const std::int64_t n = n0 + c;
    if (n >= N) {
      for (std::int64_t k = 0; k < kc; ++k) dst[k * kNr + c] = 0.0f;
      continue;
    }
    const W* src = w + n * K + k0;
    std::int64_t k = 0;
    for (; k + kLanes <= kc; k += kLanes) load_as_f32<Arch>(src + k).store_unaligned(row + k);
    for (; k < kc; ++k) row[k] = to_f32(src[k]);
    for (k = 0; k < kc; ++k) dst[k * kNr + c] = row[k];
  }
}

/// c[kMr, kNr] (row stride ldc) = (accumulate ? c : 0) + a_panel · b_panel over kc.
/// a: [kc][kMr], b: [kc][kNr], both packed.
template <class Arch>
inline void micro_kernel(std::int64_t kc, const float* a, const float* b, float* c, std::int64_t ldc,
                         bool accumulate) {
  using B = fbatch<Arch>;
  constexpr std::int64_t kLanes = B::size, kNr = GemmShape<Arch>::kNr;
  B acc[kMr][2];
  for (int r = 0; r < kMr; ++r) {
    if (accumulate) {
      acc[r][0] = B::load_unaligned(c + r * ldc);
      acc[r][1] = B::load_unaligned(c + r * ldc + kLanes);
    } else {
      acc[r][0] = acc[r][1] = B(0.0f);
    }
  }
  for (std::int64_t k = 0; k < kc; ++k) {
    const B b0 = B::load_aligned(b + k * kNr), b1 = B::load_aligned(b + k * kNr + kLanes);
    for (int r = 0; r < kMr; ++r) {
      const B ar(a[k * kMr + r]);
      acc[r][0] = xsimd::fma(ar, b0, acc[r][0]);
      acc[r][1] = xsimd::fma(ar, b1, acc[r][1]);
    }
  }
  for (int r = 0; r < kMr; ++r) {
    acc[r][0].store_unaligned(c + r * ldc);
    acc[r][1].store_unaligned(c + r * ldc + kLanes);
  }
}

/// 64-byte aligned scratch of floats, owned per call (std::vector does not guarantee alignment).
class AlignedBuffer {
 public:
  explicit AlignedBuffer(std::int64_t n) : data_(n + 16) {}
  float* get() {
    auto p = reinterpret_cast<std::uintptr_t>(data_.data());
    return data_.data() + ((64 - p % 64) % 64) / sizeof(float);
  }

 private:
  std::vector<float> data_;
};

template <class Arch, class W>
void gemm(ThreadPool& pool, float* out, const float* x, const W* w, std::int64_t M, std::int64_t N,
          std::int64_t K) {
  using Shape = GemmShape<Arch>;
  constexpr std::int64_t kNr = Shape::kNr, kKc = Shape::kKc;
  const std::int64_t m_panels = (M + kMr - 1) / kMr, n_blocks = (N + kNr - 1) / kNr;
  const std::int64_t mp = m_panels * kMr;
  // x packed once for all threads: block pc (kc wide) starts at pc * mp; panel i at + i*kMr*kc.
  AlignedBuffer xpack_buf(mp * K);
  float* xpack = xpack_buf.get();
  pool.parallel_for(
      m_panels * ((K + kKc - 1) / kKc),
      [&](std::int64_t t0, std::int64_t t1) {
        for (std::int64_t t = t0; t < t1; ++t) {
          const std::int64_t i = t % m_panels, pc = (t / m_panels) * kKc, kc = std::min(kKc, K - pc);
          pack_x_panel(xpack + pc * mp + i * kMr * kc, x, M, K, i * kMr, pc, kc);
        }
      },
      8);
  pool.parallel_for(
      n_blocks,
      [&](std::int64_t j_begin, std::int64_t j_end) {
        AlignedBuffer wpack_buf(kKc * kNr + kKc), tile_buf(kMr * kNr);
        float* wpack = wpack_buf.get();
        float* row = wpack + kKc * kNr;
        float* tile = tile_buf.get();
        for (std::int64_t pc = 0; pc < K; pc += kKc) {
          const std::int64_t kc = std::min(kKc, K - pc);
          for (std::int64_t j = j_begin; j < j_end; ++j) {
            const std::int64_t n0 = j * kNr, n_valid = std::min(kNr, N - n0);
            pack_w_panel<Arch>(wpack, row, w, N, K, n0, pc, kc);
            for (std::int64_t i = 0; i < m_panels; ++i) {
              const std::int64_t m0 = i * kMr, m_valid = std::min(kMr, M - m0);
              const float* xp = xpack + pc * mp + i * kMr * kc;
              float* c = out + m0 * N + n0;
              if (m_valid == kMr && n_valid == kNr) {
                micro_kernel<Arch>(kc, xp, wpack, c, N, pc > 0);
                continue;
              }
              // Edge tile: run the full-size kernel on a copy, write back the valid part.
              for (std::int64_t r = 0; r < m_valid; ++r)
                for (std::int64_t q = 0; q < n_valid; ++q) tile[r * kNr + q] = pc > 0 ? c[r * N + q] : 0.0f;
              micro_kernel<Arch>(kc, xp, wpack, tile, kNr, pc > 0);
              for (std::int64_t r = 0; r < m_valid; ++r)
                for (std::int64_t q = 0; q < n_valid; ++q) c[r * N + q] = tile[r * kNr + q];
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
