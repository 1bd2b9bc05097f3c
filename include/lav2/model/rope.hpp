// RoPE angle tables, computed as the official precompute_freqs_cis does (spec section 1.3):
//   freqs[j] = 1 / theta^(2j / head_dim)   (float32 pow, j = 0 .. head_dim/2 - 1)
//   angle[t, j] = t * freqs[j]             (float32), table rows t = 0 .. n_positions - 1
#pragma once

#include <cmath>
#include <cstdint>

#include "lav2/tensor/tensor.hpp"

namespace lav2::model {

/// \brief cos and sin of every (position, pair) angle: each (n_positions, head_dim / 2).
struct RopeTables {
  Tensor<float> cos, sin;

  RopeTables() = default;
  RopeTables(int head_dim, int n_positions, float theta) : cos(Shape{n_positions, head_dim / 2}), sin(Shape{n_positions, head_dim / 2}) {
    const int half = head_dim / 2;
    for (int j = 0; j < half; ++j) {
      // torch: 1.0 / (theta ** (arange(0, dim, 2).float() / dim)), all in float32.
      const float exponent = float(2 * j) / float(head_dim);
      const float freq = 1.0f / std::pow(theta, exponent);
      for (int t = 0; t < n_positions; ++t) {
        const float angle = float(t) * freq;
        cos[std::int64_t(t) * half + j] = std::cos(angle);
        sin[std::int64_t(t) * half + j] = std::sin(angle);
      }
    }
  }
  const float* cos_row(std::int64_t pos) const { return cos.data() + pos * cos.dim(1); }
  const float* sin_row(std::int64_t pos) const { return sin.data() + pos * sin.dim(1); }
};

}  // namespace lav2::model
