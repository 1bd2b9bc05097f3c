// Helpers shared by the model tests.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

#include <lav2/core/error.hpp>

namespace lav2::test {

/// Largest |a[i] - b[i]| over n values.
inline float max_abs_diff(const float* a, const float* b, std::int64_t n) {
  float m = 0.0f;
  for (std::int64_t i = 0; i < n; ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

/// The message of the lav2::error that fn() throws, or "(no error)".
template <class Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const lav2::error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace lav2::test
