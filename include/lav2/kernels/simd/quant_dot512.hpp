// The q8_0 / q4_0 decode dots at 512 bits, for the AVX-512 unit (AVX-512 BW). The same integer
// sums as the AVX2 kernels of quant_matvec.hpp, two 32-value blocks per instruction, and half the
// instructions per weight:
// - q4_0: a ymm of the two blocks' 16 packed bytes, [qs_b | qs_b+1], and the same shifted by 4
//   make one zmm of codes 0..15 in the order [lo_b, lo_b+1, hi_b, hi_b+1] (values 0-15 and 16-31
//   of each block); the activations are assembled in that order once per block pair and shared
//   by the group's rows. maddubs(codes, x) needs no sign trick (codes are unsigned); the -8 offset
//   is subtracted as 8 * sum(x), also computed once per pair:
//     sum_j (c_j - 8) x_j = sum_j c_j x_j - 8 sum_j x_j.
// - q8_0: |w| times x negated where w < 0 (AVX-512 has no vpsignb: abs and a masked subtract);
//   x is in [-127, 127] as quantize_row_q8_0 makes it, so the negation never overflows.
// int32 lane i of a pair holds bytes 4i..4i+3; each lane's float is scaled by d_w * d_x of its
// block (vpermps spreads the pair's two scales), exact in f32 as in the reference (f16 x f16).
// Templated on Arch (only the AVX-512 unit compiles this): symbols of its own.
#pragma once

#include <cstdint>
#include <cstring>

#include "lav2/kernels/simd/arch.hpp"
#include "lav2/kernels/simd/quant_k_dot512.hpp"
#include "lav2/tensor/quant.hpp"

namespace lav2::kernels::simd::detail {

#if LAV2_KQUANT_DOT512
#define LAV2_QUANT_DOT512 1

/// The two f16 scales of blocks b, b+1 (`two` false: b only, the other 0) as floats in the lanes
/// of `pattern` (vpermps indices 0 or 1).
template <class Arch, bool kTwo, class Block>
inline __m512 pair_scales(const Block* blk, __m512i pattern) {
  const std::uint32_t h = std::uint32_t(blk[0].d) | (kTwo ? std::uint32_t(blk[1].d) << 16 : 0u);
  const __m128 f = _mm_cvtph_ps(_mm_cvtsi32_si128(int(h)));
  return _mm512_permutexvar_ps(pattern, _mm512_castps128_ps512(f));
}

template <class Arch>
inline __m512i pattern_q4_0() {  // [b x4, b+1 x4, b x4, b+1 x4]: the q4_0 pair order
  return _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1);
}
template <class Arch>
inline __m512i pattern_q8_0() {  // [b x8, b+1 x8]
  return _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
}

/// The activations of blocks b, b+1 (b+1 zero when !kTwo) in q4_0 pair order.
template <class Arch, bool kTwo>
inline __m512i activations_q4_0(const BlockQ8_0* x) {
  const __m256i a = load256<Arch>(x[0].q), b = kTwo ? load256<Arch>(x[1].q) : _mm256_setzero_si256();
  return join<Arch>(_mm256_permute2x128_si256(a, b, 0x20), _mm256_permute2x128_si256(a, b, 0x31));
}
/// The codes 0..15 of q4_0 blocks b, b+1 in pair order.
template <class Arch, bool kTwo>
inline __m512i codes_q4_0(const BlockQ4_0* w) {
  const __m128i lo = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w[0].qs));
  const __m128i hi = kTwo ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(w[1].qs)) : _mm_setzero_si128();
  const __m256i packed = _mm256_set_m128i(hi, lo);
  return _mm512_and_si512(join<Arch>(packed, _mm256_srli_epi16(packed, 4)), _mm512_set1_epi8(15));
}

template <class Arch>
inline __m512i pair_sums(__m512i u8, __m512i s8) {  // int32 lanes of 4-byte dot products
  return _mm512_madd_epi16(_mm512_maddubs_epi16(u8, s8), _mm512_set1_epi16(1));
}

