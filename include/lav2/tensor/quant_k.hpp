// GGML's K-quant weight formats q4_K and q6_K, and the q8_K blocks their dot products take the
// activations in: the same bytes and the same arithmetic as ggml (ggml-common.h, ggml-quants.c),
// so that llama.cpp's files read as llama.cpp reads them. A super-block holds 256 values.
//
//   q4_K block (144 bytes): f16 d, f16 dmin, uint8 scales[12], uint8 qs[128]
//     8 sub-blocks of 32 values, each with a 6-bit scale sc[j] and a 6-bit min mn[j] packed in
//     `scales` (unpack_scales_min_q4_k):
//       j < 4:  sc = scales[j] & 63,                               mn = scales[j + 4] & 63
//       j >= 4: sc = (scales[j + 4] & 15) | (scales[j - 4] >> 6) << 4,
//               mn = (scales[j + 4] >> 4) | (scales[j] >> 6) << 4
//     value v (sub-block j = v / 32) = (d * sc[j]) * q - (dmin * mn[j]), q = 4 bits: for the
//     64 values 64c .. 64c + 63, byte qs[32c + l] holds value 64c + l in its low nibble and
//     value 64c + 32 + l in its high nibble.
//   q6_K block (210 bytes): uint8 ql[128], uint8 qh[64], int8 scales[16], f16 d
//     16 sub-blocks of 16 values with an 8-bit signed scale each; value v = (d * scales[v / 16]) *
//     (q - 32), q = 6 bits: the low 4 from ql, the high 2 from qh. In half h (values 128h ..
//     128h + 127) with l = 0..31, ql' = ql + 64h, qh' = qh + 32h:
//       value 128h + l      : ql'[l] & 15,       (qh'[l] >> 0) & 3
//       value 128h + l + 32 : ql'[l + 32] & 15,  (qh'[l] >> 2) & 3
//       value 128h + l + 64 : ql'[l] >> 4,       (qh'[l] >> 4) & 3
//       value 128h + l + 96 : ql'[l + 32] >> 4,  (qh'[l] >> 6) & 3
//   q8_K block (292 bytes, never stored in files): f32 d, int8 qs[256], int16 bsums[16]
//     value v = d * qs[v]; bsums[i] = sum of qs[16i .. 16i + 15] (for q4_K's mins term).
//
// The products are formed in that order in f32 ((d * sc) first, as ggml's dequantize_row_q4_K /
// _q6_K do). For q4_K both products are exact (11 + 6 + 4 bits), so one rounding at the
// subtraction; for q6_K (d * sc) is exact and the product with q rounds once.
//
// q8_K quantisation is ggml's quantize_row_q8_K_ref: m = the value of largest |x| (first on ties),
// iscale = -127 / m, q = min(127, round_half_even(iscale * x)), d = 1 / iscale (f32); an all-zero
// block has d = 0.
//
// quantize_row_q4_k / _q6_k here are simple reference quantisers for tests and benchmarks (a
// min/max fit per sub-block, then the scales to 6 / 8 bits). They are NOT bit-identical to
// llama.cpp's quantize_row_q4_K_ref / _q6_K_ref (which search for the best scale); lav2 only reads
// K-quant files, it never writes them for llama.cpp.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "lav2/tensor/dtype.hpp"

