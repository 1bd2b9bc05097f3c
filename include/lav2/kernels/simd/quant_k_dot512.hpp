// The K-quant decode dots at 512 bits, for the AVX-512 unit (AVX-512 BW: byte and word ops on
// zmm). The same integer sums as the AVX2 kernels of quant_matvec.hpp, with two 32-value chunks
// per instruction:
// - q4_K: a zmm of 64 code bytes holds chunks c, c + 1, i.e. values 64c + [0, 32) and
//   64c + [64, 96) in its low nibbles; the activations are assembled to match from two 32-byte
//   loads (once per block, shared by the group's rows). vpermw spreads the 8 sub-block scales to
//   their 16-lane halves.
// - q6_K: a zmm of ql for half h and qh broadcast to both halves; per-lane shift counts
//   (vpsllvw / vpsrlvw) pick the two bits of each chunk, so one zmm holds 64 consecutive codes,
//   matching one 64-byte load of activations; vpermw spreads the 16 scales.
// Templated on Arch (only the AVX-512 unit compiles this): symbols of its own.
#pragma once

#include <cstdint>
#include <cstring>

#include "lav2/kernels/simd/arch.hpp"
#include "lav2/kernels/simd/quant_k_codes.hpp"
#include "lav2/tensor/quant.hpp"

namespace lav2::kernels::simd::detail {

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512DQ__) && \
    defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#define LAV2_KQUANT_DOT512 1

/// A zmm of two ymm: `lo` in bits 0-255, `hi` in 256-511.
template <class Arch>
inline __m512i join(__m256i lo, __m256i hi) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}
template <class Arch>
inline __m256i load256(const void* p) {
  return _mm256_loadu_si256(static_cast<const __m256i*>(p));
}
template <class Arch>
inline float hsum128(__m128 t) {
  const __m128 u = _mm_add_ps(t, _mm_movehl_ps(t, t));
  return _mm_cvtss_f32(_mm_add_ss(u, _mm_movehdup_ps(u)));
}
template <class Arch>
inline float hsum256(__m256 s) {
  return hsum128<Arch>(_mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1)));
}
template <class Arch>
inline float hsum512(__m512 v) {
  return hsum256<Arch>(_mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1)));
}
/// int16 lanes i = 0..31 of `base + i / 8`: vpermw indices that give each group of 8 lanes (16
/// values of maddubs pairs) one scale.
template <class Arch>
inline __m512i eighths(short base) {
  const __m256i iota = _mm256_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21,
                                        22, 23, 24, 25, 26, 27, 28, 29, 30, 31);
  return _mm512_add_epi16(_mm512_srli_epi16(_mm512_cvtepu8_epi16(iota), 3), _mm512_set1_epi16(base));
}

/// out[r] = q4_K . q8_K dot of row r, for kRows rows `nb` super-blocks apart.
template <class Arch, int kRows>
inline void quant_dot_rows_512(float* out, const BlockQ4_K* w, std::int64_t nb, const BlockQ8_K* x) {
  const __m512i low4 = _mm512_set1_epi8(15);
  // Sub-block scales of the four products: lo0 = (0 | 2), hi0 = (1 | 3), lo1 = (4 | 6), hi1 = (5 | 7).
  const auto halves = [](short a, short b) { return join<Arch>(_mm256_set1_epi16(a), _mm256_set1_epi16(b)); };
  const __m512i pick_lo0 = halves(0, 2), pick_hi0 = halves(1, 3), pick_lo1 = halves(4, 6), pick_hi1 = halves(5, 7);
  __m512 acc[kRows];
  __m128 acc_min[kRows];
  for (int r = 0; r < kRows; ++r) acc[r] = _mm512_setzero_ps(), acc_min[r] = _mm_setzero_ps();
  for (std::int64_t b = 0; b < nb; ++b) {
    const BlockQ8_K& xb = x[b];
    const __m128i xsums = pair_sums_q8_k<Arch>(xb);
    const __m512i x_lo0 = join<Arch>(load256<Arch>(xb.qs), load256<Arch>(xb.qs + 64));
    const __m512i x_hi0 = join<Arch>(load256<Arch>(xb.qs + 32), load256<Arch>(xb.qs + 96));
    const __m512i x_lo1 = join<Arch>(load256<Arch>(xb.qs + 128), load256<Arch>(xb.qs + 192));
    const __m512i x_hi1 = join<Arch>(load256<Arch>(xb.qs + 160), load256<Arch>(xb.qs + 224));
    for (int r = 0; r < kRows; ++r) {
      const BlockQ4_K& wb = w[r * nb + b];
      const Q4ScalesMins<Arch> sm(wb);
      const __m512i scales = _mm512_inserti32x4(_mm512_setzero_si512(), sm.scales16(), 0);
      const __m128i mins = _mm_madd_epi16(sm.mins16(), xsums);
      const __m512i z0 = _mm512_loadu_si512(wb.qs), z1 = _mm512_loadu_si512(wb.qs + 64);
      const auto prod = [&](__m512i codes, __m512i xs, __m512i pick) {
        return _mm512_madd_epi16(_mm512_maddubs_epi16(codes, xs), _mm512_permutexvar_epi16(pick, scales));
      };
      const __m512i p0 = _mm512_add_epi32(prod(_mm512_and_si512(z0, low4), x_lo0, pick_lo0),
                                          prod(_mm512_and_si512(_mm512_srli_epi16(z0, 4), low4), x_hi0, pick_hi0));
      const __m512i p1 = _mm512_add_epi32(prod(_mm512_and_si512(z1, low4), x_lo1, pick_lo1),
                                          prod(_mm512_and_si512(_mm512_srli_epi16(z1, 4), low4), x_hi1, pick_hi1));
      const float dw = _cvtsh_ss(wb.d), dmin = _cvtsh_ss(wb.dmin);
      acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(dw * xb.d), _mm512_cvtepi32_ps(_mm512_add_epi32(p0, p1)), acc[r]);
      acc_min[r] = _mm_fmadd_ps(_mm_set1_ps(dmin * xb.d), _mm_cvtepi32_ps(mins), acc_min[r]);
    }
  }
  for (int r = 0; r < kRows; ++r) out[r] = hsum512<Arch>(acc[r]) - hsum128<Arch>(acc_min[r]);
}

