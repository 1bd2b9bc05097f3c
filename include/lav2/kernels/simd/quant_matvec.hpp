// The decode path of matmul over q8_0 / q4_0 / q4_K / q6_K weights: the activation row is
// quantised once to q8_0 (or, for the K-quants, q8_K) blocks by the scalar quantiser, so every
// level sees the same integers, and each output is the integer dot product of ggml
// (ref/matmul_quant.hpp):
//   out[n] = sum_b float(sum_j qw[b, j] * qx[b, j]) * (d_w[b] * d_x[b])   (q8_0, q4_0)
//
// AVX2 (and the AVX-512 unit, which has it): per block, |qw| (sign) times qx with qw's sign
// (maddubs: u8 x s8 -> pairs of s16, at most 2 * 127 * 128 < 2^15, so it never saturates), then
// madd against ones -> 8 int32 partial sums, exact; converted to float (exact below 2^24) and
// accumulated with one FMA by d_w * d_x into 8 float lanes, summed horizontally at the end. q4_0
// unpacks its nibbles to [low 16 | high 16] bytes minus 8 first. Elsewhere (SSE2) the scalar
// reference dot. Groups of four weight rows share each load of the activation block.
//
// K-quants (AVX2, and the AVX-512 unit): per super-block of 256, the codes as unsigned bytes
// (q4_K 0..15; q6_K 0..63, the -32 applied later) times qx with maddubs (at most 2 * 63 * 128 <
// 2^15), then madd against the sub-block scales as int16 (q4_K: one scale per 32 values; q6_K:
// two per 32, the low and high 16), summed in 8 int32 lanes, exact. q6_K's -32 is taken out once
// per block as 32 * sum_s sc[s] * bsums[s] (bsums = q8_K's sums of 16 codes), q4_K's mins term
// sum_s mn[s] * (bsums[2s] + bsums[2s + 1]) likewise from bsums; each int32 vector is converted
// and accumulated with one FMA by d_w * d_x (the mins by dmin_w * d_x). q4_K's 12 scale bytes are
// unpacked with 32-bit masks (unpack_scales_min_q4_k's formula on four bytes at once). The shared
// unpacking is in quant_k_codes.hpp; the AVX-512 unit runs the 512-bit forms of quant_dot512.hpp and quant_k_dot512.hpp.
//
// Determinism: a row's arithmetic is the same alone or in a group and for any thread count (work
// is split over N only). The lanes split each block sum before it is scaled, so results differ
// from the reference's in float rounding only.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "lav2/core/thread_pool.hpp"
#include "lav2/kernels/epilogue.hpp"
#include "lav2/kernels/ref/matmul_quant.hpp"
#include "lav2/kernels/simd/arch.hpp"
#include "lav2/kernels/simd/gemm.hpp"
#include "lav2/kernels/simd/quant_dot512.hpp"
#include "lav2/kernels/simd/quant_k_codes.hpp"
#include "lav2/kernels/simd/quant_k_dot512.hpp"
#include "lav2/kernels/simd/quant_x8_dot.hpp"
#include "lav2/tensor/quant.hpp"
#include "lav2/tensor/quant_x8.hpp"

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

inline float hsum(__m128 s) {
  const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_movehdup_ps(t)));
}
inline float hsum(__m256 v) { return hsum(_mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1))); }

/// out[r] = dot(row r of w, x) for kRows rows `nb` blocks apart. The row-group kernels are templated
/// on Arch although their code is AVX2's: each unit then has its own symbols, so the AVX2 table can
/// never call a copy the AVX-512 unit compiled (kernel_unit.hpp).
template <class Arch, int kRows, class Block>
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

/// int16 lane i of each 128-bit half of `v` in every lane of that half (a constant shuffle).
template <class Arch, int kLane>
inline __m256i broadcast_i16(__m256i v) {
  return _mm256_shuffle_epi8(v, _mm256_set1_epi16(short(((2 * kLane + 1) << 8) | (2 * kLane))));
}

