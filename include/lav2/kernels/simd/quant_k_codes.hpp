// AVX2 unpacking of the K-quant codes (tensor/quant_k.hpp), shared by the decode dot products
// (quant_matvec.hpp) and the prefill GEMM's dequantisation into f32 (gemm.hpp's widen_block).
//
// Everything here is templated on the xsimd Arch although the code is AVX2's: each kernel unit
// then has its own symbols, so the AVX2 table can never call a copy that the AVX-512 unit compiled
// (kernels/isa/detail/kernel_unit.hpp).
#pragma once

#include <cstdint>
#include <cstring>

#include "lav2/kernels/simd/arch.hpp"
#include "lav2/tensor/quant.hpp"

namespace lav2::kernels::simd::detail {

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)

/// The sums of a q8_K block's 8 sub-blocks of 32 codes, bsums[2s] + bsums[2s + 1], as int16: what
/// q4_K's mins multiply.
template <class Arch>
inline __m128i pair_sums_q8_k(const BlockQ8_K& x) {
  return _mm_hadd_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x.bsums)),
                        _mm_loadu_si128(reinterpret_cast<const __m128i*>(x.bsums + 8)));
}

/// A q4_K block's scales (bytes 0-7 of `sc`) and mins (of `mn`): unpack_scales_min_q4_k's formula
/// on four bytes at once; (s >> 2) & 0x30 moves each byte's top two bits to bits 4-5.
template <class Arch>
struct Q4ScalesMins {
  std::uint64_t sc, mn;
  explicit Q4ScalesMins(const BlockQ4_K& b) {
    std::uint32_t s0, s1, s2;  // scale bytes 0-3, 4-7, 8-11
    std::memcpy(&s0, b.scales, 4);
    std::memcpy(&s1, b.scales + 4, 4);
    std::memcpy(&s2, b.scales + 8, 4);
    sc = (s0 & 0x3f3f3f3fu) | std::uint64_t((s2 & 0x0f0f0f0fu) | ((s0 >> 2) & 0x30303030u)) << 32;
    mn = (s1 & 0x3f3f3f3fu) | std::uint64_t(((s2 >> 4) & 0x0f0f0f0fu) | ((s1 >> 2) & 0x30303030u)) << 32;
  }
  /// The 8 scales / mins as int16.
  __m128i scales16() const { return _mm_cvtepu8_epi16(_mm_cvtsi64_si128(std::int64_t(sc))); }
  __m128i mins16() const { return _mm_cvtepu8_epi16(_mm_cvtsi64_si128(std::int64_t(mn))); }
};

/// The codes (0..63) of half h of a q6_K block: q[g] holds values 128h + 32g .. 128h + 32g + 31.
template <class Arch>
struct Q6Codes {
  __m256i q[4];
  Q6Codes(const BlockQ6_K& b, int h) {
    const __m256i low4 = _mm256_set1_epi8(15), bits45 = _mm256_set1_epi8(0x30);
    const __m256i ql0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.ql + 64 * h));
    const __m256i ql1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.ql + 64 * h + 32));
    const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qh + 32 * h));
    // Bits 2g, 2g + 1 of qh to bits 4-5 (16-bit shifts: the mask drops what crosses bytes).
    q[0] = _mm256_or_si256(_mm256_and_si256(ql0, low4), _mm256_and_si256(_mm256_slli_epi16(qh, 4), bits45));
    q[1] = _mm256_or_si256(_mm256_and_si256(ql1, low4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), bits45));
    q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), low4), _mm256_and_si256(qh, bits45));
    q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), low4),
                           _mm256_and_si256(_mm256_srli_epi16(qh, 2), bits45));
  }
};

/// Bytes 8i .. 8i + 7 of `v` as 8 floats: signed or unsigned bytes.
template <class Arch, int kPart, bool kSigned>
inline __m256 bytes_to_f32(__m256i v) {
  const __m128i half = kPart < 2 ? _mm256_castsi256_si128(v) : _mm256_extracti128_si256(v, 1);
  const __m128i eight = kPart % 2 == 0 ? half : _mm_unpackhi_epi64(half, half);
  return _mm256_cvtepi32_ps(kSigned ? _mm256_cvtepi8_epi32(eight) : _mm256_cvtepu8_epi32(eight));
}

