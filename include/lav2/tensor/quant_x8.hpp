// q4_0 repacked for the CPU: eight weight rows interleaved block by block (the layout llama.cpp's
// CPU "repack" buffers and ik_llama.cpp's -rtr use for the same reason). An in-memory layout
// only: files hold ggml's q4_0 rows, and the model repacks them at load (model/weights_repack.hpp).
//
//   BlockQ4_0x8 (144 bytes = 8 q4_0 blocks): f16 d[8], uint8 qs[8][16]
//   group g, block b holds block b of rows 8g .. 8g+7: d[r] and qs[r] are that row's d and qs.
//   A matrix of N rows (N a multiple of 8) and nb blocks per row is N/8 * nb of them, group-major:
//   group g's blocks are [g * nb, (g + 1) * nb).
//
// Why: in row-major q4_0 the 16 code bytes of consecutive blocks sit 18 bytes apart between f16
// scales, so a SIMD dot assembles every register from two loads and widens each scale alone. Here
// one 512-bit load holds block b of four rows, one 128-bit load the eight rows' scales, and the
// activation block is shared by all eight rows: about a third of the instructions per weight
// (kernels/simd/quant_x8_dot.hpp). The values, and every dot product's integer sums, are those of
// the q4_0 rows, bit for bit.
#pragma once

#include <cstdint>
#include <cstring>

#include "lav2/tensor/quant.hpp"

namespace lav2 {

inline constexpr int kX8Rows = 8;

struct BlockQ4_0x8 {
  std::uint16_t d[kX8Rows];                   ///< f16 scale of each row's block
  std::uint8_t qs[kX8Rows][kQuantBlock / 2];  ///< each row's nibbles, as in BlockQ4_0
};
static_assert(sizeof(BlockQ4_0x8) == 8 * sizeof(BlockQ4_0), "the same bytes as eight q4_0 blocks");

/// \brief src: `rows` (a multiple of 8) q4_0 rows of `nb` blocks -> dst: rows / 8 * nb groups.
inline void repack_q4_0_x8(const BlockQ4_0* src, std::int64_t rows, std::int64_t nb, BlockQ4_0x8* dst) {
  for (std::int64_t g = 0; g < rows / kX8Rows; ++g)
    for (std::int64_t b = 0; b < nb; ++b) {
      BlockQ4_0x8& out = dst[g * nb + b];
      for (int r = 0; r < kX8Rows; ++r) {
        const BlockQ4_0& in = src[(g * kX8Rows + r) * nb + b];
        out.d[r] = in.d;
        std::memcpy(out.qs[r], in.qs, sizeof in.qs);
      }
    }
}

/// \brief Block b of row `lane` of a group, as a q4_0 block.
inline BlockQ4_0 x8_block(const BlockQ4_0x8& g, int lane) {
  BlockQ4_0 out;
  out.d = g.d[lane];
  std::memcpy(out.qs, g.qs[lane], sizeof out.qs);
  return out;
}

/// \brief Row n of a repacked matrix of nb blocks per row, as q4_0 blocks: out[0, nb).
inline void x8_row(const BlockQ4_0x8* w, std::int64_t nb, std::int64_t n, BlockQ4_0* out) {
  const BlockQ4_0x8* g = w + (n / kX8Rows) * nb;
  for (std::int64_t b = 0; b < nb; ++b) out[b] = x8_block(g[b], int(n % kX8Rows));
}

/// \brief Dequantises `k` values (a multiple of 32) of row `lane` from the group's blocks `g`.
inline void dequantize_x8_lane(const BlockQ4_0x8* g, int lane, float* out, std::int64_t k) {
  for (std::int64_t b = 0; b < k / kQuantBlock; ++b) {
    const BlockQ4_0 blk = x8_block(g[b], lane);
    dequantize_row_q4_0(&blk, out + b * kQuantBlock, kQuantBlock);
  }
}

}  // namespace lav2
