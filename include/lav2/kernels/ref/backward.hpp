// Scalar reference kernels of the backward pass (training, include/lav2/train/): the
// specification the SIMD versions (simd/backward.hpp) are tested against. As ref/ops.hpp:
// reductions in double, left to right; pointers do not alias unless a kernel says so.
#pragma once

#include <cmath>
#include <cstdint>

namespace lav2::kernels::ref {

/// \brief Backward of RMSNorm y = x * r * w, r = 1 / sqrt(mean(x^2) + eps) (ref::rmsnorm):
///   dx_i  = r w_i dy_i - x_i r^3 / n * sum_j w_j dy_j x_j
///   dw_i += dy_i x_i r              (accumulated over rows; skipped when `dw` is null)
/// `dx`, `dy`, `x`, `w`, `dw` are (n); `w` may be null (all ones, no `dw`). r is rounded to f32
/// as the forward rounds it.
inline void rmsnorm_backward(float* dx, float* dw, const float* dy, const float* x, const float* w, std::int64_t n,
                             float eps) {
  double ss = 0.0, sg = 0.0;
  for (std::int64_t i = 0; i < n; ++i) {
    ss += double(x[i]) * double(x[i]);
    sg += double(w ? w[i] : 1.0f) * double(dy[i]) * double(x[i]);
  }
  const float r = float(1.0 / std::sqrt(ss / double(n) + double(eps)));
  const float c = float(double(r) * double(r) * double(r) / double(n) * sg);
  for (std::int64_t i = 0; i < n; ++i) {
    dx[i] = r * (w ? w[i] : 1.0f) * dy[i] - c * x[i];
    if (dw && w) dw[i] += dy[i] * x[i] * r;
  }
}

}  // namespace lav2::kernels::ref
