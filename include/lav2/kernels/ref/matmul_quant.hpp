// Scalar reference matrix products over q8_0 / q4_0 weights (tensor/quant.hpp): the
// specification of the quantised matmul kernels.
//
// Two paths, as in the SIMD kernels:
// - M < kQuantGemmMinRows (decode): each activation row is quantised to q8_0 blocks
//   (quantize_row_q8_0), and each output is ggml's integer dot product
//       out[m, n] = sum_b float(sum_j qw[b, j] * qx[b, j]) * (d_w[b] * d_x[b])
//   with the block sums exact in int32 and accumulated in float over b = 0, 1, ... in order
//   (ggml_vec_dot_q8_0_q8_0 / _q4_0_q8_0).
// - M >= kQuantGemmMinRows (prefill): the weights are dequantised exactly (d * q fits an f32) and
//   multiplied with the f32 activations as ref::matmul does (double sums). Prefill is thus more
//   accurate than decode; the difference is the rounding of the activations to 8 bits.
#pragma once

#include <cstdint>
#include <vector>

#include "lav2/core/thread_pool.hpp"
#include "lav2/kernels/epilogue.hpp"
#include "lav2/tensor/quant.hpp"

namespace lav2::kernels {
/// Activation rows from which the quantised matmul takes the prefill path.
inline constexpr std::int64_t kQuantGemmMinRows = 4;
}  // namespace lav2::kernels

namespace lav2::kernels::ref {

/// \brief ggml's q8_0 x q8_0 dot product of `nb` blocks.
inline float quant_dot(const BlockQ8_0* w, const BlockQ8_0* x, std::int64_t nb) {
  float sum = 0.0f;
  for (std::int64_t b = 0; b < nb; ++b) {
    std::int32_t s = 0;
    for (int j = 0; j < kQuantBlock; ++j) s += std::int32_t(w[b].q[j]) * std::int32_t(x[b].q[j]);
    sum += float(s) * (f16_to_f32(w[b].d) * f16_to_f32(x[b].d));
  }
  return sum;
}

/// \brief ggml's q4_0 x q8_0 dot product of `nb` blocks.
inline float quant_dot(const BlockQ4_0* w, const BlockQ8_0* x, std::int64_t nb) {
  float sum = 0.0f;
  for (std::int64_t b = 0; b < nb; ++b) {
    std::int32_t s = 0;
    for (int j = 0; j < kQuantBlock / 2; ++j) {
      s += ((w[b].qs[j] & 15) - 8) * std::int32_t(x[b].q[j]);
      s += ((w[b].qs[j] >> 4) - 8) * std::int32_t(x[b].q[j + kQuantBlock / 2]);
    }
    sum += float(s) * (f16_to_f32(w[b].d) * f16_to_f32(x[b].d));
  }
  return sum;
}

/// \brief out (M, N) = x (M, K) · w^T for w (N, K) of q8_0 or q4_0 blocks (K a multiple of 32);
/// the two paths of the file comment, then `ep`. Rows of w are K/32 blocks apart.
template <class Block>
void matmul_quant(ThreadPool& pool, float* out, const float* x, const Block* w, std::int64_t M, std::int64_t N,
                  std::int64_t K, Epilogue ep = {}) {
  const std::int64_t nb = K / kQuantBlock;
  if (M < kQuantGemmMinRows) {
    std::vector<BlockQ8_0> xq(std::size_t(M * nb));
    for (std::int64_t m = 0; m < M; ++m) quantize_row_q8_0(x + m * K, xq.data() + m * nb, K);
    pool.parallel_for(
        N,
        [&](std::int64_t n_begin, std::int64_t n_end) {
          for (std::int64_t m = 0; m < M; ++m)
            for (std::int64_t n = n_begin; n < n_end; ++n)
              out[m * N + n] = ep.apply(quant_dot(w + n * nb, xq.data() + m * nb, nb), n, out[m * N + n]);
        },
        /*min_chunk=*/16);
    return;
  }
  pool.parallel_for(
      N,
      [&](std::int64_t n_begin, std::int64_t n_end) {
        std::vector<float> row(static_cast<std::size_t>(K));
        for (std::int64_t n = n_begin; n < n_end; ++n) {
          dequantize_row(w + n * nb, row.data(), K);
          for (std::int64_t m = 0; m < M; ++m) {
            double sum = 0.0;
            for (std::int64_t k = 0; k < K; ++k) sum += double(x[m * K + k]) * double(row[std::size_t(k)]);
            out[m * N + n] = ep.apply(float(sum), n, out[m * N + n]);
          }
        }
      },
      /*min_chunk=*/16);
}

}  // namespace lav2::kernels::ref
