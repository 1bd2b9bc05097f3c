// The self-check passes on the real SIMD kernels and fails when one kernel is broken.
#include <doctest/doctest.h>

#include <cmath>
#include <string>

#include <lav2/kernels/dispatch.hpp>
#include <lav2/kernels/selfcheck.hpp>

#include "kernels/levels.hpp"

using namespace lav2;
using namespace lav2::kernels;

TEST_CASE("selfcheck passes for the SIMD kernels of every level this CPU runs") {
  ThreadPool pool(2);
  int levels = 0;
  test::for_each_level([&](const KernelTable& L) {
    const auto results = check::run(L, check::ref_table(), pool);
    CHECK(results.size() >= 23);
    for (const auto& r : results) {
      INFO(r.name, " max|diff|=", r.max_diff, " tolerance=", r.tolerance);
      CHECK(r.ok());
    }
    CHECK(check::all_ok(results));
    ++levels;
  });
  CHECK(levels >= 1);  // every x86-64 CPU runs at least the SSE2 level
}

TEST_CASE("selfcheck fails when a kernel is deliberately broken") {
  ThreadPool pool(2);
  KernelTable table = active_kernels();
  // An off-by-one bug: the last element of the sum of squares is dropped.
  table.rmsnorm = [](float* out, const float* x, const float* w, std::int64_t n, float eps) {
    ref::rmsnorm(out, x, w, n - 1, eps);
    out[n - 1] = 0.0f;
  };
  // A wrong-tail bug in the f16 matvec: the last input feature is ignored.
  table.matmul_f16 = [](ThreadPool& p, float* o, const float* x, const f16_t* w, std::int64_t M, std::int64_t N,
                        std::int64_t K, Epilogue ep) {
    std::vector<f16_t> w2(w, w + N * K);
    for (std::int64_t n = 0; n < N; ++n) w2[std::size_t(n * K + K - 1)].bits = 0;
    active_kernels().matmul_f16(p, o, x, w2.data(), M, N, K, ep);
  };
  const auto results = check::run(table, check::ref_table(), pool);
  CHECK_FALSE(check::all_ok(results));
  for (const auto& r : results) {
    const bool broken = r.name == "rmsnorm" || r.name == "matvec_f16" || r.name == "gemm_f16";
    INFO(r.name, " max|diff|=", r.max_diff, " tolerance=", r.tolerance);
    CHECK(r.ok() == !broken);
  }
}

TEST_CASE("a kernel that produces NaN or Inf fails the comparison helper") {
  ThreadPool pool(2);
  KernelTable table = active_kernels();
  // One NaN among correct outputs: a plain std::max over |diff| would skip it (max(m, NaN) = m).
  table.silu = [](float* x, std::int64_t n) {
    ref::silu(x, n);
    x[n / 2] = NAN;
  };
  // An overflow to infinity in one GEMM output.
  table.matmul_f32 = [](ThreadPool& p, float* o, const float* x, const float* w, std::int64_t M, std::int64_t N,
                        std::int64_t K, Epilogue ep) {
    active_kernels().matmul_f32(p, o, x, w, M, N, K, ep);
    o[M * N - 1] = INFINITY;
  };
  const auto results = check::run(table, check::ref_table(), pool);
  for (const auto& r : results) {
    const bool broken = r.name == "silu" || r.name == "matvec_f32" || r.name == "gemm_f32";
    INFO(r.name, " max|diff|=", r.max_diff, " tolerance=", r.tolerance);
    if (broken) CHECK_FALSE(r.ok());
    if (r.name == "silu") CHECK(std::isnan(r.max_diff));
  }
  // The helper itself: NaN or Inf on either side, even at equal positions, is a failure.
  const float a[] = {1.0f, 2.0f, NAN}, b[] = {1.0f, 2.0f, NAN}, c[] = {1.0f, INFINITY, 3.0f};
  CHECK(std::isnan(check::max_abs_diff(a, b, 3)));
  CHECK(std::isnan(check::max_abs_diff(c, c, 3)));
  CHECK(check::max_abs_diff(a, b, 2) == 0.0);
  CHECK_FALSE(check::compare("nan", a, b, 3, 1.0, 1.0).ok());
}