/// out[r] = q4_K . q8_K dot of row r, for kRows rows `nb` super-blocks apart.
template <class Arch, int kRows>
inline void quant_dot_rows(float* out, const BlockQ4_K* w, std::int64_t nb, const BlockQ8_K* x) {
  const __m256i low4 = _mm256_set1_epi8(15);
  __m256 acc[kRows];
  __m128 acc_min[kRows];
  for (int r = 0; r < kRows; ++r) acc[r] = _mm256_setzero_ps(), acc_min[r] = _mm_setzero_ps();
  for (std::int64_t b = 0; b < nb; ++b) {
    const BlockQ8_K& xb = x[b];
    const __m128i xsums = pair_sums_q8_k<Arch>(xb);
    for (int r = 0; r < kRows; ++r) {
      const BlockQ4_K& wb = w[r * nb + b];
      const Q4ScalesMins<Arch> sm(wb);
      const __m256i scales = _mm256_broadcastsi128_si256(sm.scales16());
      const __m128i mins = _mm_madd_epi16(sm.mins16(), xsums);
      __m256i sumi = _mm256_setzero_si256();
      const auto chunk = [&](auto c, __m256i scale_lo, __m256i scale_hi) {  // values 64c .. 64c + 63
        const __m256i bits = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wb.qs + 32 * c));
        const __m256i lo = _mm256_and_si256(bits, low4), hi = _mm256_and_si256(_mm256_srli_epi16(bits, 4), low4);
        const __m256i xlo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb.qs + 64 * c));
        const __m256i xhi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb.qs + 64 * c + 32));
        const __m256i plo = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, xlo), scale_lo);
        const __m256i phi = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, xhi), scale_hi);
        sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(plo, phi));
      };
      chunk(0, broadcast_i16<Arch, 0>(scales), broadcast_i16<Arch, 1>(scales));
      chunk(1, broadcast_i16<Arch, 2>(scales), broadcast_i16<Arch, 3>(scales));
      chunk(2, broadcast_i16<Arch, 4>(scales), broadcast_i16<Arch, 5>(scales));
      chunk(3, broadcast_i16<Arch, 6>(scales), broadcast_i16<Arch, 7>(scales));
      const float dw = _cvtsh_ss(wb.d), dmin = _cvtsh_ss(wb.dmin);
      acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(dw * xb.d), _mm256_cvtepi32_ps(sumi), acc[r]);
      acc_min[r] = _mm_fmadd_ps(_mm_set1_ps(dmin * xb.d), _mm_cvtepi32_ps(mins), acc_min[r]);
    }
  }
  for (int r = 0; r < kRows; ++r) out[r] = hsum(acc[r]) - hsum(acc_min[r]);
}

/// The int16 scales of sub-blocks k (low 128 bits) and k + 1 (high) of a q6_K block.
template <class Arch, int kSub>
inline __m256i scale_pair_q6_k(__m128i scales) {
  const __m128i pick = _mm_set_epi8(kSub + 1, kSub + 1, kSub + 1, kSub + 1, kSub + 1, kSub + 1, kSub + 1, kSub + 1,
                                    kSub, kSub, kSub, kSub, kSub, kSub, kSub, kSub);
  return _mm256_cvtepi8_epi16(_mm_shuffle_epi8(scales, pick));
}

/// out[r] = q6_K . q8_K dot of row r, for kRows rows `nb` super-blocks apart.
template <class Arch, int kRows>
inline void quant_dot_rows(float* out, const BlockQ6_K* w, std::int64_t nb, const BlockQ8_K* x) {
  __m256 acc[kRows];
  for (int r = 0; r < kRows; ++r) acc[r] = _mm256_setzero_ps();
  for (std::int64_t b = 0; b < nb; ++b) {
    const BlockQ8_K& xb = x[b];
    const __m256i xsums = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb.bsums));
    for (int r = 0; r < kRows; ++r) {
      const BlockQ6_K& wb = w[r * nb + b];
      const __m128i scales = _mm_loadu_si128(reinterpret_cast<const __m128i*>(wb.scales));
      // 32 * sum_s sc[s] * bsums[s]: the codes' offset of 32, taken out of the unsigned products.
      __m256i sumi = _mm256_sub_epi32(_mm256_setzero_si256(),
                                      _mm256_slli_epi32(_mm256_madd_epi16(_mm256_cvtepi8_epi16(scales), xsums), 5));
      // Codes (0..63) of 32 values times their activations, scaled by sub-blocks kSub, kSub + 1.
      const auto chunk = [&](const std::int8_t* qx, __m256i codes, __m256i scale_pair) {
        const __m256i p = _mm256_maddubs_epi16(codes, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qx)));
        sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, scale_pair));
      };
      for (int h = 0; h < 2; ++h) {  // values 128h .. 128h + 127
        const Q6Codes<Arch> codes(wb, h);
        const std::int8_t* qx = xb.qs + 128 * h;
        if (h == 0) {
          chunk(qx, codes.q[0], scale_pair_q6_k<Arch, 0>(scales));
          chunk(qx + 32, codes.q[1], scale_pair_q6_k<Arch, 2>(scales));
          chunk(qx + 64, codes.q[2], scale_pair_q6_k<Arch, 4>(scales));
          chunk(qx + 96, codes.q[3], scale_pair_q6_k<Arch, 6>(scales));
        } else {
          chunk(qx, codes.q[0], scale_pair_q6_k<Arch, 8>(scales));
          chunk(qx + 32, codes.q[1], scale_pair_q6_k<Arch, 10>(scales));
          chunk(qx + 64, codes.q[2], scale_pair_q6_k<Arch, 12>(scales));
          chunk(qx + 96, codes.q[3], scale_pair_q6_k<Arch, 14>(scales));
        }
      }
      acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(wb.d) * xb.d), _mm256_cvtepi32_ps(sumi), acc[r]);
    }
  }
  for (int r = 0; r < kRows; ++r) out[r] = hsum(acc[r]);
}
#else
inline constexpr bool kIntegerDot = false;
#endif

