// The one comparison of every test: the largest |tested - reference|, where any NaN or infinity on
// either side makes it NaN, so that it fails every tolerance check (NaN <= tol and NaN >= tol are
// both false). A plain std::max over the differences would let NaN pass: max(m, NaN) is m.
#pragma once

#include <cstdint>
#include <vector>

#include <lav2/kernels/selfcheck.hpp>
#include <lav2/tensor/tensor.hpp>

namespace lav2::test {

/// Largest |a[i] - b[i]| over n values; NaN when any value is not finite.
inline double max_abs_diff(const float* a, const float* b, std::int64_t n) {
  return kernels::check::max_abs_diff(a, b, n);
}
inline double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return NAN;  // a size mismatch fails like a non-finite value
  return max_abs_diff(a.data(), b.data(), std::int64_t(a.size()));
}
inline double max_abs_diff(const Tensor<float>& a, const Tensor<float>& b) {
  if (a.shape() != b.shape()) return NAN;
  return max_abs_diff(a.data(), b.data(), a.numel());
}
inline double max_abs_diff(const std::vector<float>& a, const Tensor<float>& b) {
  if (std::int64_t(a.size()) != b.numel()) return NAN;
  return max_abs_diff(a.data(), b.data(), b.numel());
}

/// Largest |a[i]| (the scale of a relative tolerance); NaN when any value is not finite.
inline double max_abs(const float* a, std::int64_t n) {
  double m = 0.0;
  for (std::int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(a[i])) return NAN;
    m = std::max(m, std::fabs(double(a[i])));
  }
  return m;
}

}  // namespace lav2::test
