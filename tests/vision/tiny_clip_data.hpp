// Test data of the tiny CLIP fixture (tests/data/tiny_clip, made by tools/reference/
// make_clip_fixture.py) shared by the vision tests.
#pragma once

#include <doctest/doctest.h>

#include <string>

#include "common/compare.hpp"
#include "lav2/io/npy.hpp"

namespace lav2::test {

inline std::string data_path(const std::string& name) { return std::string(LAV2_TEST_DATA_DIR) + "/" + name; }
/// A float64 PyTorch reference output of tiny_clip/golden as f32.
inline Tensor<float> clip_golden(const std::string& name) {
  return io::read_npy_as<float>(data_path("tiny_clip/golden/" + name));
}
/// max_abs_diff over the values: the goldens carry a leading batch dim of 1, so only the counts
/// must agree.
inline double values_diff(const Tensor<float>& a, const Tensor<float>& b) {
  REQUIRE(a.numel() == b.numel());
  return max_abs_diff(a.data(), b.data(), a.numel());
}

}  // namespace lav2::test
