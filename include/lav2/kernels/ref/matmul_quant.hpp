// Scalar reference matrix products over q8_0 / q4_0 / q4_K / q6_K weights (tensor/quant.hpp,
// tensor/quant_k.hpp), and q4_0 repacked by eight rows (q4_0_x8, tensor/quant_x8.hpp: the same
// rows, the same arithmetic): the specification of the quantised matmul kernels.
//
// Two paths, as in the SIMD kernels:
// - M < kQuantGemmMinRows (decode): each activation row is quantised to ggml's vec_dot_type
//   (quant_activation_t: q8_0 blocks of 32 for q8_0 / q4_0, q8_K blocks of 256 for the K-quants),
//   and each output is ggml's integer dot product, block sums exact in int32 and accumulated in
//   float over b = 0, 1, ... in order:
//     q8_0, q4_0 (ggml_vec_dot_q8_0_q8_0 / _q4_0_q8_0):
//       out[m, n] = sum_b float(sum_j qw[b, j] * qx[b, j]) * (d_w[b] * d_x[b])
//     q4_K (ggml_vec_dot_q4_K_q8_K), sub-blocks s of 32 with scale sc[s], min mn[s]:
//       out = sum_b (d_w * d_x) * float(sum_s sc[s] * sum_j q[j] qx[j])
//                 - (dmin_w * d_x) * float(sum_s mn[s] * (bsums[2s] + bsums[2s + 1]))
//     q6_K (ggml_vec_dot_q6_K_q8_K), sub-blocks s of 16 with int8 scale sc[s]:
//       out = sum_b (d_w * d_x) * float(sum_s sc[s] * sum_j (q[j] - 32) qx[j])
//   The K-quant block sums reach ~2^25, past f32's exact integers: their conversion rounds (ggml's
//   vector code splits them over 8 lanes first, so it rounds differently; both are within the
//   tests' bounds).
// - M >= kQuantGemmMinRows (prefill): the weights are dequantised exactly (d * q fits an f32) and
//   multiplied with the f32 activations as ref::matmul does (double sums). Prefill is thus more
//   accurate than decode; the difference is the rounding of the activations to 8 bits.
#pragma once

#include <cstdint>
#include <vector>

#include "lav2/core/thread_pool.hpp"
#include "lav2/kernels/epilogue.hpp"
#include "lav2/tensor/quant.hpp"
#include "lav2/tensor/quant_x8.hpp"

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

/// \brief ggml's q4_K x q8_K dot product of `nb` super-blocks.
inline float quant_dot(const BlockQ4_K* w, const BlockQ8_K* x, std::int64_t nb) {
  float sum = 0.0f;
  std::uint8_t sc[8], mn[8], q[kQuantBlockK];
  for (std::int64_t b = 0; b < nb; ++b) {
    unpack_scales_min_q4_k(w[b].scales, sc, mn);
    unpack_codes_q4_k(w[b], q);
    std::int32_t dots = 0, mins = 0;
    for (int s = 0; s < 8; ++s) {
      std::int32_t d = 0;
      for (int j = 32 * s; j < 32 * s + 32; ++j) d += std::int32_t(q[j]) * std::int32_t(x[b].qs[j]);
      dots += std::int32_t(sc[s]) * d;
      mins += std::int32_t(mn[s]) * (std::int32_t(x[b].bsums[2 * s]) + std::int32_t(x[b].bsums[2 * s + 1]));
    }
    sum += (f16_to_f32(w[b].d) * x[b].d) * float(dots);
    sum -= (f16_to_f32(w[b].dmin) * x[b].d) * float(mins);
  }
  return sum;
}

/// \brief ggml's q6_K x q8_K dot product of `nb` super-blocks.
inline float quant_dot(const BlockQ6_K* w, const BlockQ8_K* x, std::int64_t nb) {
  float sum = 0.0f;
  std::int8_t q[kQuantBlockK];
  for (std::int64_t b = 0; b < nb; ++b) {
    unpack_codes_q6_k(w[b], q);
    std::int32_t dots = 0;
    for (int s = 0; s < 16; ++s) {
      std::int32_t d = 0;
      for (int j = 16 * s; j < 16 * s + 16; ++j) d += std::int32_t(q[j]) * std::int32_t(x[b].qs[j]);
      dots += std::int32_t(w[b].scales[s]) * d;
    }
    sum += (f16_to_f32(w[b].d) * x[b].d) * float(dots);
  }
  return sum;
}

/// Row n's dot with xq, and row n dequantised, for row-major blocks and for q4_0_x8 groups.
template <class Block>
inline float row_dot(const Block* w, std::int64_t nb, std::int64_t n, const quant_activation_t<Block>* xq) {
  return quant_dot(w + n * nb, xq, nb);
}
inline float row_dot(const BlockQ4_0x8* w, std::int64_t nb, std::int64_t n, const BlockQ8_0* xq) {
  const BlockQ4_0x8* g = w + (n / kX8Rows) * nb;
  float sum = 0.0f;  // quant_dot(BlockQ4_0)'s sum, block by block
  for (std::int64_t b = 0; b < nb; ++b) {
    const BlockQ4_0 blk = x8_block(g[b], int(n % kX8Rows));
    sum += quant_dot(&blk, xq + b, 1);
  }
  return sum;
}
template <class Block>
inline void row_dequantize(const Block* w, std::int64_t nb, std::int64_t n, float* out, std::int64_t K) {
  dequantize_row(w + n * nb, out, K);
}
inline void row_dequantize(const BlockQ4_0x8* w, std::int64_t nb, std::int64_t n, float* out, std::int64_t K) {
  dequantize_x8_lane(w + (n / kX8Rows) * nb, int(n % kX8Rows), out, K);
}

/// \brief out (M, N) = x (M, K) · w^T for w (N, K) of q8_0 / q4_0 blocks (K a multiple of 32) or
/// q4_K / q6_K super-blocks (K a multiple of 256); the two paths of the file comment, then `ep`.
/// Rows of w are K / quant_block_values_v<Block> blocks apart.
template <class Block>
void matmul_quant(ThreadPool& pool, float* out, const float* x, const Block* w, std::int64_t M, std::int64_t N,
                  std::int64_t K, Epilogue ep = {}) {
  using Act = quant_activation_t<Block>;
  const std::int64_t nb = K / quant_block_values_v<Block>;
  if (M < kQuantGemmMinRows) {
    std::vector<Act> xq(std::size_t(M * nb));
    for (std::int64_t m = 0; m < M; ++m) quantize_row(x + m * K, xq.data() + m * nb, K);
    pool.parallel_for(
        N,
        [&](std::int64_t n_begin, std::int64_t n_end) {
          for (std::int64_t m = 0; m < M; ++m)
            for (std::int64_t n = n_begin; n < n_end; ++n)
              out[m * N + n] = ep.apply(row_dot(w, nb, n, xq.data() + m * nb), n, out[m * N + n]);
        },
        /*min_chunk=*/16);
    return;
  }
  pool.parallel_for(
      N,
      [&](std::int64_t n_begin, std::int64_t n_end) {
        std::vector<float> row(static_cast<std::size_t>(K));
        for (std::int64_t n = n_begin; n < n_end; ++n) {
          row_dequantize(w, nb, n, row.data(), K);
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