/// out[r] = q6_K . q8_K dot of row r, for kRows rows `nb` super-blocks apart.
template <class Arch, int kRows>
inline void quant_dot_rows_512(float* out, const BlockQ6_K* w, std::int64_t nb, const BlockQ8_K* x) {
  const __m512i low4 = _mm512_set1_epi8(15), bits45 = _mm512_set1_epi8(0x30);
  // qh shifts per 16-bit lane: chunk g = 0 | 1 left by 4 | 2 (A), g = 2 | 3 right by 0 | 2 (B).
  const __m512i shift_a = join<Arch>(_mm256_set1_epi16(4), _mm256_set1_epi16(2));
  const __m512i shift_b = join<Arch>(_mm256_set1_epi16(0), _mm256_set1_epi16(2));
  const __m512i pick_a0 = eighths<Arch>(0), pick_b0 = eighths<Arch>(4);
  const __m512i pick_a1 = eighths<Arch>(8), pick_b1 = eighths<Arch>(12);
  __m256 acc[kRows];  // the 16 int32 lanes are folded to 8 before the f32 step
  for (int r = 0; r < kRows; ++r) acc[r] = _mm256_setzero_ps();
  for (std::int64_t b = 0; b < nb; ++b) {
    const BlockQ8_K& xb = x[b];
    const __m256i xsums = load256<Arch>(xb.bsums);
    for (int r = 0; r < kRows; ++r) {
      const BlockQ6_K& wb = w[r * nb + b];
      const __m128i scales8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(wb.scales));
      const __m512i scales = _mm512_cvtepi8_epi16(_mm256_inserti128_si256(_mm256_setzero_si256(), scales8, 0));
      // 32 * sum_s sc[s] * bsums[s]: the codes' offset, as in the AVX2 kernel.
      const __m256i offset = _mm256_slli_epi32(_mm256_madd_epi16(_mm256_cvtepi8_epi16(scales8), xsums), 5);
      __m512i sumi = _mm512_setzero_si512();
      for (int h = 0; h < 2; ++h) {  // values 128h .. 128h + 127
        const __m512i ql = _mm512_loadu_si512(wb.ql + 64 * h);
        const __m512i qh = _mm512_broadcast_i64x4(load256<Arch>(wb.qh + 32 * h));
        // A: values 128h + [0, 64) (chunks 0, 1); B: 128h + [64, 128) (chunks 2, 3).
        const __m512i a =
            _mm512_or_si512(_mm512_and_si512(ql, low4), _mm512_and_si512(_mm512_sllv_epi16(qh, shift_a), bits45));
        const __m512i bb = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), low4),
                                           _mm512_and_si512(_mm512_srlv_epi16(qh, shift_b), bits45));
        const __m512i xa = _mm512_loadu_si512(xb.qs + 128 * h), xbb = _mm512_loadu_si512(xb.qs + 128 * h + 64);
        const __m512i pa = _mm512_permutexvar_epi16(h == 0 ? pick_a0 : pick_a1, scales);
        const __m512i pb = _mm512_permutexvar_epi16(h == 0 ? pick_b0 : pick_b1, scales);
        sumi = _mm512_add_epi32(sumi, _mm512_madd_epi16(_mm512_maddubs_epi16(a, xa), pa));
        sumi = _mm512_add_epi32(sumi, _mm512_madd_epi16(_mm512_maddubs_epi16(bb, xbb), pb));
      }
      const __m256i total =
          _mm256_sub_epi32(_mm256_add_epi32(_mm512_castsi512_si256(sumi), _mm512_extracti64x4_epi64(sumi, 1)), offset);
      acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(wb.d) * xb.d), _mm256_cvtepi32_ps(total), acc[r]);
    }
  }
  for (int r = 0; r < kRows; ++r) out[r] = hsum256<Arch>(acc[r]);
}
#else
#define LAV2_KQUANT_DOT512 0
#endif

}  // namespace lav2::kernels::simd::detail
