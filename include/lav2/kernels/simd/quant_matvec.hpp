// The decode path of matmul over q8_0 / q4_0 weights: the activation row is quantised to q8_0
// blocks once (the scalar quantize_row_q8_0, so every level sees the same integers), and each
// output is the integer dot product of ggml (ref/matmul_quant.hpp):
//   out[n] = sum_b float(sum_j qw[b, j] * qx[b, j]) * (d_w[b] * d_x[b])
//
// AVX2 (and the AVX-512 unit, which has it): per block, |qw| (sign) times qx with qw's sign
// (maddubs: u8 x s8 -> pairs of s16, at most 2 * 127 * 128 < 2^15, so it never saturates), then
// madd against ones -> 8 int32 partial sums, exact; converted to float (exact below 2^24) and
// accumulated with one FMA by d_w * d_x into 8 float lanes, summed horizontally at the end. q4_0
// unpacks its nibbles to [low 16 | high 16] bytes minus 8 first. Elsewhere (SSE2) the scalar
// reference dot. Groups of four weight rows share each load of the activation block.
//
// Determinism: a row's arithmetic is the same alone or in a group and for any thread count (work
// is split over N only). The lanes split each block sum before it is scaled, so results differ
// from the reference's in float rounding only.
#pragma once

#include <algorithm>
#include <cstdint>

#include "lav2/core/thread_pool.hpp"
#include "lav2/kernels/epilogue.hpp"
#include "lav2/kernels/ref/matmul_quant.hpp"
#include "lav2/kernels/simd/arch.hpp"
#include "lav2/kernels/simd/gemm.hpp"
#include "lav2/tensor/quant.hpp"

namespace lav2::kernels::simd::detail {

struct QuantXTag {};

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
inline constexpr bool kIntegerDot = true;

/// The 32 weights of a block as signed bytes in activation order.
inline __m256i load_weights(const BlockQ8_0& b) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.q)); }
inline __m256i load_weights(const BlockQ4_0& b) {
  const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.qs));
  const __m128i low = _mm_and_si128(packed, _mm_set1_epi8(15));
  const __m128i high = _mm_and_si128(_mm_srli_epi16(packed, 4), _mm_set1_epi8(15));
  return _mm256_sub_epi8(_mm256_set_m128i(high, low), _mm256_set1_epi8(8));
}

/// 8 int32 partial sums of qw . qx over one block, as floats (exact).
inline __m256 block_dot(__m256i qw, __m256i qx) {
  const __m256i pairs = _mm256_maddubs_epi16(_mm256_sign_epi8(qw, qw), _mm256_sign_epi8(qx, qw));
  return _mm256_cvtepi32_ps(_mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
}

inline float hsum(__m256 v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_movehdup_ps(t)));
}

/// out[r] = dot(row r of w, x) for kRows rows `nb` blocks apart.
template <int kRows, class Block>
inline void quant_dot_rows(float* out, const Block* w, std::int64_t nb, const BlockQ8_0* x) {
  __m256 acc[kRows];
  for (int r = 0; r < kRows; ++r) acc[r] = _mm256_setzero_ps();
  for (std::int64_t b = 0; b < nb; ++b) {
    const __m256i qx = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[b].q));
    const float dx = _cvtsh_ss(x[b].d);
    for (int r = 0; r < kRows; ++r) {
      const Block& wb = w[r * nb + b];
      const __m256 scale = _mm256_set1_ps(_cvtsh_ss(wb.d) * dx);
      acc[r] = _mm256_fmadd_ps(scale, block_dot(load_weights(wb), qx), acc[r]);
    }
  }
  for (int r = 0; r < kRows; ++r) out[r] = hsum(acc[r]);
}
#else
inline constexpr bool kIntegerDot = false;
#endif

/// Outputs [n_begin, n_end) of one activation row: groups of 4 rows, then single rows.
template <class Arch, class Block>
inline void quant_matvec_range(float* out, const Block* w, std::int64_t nb, const BlockQ8_0* xq, std::int64_t n_begin,
                               std::int64_t n_end, const Epilogue& ep) {
  constexpr int kGroup = 4;
  float dots[kGroup];
  for (std::int64_t n = n_begin; n < n_end;) {
    const int rows = n + kGroup <= n_end ? kGroup : 1;
#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
    if (rows == kGroup) quant_dot_rows<kGroup>(dots, w + n * nb, nb, xq);
    else quant_dot_rows<1>(dots, w + n * nb, nb, xq);
#else
    for (int r = 0; r < rows; ++r) dots[r] = ref::quant_dot(w + (n + r) * nb, xq, nb);
#endif
    for (int r = 0; r < rows; ++r) out[n + r] = ep.apply(dots[r], n + r, out[n + r]);
    n += rows;
  }
}

/// The decode path: out (M, N) for M < kQuantGemmMinRows activation rows.
template <class Arch, class Block>
void quant_matvec(ThreadPool& pool, float* out, const float* x, const Block* w, std::int64_t M, std::int64_t N,
                  std::int64_t K, const Epilogue& ep) {
  const std::int64_t nb = K / kQuantBlock;
  // The quantised rows, in this thread's reusable scratch (no allocation per token).
  std::unique_ptr<AlignedBuffer> own;
  const std::int64_t floats = (M * nb * std::int64_t(sizeof(BlockQ8_0)) + 3) / 4;
  auto* xq = reinterpret_cast<BlockQ8_0*>(thread_scratch<QuantXTag>(floats, own));
  for (std::int64_t m = 0; m < M; ++m) quantize_row_q8_0(x + m * K, xq + m * nb, K);
  pool.parallel_for_guided(
      N,
      [&](std::int64_t n_begin, std::int64_t n_end) {
        for (std::int64_t m = 0; m < M; ++m)
          quant_matvec_range<Arch>(out + m * N, w, nb, xq + m * nb, n_begin, n_end, ep);
      },
      /*grain=*/48);
}

}  // namespace lav2::kernels::simd::detail
