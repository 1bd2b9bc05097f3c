// RoPE angles, computed as the official precompute_freqs_cis does:
//   freqs[j] = 1 / theta^(2j / head_dim)   (float32 pow, j = 0 .. head_dim/2 - 1)
//   angle[t, j] = t * freqs[j]             (float32), then cos and sin of it
// The model keeps the frequencies; each forward call computes the cos / sin rows of the
// positions it runs (a few microseconds), so no table is sized by the longest request.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

namespace lav2::model {

/// \brief The per-pair frequencies of one head size.
class RopeFrequencies {
 public:
  RopeFrequencies() = default;
  RopeFrequencies(int head_dim, float theta) : freqs_(std::size_t(head_dim / 2)) {
    for (int j = 0; j < head_dim / 2; ++j) {
      // torch: 1.0 / (theta ** (arange(0, dim, 2).float() / dim)), all in float32.
      const float exponent = float(2 * j) / float(head_dim);
      freqs_[std::size_t(j)] = 1.0f / std::pow(theta, exponent);
    }
  }
  std::int64_t half() const { return std::int64_t(freqs_.size()); }
  /// cos / sin of the angles of positions pos .. pos + n - 1 into (n, head_dim / 2) rows each.
  void fill(std::int64_t pos, std::int64_t n, float* cos_out, float* sin_out) const {
    const std::int64_t h = half();
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t j = 0; j < h; ++j) {
        const float angle = float(pos + i) * freqs_[std::size_t(j)];
        cos_out[i * h + j] = std::cos(angle);
        sin_out[i * h + j] = std::sin(angle);
      }
  }

 private:
  std::vector<float> freqs_;
};

}  // namespace lav2::model