/// Outputs [n_begin, n_end) of one activation row: groups of 4 rows, then single rows.
template <class Arch, class Block>
inline void quant_matvec_range(float* out, const Block* w, std::int64_t nb, const quant_activation_t<Block>* xq,
                               std::int64_t n_begin, std::int64_t n_end, const Epilogue& ep) {
  constexpr int kGroup = 4;
  float dots[kGroup];
  for (std::int64_t n = n_begin; n < n_end;) {
    const int rows = n + kGroup <= n_end ? kGroup : 1;
#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#if LAV2_QUANT_DOT512  // the AVX-512 unit: quant_dot512.hpp (q8_0, q4_0), quant_k_dot512.hpp (K-quants)
    if (rows == kGroup) quant_dot_rows_512<Arch, kGroup>(dots, w + n * nb, nb, xq);
    else quant_dot_rows_512<Arch, 1>(dots, w + n * nb, nb, xq);
#else
    if (rows == kGroup) quant_dot_rows<Arch, kGroup>(dots, w + n * nb, nb, xq);
    else quant_dot_rows<Arch, 1>(dots, w + n * nb, nb, xq);
#endif
#else
    for (int r = 0; r < rows; ++r) dots[r] = ref::quant_dot(w + (n + r) * nb, xq, nb);
#endif
    for (int r = 0; r < rows; ++r) out[n + r] = ep.apply(dots[r], n + r, out[n + r]);
    n += rows;
  }
}

/// The same for q4_0_x8: whole groups of eight rows by quant_x8_dot.hpp (the threads' blocks are
/// multiples of 48 rows, so only a caller's odd range meets a partial group: its rows go alone,
/// through the reference dot).
template <class Arch>
inline void quant_matvec_range(float* out, const BlockQ4_0x8* w, std::int64_t nb, const BlockQ8_0* xq,
                               std::int64_t n_begin, std::int64_t n_end, const Epilogue& ep) {
  float dots[kX8Rows];
  for (std::int64_t n = n_begin; n < n_end;) {
    if (n % kX8Rows == 0 && n + kX8Rows <= n_end) {
#if LAV2_QUANT_X8_DOT
      quant_dot_x8<Arch>(dots, w + (n / kX8Rows) * nb, nb, xq);
#else
      for (int r = 0; r < kX8Rows; ++r) dots[r] = ref::row_dot(w, nb, n + r, xq);
#endif
      for (int r = 0; r < kX8Rows; ++r) out[n + r] = ep.apply(dots[r], n + r, out[n + r]);
      n += kX8Rows;
    } else {
      out[n] = ep.apply(ref::row_dot(w, nb, n, xq), n, out[n]);
      ++n;
    }
  }
}

/// The decode path: out (M, N) for M < kQuantGemmMinRows activation rows.
template <class Arch, class Block>
void quant_matvec(ThreadPool& pool, float* out, const float* x, const Block* w, std::int64_t M, std::int64_t N,
                  std::int64_t K, const Epilogue& ep) {
  using Act = quant_activation_t<Block>;
  const std::int64_t nb = K / quant_block_values_v<Block>;
  // The quantised rows, in this thread's reusable scratch (no allocation per token).
  std::unique_ptr<AlignedBuffer> own;
  const std::int64_t floats = (M * nb * std::int64_t(sizeof(Act)) + 3) / 4;
  auto* xq = reinterpret_cast<Act*>(thread_scratch<QuantXTag>(floats, own));
  for (std::int64_t m = 0; m < M; ++m) quantize_row(x + m * K, xq + m * nb, K);
  pool.parallel_for_guided(
      N,
      [&](std::int64_t n_begin, std::int64_t n_end) {
        for (std::int64_t m = 0; m < M; ++m)
          quant_matvec_range<Arch>(out + m * N, w, nb, xq + m * nb, n_begin, n_end, ep);
      },
      /*grain=*/48);
}

}  // namespace lav2::kernels::simd::detail
