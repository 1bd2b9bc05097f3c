// GGML's block-quantised weight formats, q8_0 and q4_0 (and, from quant_k.hpp, the K-quants q4_K
// and q6_K with their q8_K activation blocks): the same bytes and the same arithmetic as
// ggml, so files, sizes and results compare with llama.cpp's.
//
//   q8_0 block (34 bytes):  f16 d, int8 q[32]        value j = d * q[j]
//   q4_0 block (18 bytes):  f16 d, uint8 qs[16]      value j = d * ((qs[j] & 15) - 8),
//                                                    value j + 16 = d * ((qs[j] >> 4) - 8)
//
// Quantisation follows ggml's reference rows (quantize_row_q8_0_ref / quantize_row_q4_0_ref), the
// code llama-quantize uses for deterministic files:
//   q8_0: amax = max |x|, d = amax / 127, q = roundf(x / d)  (round half away from zero)
//   q4_0: m = the x of largest |x| (first one on ties), d = m / -8,
//         q = min(15, (int8)(x / d + 8.5))  (truncation toward zero)
// with 1/d taken once (0 when d is 0) and d stored rounded to f16.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "lav2/tensor/dtype.hpp"
#include "lav2/tensor/quant_k.hpp"

namespace lav2 {

inline constexpr int kQuantBlock = 32;

struct BlockQ8_0 {
  std::uint16_t d;  ///< f16 scale
  std::int8_t q[kQuantBlock];
};
struct BlockQ4_0 {
  std::uint16_t d;                   ///< f16 scale
  std::uint8_t qs[kQuantBlock / 2];  ///< low nibble: value j, high nibble: value j + 16
};
static_assert(sizeof(BlockQ8_0) == 34 && alignof(BlockQ8_0) == 2, "ggml's block_q8_0 layout");
static_assert(sizeof(BlockQ4_0) == 18 && alignof(BlockQ4_0) == 2, "ggml's block_q4_0 layout");

struct BlockQ4_0x8;  // tensor/quant_x8.hpp: eight q4_0 rows interleaved

/// \brief Whether T is one of the weight block types (BlockQ4_0x8 included: it holds a block of
/// eight rows, and every user of this trait steps over its rows by groups).
template <class T>
inline constexpr bool is_quant_block_v =
    std::is_same_v<T, BlockQ8_0> || std::is_same_v<T, BlockQ4_0> || std::is_same_v<T, BlockQ4_K> ||
    std::is_same_v<T, BlockQ6_K> || std::is_same_v<T, BlockQ4_0x8>;

/// \brief Values per block of a block type: 32 (q8_0, q4_0) or 256 (the K-quants, q8_K).
template <class Block>
inline constexpr std::int64_t quant_block_values_v =
    std::is_same_v<Block, BlockQ4_K> || std::is_same_v<Block, BlockQ6_K> || std::is_same_v<Block, BlockQ8_K>
        ? kQuantBlockK
        : kQuantBlock;

/// \brief The block type the activations are quantised to for an integer dot with `Block`
/// weights, as ggml's vec_dot_type: q8_0 for q8_0 / q4_0, q8_K for the K-quants.
template <class Block>
using quant_activation_t = std::conditional_t<quant_block_values_v<Block> == kQuantBlockK, BlockQ8_K, BlockQ8_0>;

/// \brief x (k, a multiple of 32) -> k/32 q8_0 blocks.
inline void quantize_row_q8_0(const float* x, BlockQ8_0* y, std::int64_t k) {
  for (std::int64_t b = 0; b < k / kQuantBlock; ++b, x += kQuantBlock) {
    float amax = 0.0f;
    for (int j = 0; j < kQuantBlock; ++j) amax = std::fmax(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = f32_to_f16(d);
    for (int j = 0; j < kQuantBlock; ++j) y[b].q[j] = std::int8_t(std::roundf(x[j] * id));
  }
}

/// \brief x (k, a multiple of 32) -> k/32 q4_0 blocks.
inline void quantize_row_q4_0(const float* x, BlockQ4_0* y, std::int64_t k) {
  for (std::int64_t b = 0; b < k / kQuantBlock; ++b, x += kQuantBlock) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < kQuantBlock; ++j)
      if (amax < std::fabs(x[j])) amax = std::fabs(x[j]), max = x[j];
    const float d = max / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = f32_to_f16(d);
    for (int j = 0; j < kQuantBlock / 2; ++j) {
      const int lo = std::min(15, int(std::int8_t(x[j] * id + 8.5f)));
      const int hi = std::min(15, int(std::int8_t(x[j + kQuantBlock / 2] * id + 8.5f)));
      y[b].qs[j] = std::uint8_t(lo | (hi << 4));
    }
  }
}

/// \brief k/32 q8_0 blocks -> y (k).
inline void dequantize_row_q8_0(const BlockQ8_0* x, float* y, std::int64_t k) {
  for (std::int64_t b = 0; b < k / kQuantBlock; ++b) {
    const float d = f16_to_f32(x[b].d);
    for (int j = 0; j < kQuantBlock; ++j) y[b * kQuantBlock + j] = d * float(x[b].q[j]);
  }
}

/// \brief k/32 q4_0 blocks -> y (k).
inline void dequantize_row_q4_0(const BlockQ4_0* x, float* y, std::int64_t k) {
  for (std::int64_t b = 0; b < k / kQuantBlock; ++b) {
    const float d = f16_to_f32(x[b].d);
    for (int j = 0; j < kQuantBlock / 2; ++j) {
      y[b * kQuantBlock + j] = d * float((x[b].qs[j] & 15) - 8);
      y[b * kQuantBlock + j + kQuantBlock / 2] = d * float((x[b].qs[j] >> 4) - 8);
    }
  }
}

/// \brief The block type's quantiser and dequantiser, by overload (for code templated on the block).
inline void quantize_row(const float* x, BlockQ8_0* y, std::int64_t k) { quantize_row_q8_0(x, y, k); }
inline void quantize_row(const float* x, BlockQ4_0* y, std::int64_t k) { quantize_row_q4_0(x, y, k); }
inline void dequantize_row(const BlockQ8_0* w, float* out, std::int64_t k) { dequantize_row_q8_0(w, out, k); }
inline void dequantize_row(const BlockQ4_0* w, float* out, std::int64_t k) { dequantize_row_q4_0(w, out, k); }
inline void quantize_row(const float* x, BlockQ4_K* y, std::int64_t k) { quantize_row_q4_k(x, y, k); }
inline void quantize_row(const float* x, BlockQ6_K* y, std::int64_t k) { quantize_row_q6_k(x, y, k); }
inline void quantize_row(const float* x, BlockQ8_K* y, std::int64_t k) { quantize_row_q8_k(x, y, k); }
inline void dequantize_row(const BlockQ4_K* w, float* out, std::int64_t k) { dequantize_row_q4_k(w, out, k); }
inline void dequantize_row(const BlockQ6_K* w, float* out, std::int64_t k) { dequantize_row_q6_k(w, out, k); }
inline void dequantize_row(const BlockQ8_K* w, float* out, std::int64_t k) { dequantize_row_q8_k(w, out, k); }

}  // namespace lav2
