// What a matrix product does with each finished output, fused into the pass that writes it:
// nn.Linear's bias, and a residual connection.
//
//   v = dot(x[m], w[n]) (+ bias[n])          -- the Linear, rounded to f32 first
//   out[m, n] = accumulate ? out[m, n] + v : v
//
// The order is exactly that of a separate `matmul; add bias; add into the residual`, so fusing
// it changes no bit; it saves two passes over the output, which the caller would otherwise make
// on one thread while the pool's others wait.
#pragma once

#include <cstdint>

namespace lav2::kernels {

struct Epilogue {
  const float* bias = nullptr;  ///< (N) added to every row, or null
  bool accumulate = false;      ///< add into `out` instead of overwriting it

  /// The final value of out[m, n] for a dot product `v` of feature n, where `old` is out[m, n].
  float apply(float v, std::int64_t n, float old) const {
    if (bias) v += bias[n];
    return accumulate ? old + v : v;
  }
};

}  // namespace lav2::kernels
