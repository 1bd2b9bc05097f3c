// Scratch buffers of the training ops: each slot grows to the largest size asked of it and is
// then reused, so a training step of fixed shapes allocates only in its first call (no
// allocation in the inner loops).
#pragma once

#include <cstddef>
#include <cstdint>

#include "lav2/core/aligned_alloc.hpp"

namespace lav2::train {

/// \brief Named scratch slots for the ops of train/ (one Workspace per thread of ops).
struct Workspace {
  AlignedVector<float> a, b, c, d, e, f, g;
  AlignedVector<std::uint16_t> half;  ///< a transposed f16 / bf16 weight

  template <class T>
  static T* grow(AlignedVector<T>& v, std::int64_t n) {
    if (v.size() < std::size_t(n)) v.resize(std::size_t(n));
    return v.data();
  }
};

/// \brief out (cols, rows) = in (rows, cols) transposed, in 32 x 32 tiles so that both sides
/// stay in cache.
template <class T>
void transpose(T* out, const T* in, std::int64_t rows, std::int64_t cols) {
  constexpr std::int64_t kTile = 32;
  for (std::int64_t r0 = 0; r0 < rows; r0 += kTile)
    for (std::int64_t c0 = 0; c0 < cols; c0 += kTile) {
      const std::int64_t r1 = r0 + kTile < rows ? r0 + kTile : rows, c1 = c0 + kTile < cols ? c0 + kTile : cols;
      for (std::int64_t r = r0; r < r1; ++r)
        for (std::int64_t c = c0; c < c1; ++c) out[c * rows + r] = in[r * cols + c];
    }
}

}  // namespace lav2::train