/// One q4_K block -> y (256), bit-identical to dequantize_row_q4_k: (d sc) q is exact, so the
/// fused (d sc) q - dmin mn rounds once, as the scalar subtraction does.
template <class Arch>
inline void dequantize_block(const BlockQ4_K& b, float* y) {
  std::uint8_t sc[8], mn[8];
  unpack_scales_min_q4_k(b.scales, sc, mn);
  const float d = _cvtsh_ss(b.d), dmin = _cvtsh_ss(b.dmin);
  const __m256i low4 = _mm256_set1_epi8(15);
  for (int c = 0; c < 4; ++c) {
    const __m256i bits = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs + 32 * c));
    const __m256i lo = _mm256_and_si256(bits, low4), hi = _mm256_and_si256(_mm256_srli_epi16(bits, 4), low4);
    const __m256 d_lo = _mm256_set1_ps(d * float(sc[2 * c])), m_lo = _mm256_set1_ps(dmin * float(mn[2 * c]));
    const __m256 d_hi = _mm256_set1_ps(d * float(sc[2 * c + 1])), m_hi = _mm256_set1_ps(dmin * float(mn[2 * c + 1]));
    float* o = y + 64 * c;
    _mm256_storeu_ps(o + 0, _mm256_fmsub_ps(d_lo, bytes_to_f32<Arch, 0, false>(lo), m_lo));
    _mm256_storeu_ps(o + 8, _mm256_fmsub_ps(d_lo, bytes_to_f32<Arch, 1, false>(lo), m_lo));
    _mm256_storeu_ps(o + 16, _mm256_fmsub_ps(d_lo, bytes_to_f32<Arch, 2, false>(lo), m_lo));
    _mm256_storeu_ps(o + 24, _mm256_fmsub_ps(d_lo, bytes_to_f32<Arch, 3, false>(lo), m_lo));
    _mm256_storeu_ps(o + 32, _mm256_fmsub_ps(d_hi, bytes_to_f32<Arch, 0, false>(hi), m_hi));
    _mm256_storeu_ps(o + 40, _mm256_fmsub_ps(d_hi, bytes_to_f32<Arch, 1, false>(hi), m_hi));
    _mm256_storeu_ps(o + 48, _mm256_fmsub_ps(d_hi, bytes_to_f32<Arch, 2, false>(hi), m_hi));
    _mm256_storeu_ps(o + 56, _mm256_fmsub_ps(d_hi, bytes_to_f32<Arch, 3, false>(hi), m_hi));
  }
}

/// One q6_K block -> y (256), bit-identical to dequantize_row_q6_k ((d sc) exact, one rounding).
template <class Arch>
inline void dequantize_block(const BlockQ6_K& b, float* y) {
  const float d = _cvtsh_ss(b.d);
  const __m256i offset = _mm256_set1_epi8(32);
  for (int h = 0; h < 2; ++h) {
    const Q6Codes<Arch> codes(b, h);
    for (int g = 0; g < 4; ++g) {
      const __m256i q = _mm256_sub_epi8(codes.q[g], offset);  // -32..31
      float* o = y + 128 * h + 32 * g;
      const __m256 d0 = _mm256_set1_ps(d * float(b.scales[8 * h + 2 * g]));
      const __m256 d1 = _mm256_set1_ps(d * float(b.scales[8 * h + 2 * g + 1]));
      _mm256_storeu_ps(o + 0, _mm256_mul_ps(d0, bytes_to_f32<Arch, 0, true>(q)));
      _mm256_storeu_ps(o + 8, _mm256_mul_ps(d0, bytes_to_f32<Arch, 1, true>(q)));
      _mm256_storeu_ps(o + 16, _mm256_mul_ps(d1, bytes_to_f32<Arch, 2, true>(q)));
      _mm256_storeu_ps(o + 24, _mm256_mul_ps(d1, bytes_to_f32<Arch, 3, true>(q)));
    }
  }
}

#endif

/// k values of K-quant blocks -> y: the AVX2 blocks above where compiled, else the scalar row.
template <class Arch, class Block>
inline void dequantize_row_k(const Block* w, float* y, std::int64_t k) {
#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
  for (std::int64_t b = 0; b < k / kQuantBlockK; ++b) dequantize_block<Arch>(w[b], y + b * kQuantBlockK);
#else
  dequantize_row(w, y, k);
#endif
}

}  // namespace lav2::kernels::simd::detail