namespace lav2 {

inline constexpr int kQuantBlockK = 256;  ///< values per K-quant super-block

struct BlockQ4_K {
  std::uint16_t d;                    ///< f16 scale of the sub-block scales
  std::uint16_t dmin;                 ///< f16 scale of the sub-block mins
  std::uint8_t scales[12];            ///< 8 scales and 8 mins, 6 bits each (file comment)
  std::uint8_t qs[kQuantBlockK / 2];  ///< 4-bit codes
};
struct BlockQ6_K {
  std::uint8_t ql[kQuantBlockK / 2];  ///< low 4 bits of the codes
  std::uint8_t qh[kQuantBlockK / 4];  ///< high 2 bits of the codes
  std::int8_t scales[kQuantBlockK / 16];
  std::uint16_t d;  ///< f16 super-block scale
};
struct BlockQ8_K {
  float d;
  std::int8_t qs[kQuantBlockK];
  std::int16_t bsums[kQuantBlockK / 16];  ///< sums of 16 consecutive qs
};
static_assert(sizeof(BlockQ4_K) == 144 && alignof(BlockQ4_K) == 2, "ggml's block_q4_K layout");
static_assert(sizeof(BlockQ6_K) == 210 && alignof(BlockQ6_K) == 2, "ggml's block_q6_K layout");
static_assert(sizeof(BlockQ8_K) == 292, "ggml's block_q8_K layout");

/// \brief Round to nearest, ties to even, for |f| < 2^22: adding 1.5 * 2^23 leaves the integer in
/// the low mantissa bits (ggml's nearest_int; the FPU's default rounding does the tie-breaking).
inline int round_half_even(float f) {
  const float v = f + 12582912.0f;
  return int(f32_bits(v) & 0x007fffffu) - 0x00400000;
}

/// \brief round_half_even(v) clamped to [lo, hi] (v clamped first, so any finite v is in range).
inline int round_clamped(float v, int lo, int hi) {
  return std::clamp(round_half_even(std::clamp(v, float(lo), float(hi))), lo, hi);
}

/// \brief The 8 scales and 8 mins (0..63) of a q4_K block's 12 packed bytes.
inline void unpack_scales_min_q4_k(const std::uint8_t* s, std::uint8_t* sc, std::uint8_t* mn) {
  for (int j = 0; j < 4; ++j) {
    sc[j] = s[j] & 63;
    mn[j] = s[j + 4] & 63;
    sc[j + 4] = std::uint8_t((s[j + 8] & 15) | ((s[j] >> 6) << 4));
    mn[j + 4] = std::uint8_t((s[j + 8] >> 4) | ((s[j + 4] >> 6) << 4));
  }
}

/// \brief The 256 codes (0..15) of a q4_K block, in value order.
inline void unpack_codes_q4_k(const BlockQ4_K& b, std::uint8_t* q) {
  for (int c = 0; c < 4; ++c)
    for (int l = 0; l < 32; ++l) {
      q[64 * c + l] = b.qs[32 * c + l] & 15;
      q[64 * c + 32 + l] = b.qs[32 * c + l] >> 4;
    }
}

/// \brief The 256 codes of a q6_K block minus 32 (-32..31), in value order.
inline void unpack_codes_q6_k(const BlockQ6_K& b, std::int8_t* q) {
  for (int h = 0; h < 2; ++h) {
    const std::uint8_t* ql = b.ql + 64 * h;
    const std::uint8_t* qh = b.qh + 32 * h;
    std::int8_t* y = q + 128 * h;
    for (int l = 0; l < 32; ++l) {
      y[l] = std::int8_t(((ql[l] & 15) | (((qh[l] >> 0) & 3) << 4)) - 32);
      y[l + 32] = std::int8_t(((ql[l + 32] & 15) | (((qh[l] >> 2) & 3) << 4)) - 32);
      y[l + 64] = std::int8_t(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
      y[l + 96] = std::int8_t(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
    }
  }
}

/// \brief k/256 q4_K blocks -> y (k).
inline void dequantize_row_q4_k(const BlockQ4_K* x, float* y, std::int64_t k) {
  std::uint8_t sc[8], mn[8], q[kQuantBlockK];
  for (std::int64_t b = 0; b < k / kQuantBlockK; ++b, y += kQuantBlockK) {
    const float d = f16_to_f32(x[b].d), dmin = f16_to_f32(x[b].dmin);
    unpack_scales_min_q4_k(x[b].scales, sc, mn);
    unpack_codes_q4_k(x[b], q);
    for (int j = 0; j < 8; ++j) {
      const float dj = d * float(sc[j]), mj = dmin * float(mn[j]);
      for (int l = 0; l < 32; ++l) y[32 * j + l] = dj * float(q[32 * j + l]) - mj;
    }
  }
}

/// \brief k/256 q6_K blocks -> y (k).
inline void dequantize_row_q6_k(const BlockQ6_K* x, float* y, std::int64_t k) {
  std::int8_t q[kQuantBlockK];
  for (std::int64_t b = 0; b < k / kQuantBlockK; ++b, y += kQuantBlockK) {
    const float d = f16_to_f32(x[b].d);
    unpack_codes_q6_k(x[b], q);
    for (int j = 0; j < 16; ++j) {
      const float dj = d * float(x[b].scales[j]);
      for (int l = 0; l < 16; ++l) y[16 * j + l] = dj * float(q[16 * j + l]);
    }
  }
}

/// \brief x (k, a multiple of 256) -> k/256 q8_K blocks, as ggml's quantize_row_q8_K_ref.
inline void quantize_row_q8_k(const float* x, BlockQ8_K* y, std::int64_t k) {
  for (std::int64_t b = 0; b < k / kQuantBlockK; ++b, x += kQuantBlockK) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < kQuantBlockK; ++j)
      if (std::fabs(x[j]) > amax) amax = std::fabs(x[j]), max = x[j];
    if (amax == 0.0f) {
      std::memset(&y[b], 0, sizeof(BlockQ8_K));
      continue;
    }
    const float iscale = -127.0f / max;
    for (int j = 0; j < kQuantBlockK; ++j) y[b].qs[j] = std::int8_t(std::min(127, round_half_even(iscale * x[j])));
    for (int i = 0; i < kQuantBlockK / 16; ++i) {
      int s = 0;
      for (int l = 0; l < 16; ++l) s += y[b].qs[16 * i + l];
      y[b].bsums[i] = std::int16_t(s);
    }
    y[b].d = 1.0f / iscale;
  }
}

/// \brief k/256 q8_K blocks -> y (k).
inline void dequantize_row_q8_k(const BlockQ8_K* x, float* y, std::int64_t k) {
  for (std::int64_t b = 0; b < k / kQuantBlockK; ++b)
    for (int j = 0; j < kQuantBlockK; ++j) y[b * kQuantBlockK + j] = x[b].d * float(x[b].qs[j]);
}

/// \brief A reference q4_K quantiser (not llama.cpp's; see the file comment): per sub-block of 32
/// the range [min(x, 0), max(x)] in 15 steps; scales and mins to 6 bits of d = max scale / 63 and
/// dmin = max min / 63; then each code the nearest step of the stored (rounded) scale and min.
inline void quantize_row_q4_k(const float* x, BlockQ4_K* y, std::int64_t k) {
  for (std::int64_t b = 0; b < k / kQuantBlockK; ++b, x += kQuantBlockK) {
    float scale[8], min[8], max_scale = 0.0f, max_min = 0.0f;
    for (int j = 0; j < 8; ++j) {
      float lo = 0.0f, hi = x[32 * j];
      for (int l = 0; l < 32; ++l) lo = std::min(lo, x[32 * j + l]), hi = std::max(hi, x[32 * j + l]);
      scale[j] = std::max(hi - lo, 0.0f) / 15.0f;
      min[j] = -lo;
      max_scale = std::max(max_scale, scale[j]);
      max_min = std::max(max_min, min[j]);
    }
    BlockQ4_K& o = y[b];
    o.d = f32_to_f16(max_scale / 63.0f);
    o.dmin = f32_to_f16(max_min / 63.0f);
    const float d = f16_to_f32(o.d), dmin = f16_to_f32(o.dmin);
    std::uint8_t sc[8], mn[8];
    for (int j = 0; j < 8; ++j) {
      sc[j] = std::uint8_t(d > 0.0f ? round_clamped(scale[j] / d, 0, 63) : 0);
      mn[j] = std::uint8_t(dmin > 0.0f ? round_clamped(min[j] / dmin, 0, 63) : 0);
    }
    for (int j = 0; j < 4; ++j) {  // the packing unpack_scales_min_q4_k reads
      o.scales[j] = std::uint8_t((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
      o.scales[j + 4] = std::uint8_t((mn[j] & 63) | ((mn[j + 4] >> 4) << 6));
      o.scales[j + 8] = std::uint8_t((sc[j + 4] & 15) | ((mn[j + 4] & 15) << 4));
    }
    std::uint8_t q[kQuantBlockK];
    for (int j = 0; j < 8; ++j) {
      const float dj = d * float(sc[j]), mj = dmin * float(mn[j]);
      for (int l = 0; l < 32; ++l)
        q[32 * j + l] = std::uint8_t(dj > 0.0f ? round_clamped((x[32 * j + l] + mj) / dj, 0, 15) : 0);
    }
    for (int c = 0; c < 4; ++c)
      for (int l = 0; l < 32; ++l) o.qs[32 * c + l] = std::uint8_t(q[64 * c + l] | (q[64 * c + 32 + l] << 4));
  }
}

/// \brief A reference q6_K quantiser (not llama.cpp's; see the file comment): per sub-block of 16
/// the value m of largest |x| maps to code -32 (scale m / -32); the scales to int8 steps of
/// d = max |scale| / 127; each code the nearest step of the stored scale.
inline void quantize_row_q6_k(const float* x, BlockQ6_K* y, std::int64_t k) {
  for (std::int64_t b = 0; b < k / kQuantBlockK; ++b, x += kQuantBlockK) {
    float scale[16], max_abs_scale = 0.0f;
    for (int j = 0; j < 16; ++j) {
      float amax = 0.0f, m = 0.0f;
      for (int l = 0; l < 16; ++l)
        if (std::fabs(x[16 * j + l]) > amax) amax = std::fabs(x[16 * j + l]), m = x[16 * j + l];
      scale[j] = m / -32.0f;
      max_abs_scale = std::max(max_abs_scale, std::fabs(scale[j]));
    }
    BlockQ6_K& o = y[b];
    o.d = f32_to_f16(max_abs_scale / 127.0f);
    const float d = f16_to_f32(o.d);
    std::uint8_t q[kQuantBlockK];
    for (int j = 0; j < 16; ++j) {
      o.scales[j] = std::int8_t(d > 0.0f ? round_clamped(scale[j] / d, -128, 127) : 0);
      const float dj = d * float(o.scales[j]);
      for (int l = 0; l < 16; ++l)
        q[16 * j + l] = std::uint8_t(dj != 0.0f ? round_clamped(x[16 * j + l] / dj + 32.0f, 0, 63) : 32);
    }
    for (int h = 0; h < 2; ++h)  // the packing unpack_codes_q6_k reads
      for (int l = 0; l < 32; ++l) {
        const std::uint8_t* v = q + 128 * h + l;
        o.ql[64 * h + l] = std::uint8_t((v[0] & 15) | ((v[64] & 15) << 4));
        o.ql[64 * h + l + 32] = std::uint8_t((v[32] & 15) | ((v[96] & 15) << 4));
        o.qh[32 * h + l] = std::uint8_t((v[0] >> 4) | ((v[32] >> 4) << 2) | ((v[64] >> 4) << 4) | ((v[96] >> 4) << 6));
      }
  }
}

}  // namespace lav2
