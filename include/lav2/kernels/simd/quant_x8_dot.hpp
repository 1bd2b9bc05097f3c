// The decode dot of q4_0_x8 weights (tensor/quant_x8.hpp: eight q4_0 rows interleaved block by
// block) with one q8_0 activation row: the integer sums of ggml's q4_0 x q8_0 dot, eight rows at
// a time, from one stream through the group's bytes.
//
// Per block b of a group (AVX-512: two zmm of four rows' 16 code bytes each; AVX2: four ymm of
// two rows):
//   lo = codes & 15 (values 0-15 of each row), hi = (codes >> 4) & 15 (values 16-31);
//   the activation block's halves x[0, 16) and x[16, 32) are broadcast to every 128-bit lane,
//   so lane j of row r's quarter sums c * x over 4 low and 4 high values:
//     maddubs(lo, xlo) + maddubs(hi, xhi)   (u8 x s8 -> s16: |sum| <= 4 * 15 * 127 < 2^15)
//     madd(., 1)                            -> int32, then minus 8 * (the same x sums), computed
//                                              once per block for all eight rows:
//     sum_j (c_j - 8) x_j = sum_j c_j x_j - 8 sum_j x_j.
//   The eight f16 scales are one 128-bit load, widened together and multiplied by d_x; vpermps
//   spreads them over the rows' lanes, and one FMA per register accumulates the block.
// The four lanes of a row are summed at the end. Every block's integer sum is exact, as in the
// reference; results differ from it only in the float rounding of the lane sums.
// Templated on Arch (each kernel unit compiles its own): symbols of its own.
#pragma once

#include <cstdint>

#include "lav2/kernels/simd/arch.hpp"
#include "lav2/tensor/quant.hpp"
#include "lav2/tensor/quant_x8.hpp"

namespace lav2::kernels::simd::detail {

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#define LAV2_QUANT_X8_DOT 1

/// The group's eight scales times the activation block's, as floats.
template <class Arch>
inline __m256 x8_scales(const BlockQ4_0x8& w, const BlockQ8_0& x) {
  const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w.d)));
  return _mm256_mul_ps(dw, _mm256_set1_ps(_cvtsh_ss(x.d)));
}

#if defined(__AVX512F__) && defined(__AVX512BW__)
/// int32 lanes of sum c * x over the low and high nibbles of `codes` (four rows' 16 bytes).
template <class Arch>
inline __m512i x8_sums(__m512i codes, __m512i xlo, __m512i xhi) {
  const __m512i m4 = _mm512_set1_epi8(15);
  const __m512i lo = _mm512_and_si512(codes, m4), hi = _mm512_and_si512(_mm512_srli_epi16(codes, 4), m4);
  const __m512i pairs = _mm512_add_epi16(_mm512_maddubs_epi16(lo, xlo), _mm512_maddubs_epi16(hi, xhi));
  return _mm512_madd_epi16(pairs, _mm512_set1_epi16(1));
}

/// out[r] = dot(row r of the group, x) for the group's 8 rows; `w` its nb blocks.
template <class Arch>
inline void quant_dot_x8(float* out, const BlockQ4_0x8* w, std::int64_t nb, const BlockQ8_0* x) {
  const __m512i rows_0_3 = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
  const __m512i rows_4_7 = _mm512_setr_epi32(4, 4, 4, 4, 5, 5, 5, 5, 6, 6, 6, 6, 7, 7, 7, 7);
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  for (std::int64_t b = 0; b < nb; ++b) {
    const __m512i xlo = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x[b].q)));
    const __m512i xhi = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x[b].q + 16)));
    const __m512i offset = x8_sums<Arch>(_mm512_set1_epi8(0x88), xlo, xhi);  // 8 * (the lane's x sum)
    const __m512 d = _mm512_castps256_ps512(x8_scales<Arch>(w[b], x[b]));
    const __m512i s0 = _mm512_sub_epi32(x8_sums<Arch>(_mm512_loadu_si512(w[b].qs[0]), xlo, xhi), offset);
    const __m512i s1 = _mm512_sub_epi32(x8_sums<Arch>(_mm512_loadu_si512(w[b].qs[4]), xlo, xhi), offset);
    acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s0), _mm512_permutexvar_ps(rows_0_3, d), acc0);
    acc1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s1), _mm512_permutexvar_ps(rows_4_7, d), acc1);
  }
  alignas(64) float lanes[32];
  _mm512_store_ps(lanes, acc0);
  _mm512_store_ps(lanes + 16, acc1);
  for (int r = 0; r < kX8Rows; ++r) out[r] = (lanes[4 * r] + lanes[4 * r + 1]) + (lanes[4 * r + 2] + lanes[4 * r + 3]);
}
#else
/// int32 lanes of sum c * x over the low and high nibbles of `codes` (two rows' 16 bytes).
template <class Arch>
inline __m256i x8_sums(__m256i codes, __m256i xlo, __m256i xhi) {
  const __m256i m4 = _mm256_set1_epi8(15);
  const __m256i lo = _mm256_and_si256(codes, m4), hi = _mm256_and_si256(_mm256_srli_epi16(codes, 4), m4);
  const __m256i pairs = _mm256_add_epi16(_mm256_maddubs_epi16(lo, xlo), _mm256_maddubs_epi16(hi, xhi));
  return _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
}

/// out[r] = dot(row r of the group, x) for the group's 8 rows; `w` its nb blocks.
template <class Arch>
inline void quant_dot_x8(float* out, const BlockQ4_0x8* w, std::int64_t nb, const BlockQ8_0* x) {
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  for (std::int64_t b = 0; b < nb; ++b) {
    const __m128i x0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x[b].q));
    const __m128i x1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x[b].q + 16));
    const __m256i xlo = _mm256_set_m128i(x0, x0), xhi = _mm256_set_m128i(x1, x1);
    const __m256i offset = x8_sums<Arch>(_mm256_set1_epi8(char(0x88)), xlo, xhi);
    const __m256 d = x8_scales<Arch>(w[b], x[b]);
    for (int q = 0; q < 4; ++q) {  // rows 2q, 2q + 1
      const __m256i codes = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[b].qs[2 * q]));
      const __m256i s = _mm256_sub_epi32(x8_sums<Arch>(codes, xlo, xhi), offset);
      const __m256i pick = _mm256_setr_epi32(2 * q, 2 * q, 2 * q, 2 * q, 2 * q + 1, 2 * q + 1, 2 * q + 1, 2 * q + 1);
      acc[q] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_permutevar8x32_ps(d, pick), acc[q]);
    }
  }
  alignas(32) float lanes[32];
  for (int q = 0; q < 4; ++q) _mm256_store_ps(lanes + 8 * q, acc[q]);
  for (int r = 0; r < kX8Rows; ++r) out[r] = (lanes[4 * r] + lanes[4 * r + 1]) + (lanes[4 * r + 2] + lanes[4 * r + 3]);
}
#endif

#else
#define LAV2_QUANT_X8_DOT 0
#endif

}  // namespace lav2::kernels::simd::detail
