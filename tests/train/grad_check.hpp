// Finite-difference gradient checks for the training ops. Every op is checked at one point x:
// the test evaluates a scalar L = sum_i c_i y_i(x) (c random, so dL/dy = c is the op's dy) in
// double, perturbing one input at a time, and compares the op's f32 backward with the central
// difference (L(x + h e_i) - L(x - h e_i)) / 2h. The f32 inputs are exact in double, so both sides
// see the same point. The truncation error is O(h^2) (h = 1e-4: ~1e-8 for these smooth maps);
// the f32 backward's rounding is ~1e-6 relative; the tolerance is written at each check.
#pragma once

#include <doctest/doctest.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <lav2/kernels/selfcheck.hpp>

#include "common/compare.hpp"

namespace lav2::train::test {

inline std::vector<float> rand_f(std::int64_t n, std::uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  return kernels::check::random_vector(n, seed, lo, hi);
}
inline std::vector<double> to_d(const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); }
inline std::vector<float> to_f(const std::vector<double>& v) { return std::vector<float>(v.begin(), v.end()); }

/// sum_i c[i] y[i] in double.
inline double weighted_sum(const std::vector<double>& c, const std::vector<double>& y) {
  double s = 0.0;
  for (std::size_t i = 0; i < y.size(); ++i) s += c[i] * y[i];
  return s;
}

/// The central difference of `loss` (which reads x) with respect to every element of x.
inline std::vector<double> fd_grad(std::vector<double>& x, const std::function<double()>& loss, double h = 1e-4) {
  std::vector<double> g(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double keep = x[i];
    x[i] = keep + h;
    const double up = loss();
    x[i] = keep - h;
    const double down = loss();
    x[i] = keep;
    g[i] = (up - down) / (2 * h);
  }
  return g;
}

/// Checks max|got - want| <= atol + rtol * max|want| through the one comparison helper.
inline void expect_close(const std::string& what, const std::vector<float>& got, const std::vector<float>& want,
                         double atol, double rtol) {
  const double diff = lav2::test::max_abs_diff(got, want);
  const double scale = lav2::test::max_abs(want.data(), std::int64_t(want.size()));
  const double tol = atol + rtol * scale;
  INFO(what, ": max|diff| = ", diff, ", tolerance = ", tol, " (max|ref| = ", scale, ")");
  CHECK(diff <= tol);
}

/// The gradient `got` (f32, from the op's backward) against the finite difference `fd`.
inline void expect_grad(const std::string& what, const std::vector<float>& got, const std::vector<double>& fd,
                        double rtol = 1e-4, double atol = 1e-6) {
  expect_close(what + " vs finite differences", got, to_f(fd), atol, rtol);
}

}  // namespace lav2::train::test