/// One block pair (or the last single block) of kRows q4_0 rows into acc.
template <class Arch, int kRows, bool kTwo>
inline void q4_0_pair(__m512* acc, const BlockQ4_0* w, std::int64_t nb, const BlockQ8_0* x) {
  const __m512i pattern = pattern_q4_0<Arch>();
  const __m512i qx = activations_q4_0<Arch, kTwo>(x);
  const __m512i offset = pair_sums<Arch>(_mm512_set1_epi8(8), qx);  // 8 * sum(x) per lane
  const __m512 dx = pair_scales<Arch, kTwo>(x, pattern);
  for (int r = 0; r < kRows; ++r) {
    const BlockQ4_0* wr = w + r * nb;
    const __m512i dot = _mm512_sub_epi32(pair_sums<Arch>(codes_q4_0<Arch, kTwo>(wr), qx), offset);
    const __m512 scale = _mm512_mul_ps(pair_scales<Arch, kTwo>(wr, pattern), dx);
    acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), scale, acc[r]);
  }
}

/// One block pair (or the last single block) of kRows q8_0 rows into acc.
template <class Arch, int kRows, bool kTwo>
inline void q8_0_pair(__m512* acc, const BlockQ8_0* w, std::int64_t nb, const BlockQ8_0* x) {
  const __m512i pattern = pattern_q8_0<Arch>();
  const __m512i qx = join<Arch>(load256<Arch>(x[0].q), kTwo ? load256<Arch>(x[1].q) : _mm256_setzero_si256());
  const __m512 dx = pair_scales<Arch, kTwo>(x, pattern);
  for (int r = 0; r < kRows; ++r) {
    const BlockQ8_0* wr = w + r * nb;
    const __m512i qw = join<Arch>(load256<Arch>(wr[0].q), kTwo ? load256<Arch>(wr[1].q) : _mm256_setzero_si256());
    // |w| . (x with the sign of w): the products of w . x, with an unsigned first operand.
    const __m512i sx = _mm512_mask_sub_epi8(qx, _mm512_movepi8_mask(qw), _mm512_setzero_si512(), qx);
    const __m512i dot = pair_sums<Arch>(_mm512_abs_epi8(qw), sx);
    const __m512 scale = _mm512_mul_ps(pair_scales<Arch, kTwo>(wr, pattern), dx);
    acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), scale, acc[r]);
  }
}

/// out[r] = q4_0 . q8_0 dot of row r, for kRows rows `nb` blocks apart.
template <class Arch, int kRows>
inline void quant_dot_rows_512(float* out, const BlockQ4_0* w, std::int64_t nb, const BlockQ8_0* x) {
  __m512 acc[kRows];
  for (int r = 0; r < kRows; ++r) acc[r] = _mm512_setzero_ps();
  std::int64_t b = 0;
  for (; b + 2 <= nb; b += 2) q4_0_pair<Arch, kRows, true>(acc, w + b, nb, x + b);
  if (b < nb) q4_0_pair<Arch, kRows, false>(acc, w + b, nb, x + b);
  for (int r = 0; r < kRows; ++r) out[r] = hsum512<Arch>(acc[r]);
}

/// out[r] = q8_0 . q8_0 dot of row r, for kRows rows `nb` blocks apart.
template <class Arch, int kRows>
inline void quant_dot_rows_512(float* out, const BlockQ8_0* w, std::int64_t nb, const BlockQ8_0* x) {
  __m512 acc[kRows];
  for (int r = 0; r < kRows; ++r) acc[r] = _mm512_setzero_ps();
  std::int64_t b = 0;
  for (; b + 2 <= nb; b += 2) q8_0_pair<Arch, kRows, true>(acc, w + b, nb, x + b);
  if (b < nb) q8_0_pair<Arch, kRows, false>(acc, w + b, nb, x + b);
  for (int r = 0; r < kRows; ++r) out[r] = hsum512<Arch>(acc[r]);
}

#else
#define LAV2_QUANT_DOT512 0
#endif

}  // namespace lav2::kernels::simd::detail
