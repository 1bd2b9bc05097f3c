// RMSNorm and LayerNorm backward: the scalar reference against double finite differences, and
// the dispatched SIMD RMSNorm backward against the reference at every kernel level.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include <lav2/kernels/ref/backward.hpp>
#include <lav2/train/norm.hpp>

#include "kernels/levels.hpp"
#include "train/grad_check.hpp"

using namespace lav2::train;
using namespace lav2::train::test;

TEST_CASE("rmsnorm backward: reference vs finite differences") {
  const std::int64_t M = 3, n = 7;
  const float eps = 1e-5f;
  const auto x = rand_f(M * n, 1, -2, 2), w = rand_f(n, 2, 0.5, 1.5), c = rand_f(M * n, 3);
  std::vector<double> xd = to_d(x), wd = to_d(w);
  const std::vector<double> cd = to_d(c);
  auto loss = [&] {
    std::vector<double> y(std::size_t(M * n));
    ref::rmsnorm_forward(y.data(), xd.data(), wd.data(), M, n, double(eps));
    return weighted_sum(cd, y);
  };
  std::vector<float> dx(std::size_t(M * n)), dw(std::size_t(n), 0.0f);
  ref::rmsnorm_backward(dx.data(), dw.data(), c.data(), x.data(), w.data(), M, n, eps);
  expect_grad("rmsnorm dx", dx, fd_grad(xd, loss));
  expect_grad("rmsnorm dw", dw, fd_grad(wd, loss));
  // The kernel reference (kernels/ref/backward.hpp) is the same function.
  std::vector<float> kx(std::size_t(M * n)), kw(std::size_t(n), 0.0f);
  for (std::int64_t m = 0; m < M; ++m)
    lav2::kernels::ref::rmsnorm_backward(kx.data() + m * n, kw.data(), c.data() + m * n, x.data() + m * n, w.data(), n,
                                         eps);
  expect_close("kernel ref dx", kx, dx, 0, 1e-6);
  expect_close("kernel ref dw", kw, dw, 0, 1e-6);
}

TEST_CASE("rmsnorm backward: simd vs ref at every level") {
  lav2::kernels::test::for_each_level([&](const lav2::kernels::KernelTable& L) {
    const std::int64_t lanes = L.float_lanes;
    for (std::int64_t n : {std::int64_t(1), lanes - 1, lanes, lanes + 1, std::int64_t(4096)}) {
      if (n < 1) continue;
      INFO("n = ", n);
      const auto x = rand_f(n, 10), w = rand_f(n, 11, 0.5, 1.5), dy = rand_f(n, 12);
      for (bool with_w : {true, false}) {
        const std::size_t sz = std::size_t(n);
        std::vector<float> gx(sz), rx(sz), gw(sz, 0.5f), rw = gw;
        const float* wp = with_w ? w.data() : nullptr;
        L.rmsnorm_backward(gx.data(), gw.data(), dy.data(), x.data(), wp, n, 1e-6f);
        lav2::kernels::ref::rmsnorm_backward(rx.data(), rw.data(), dy.data(), x.data(), wp, n, 1e-6f);
        // f32 sums in SIMD order vs double: a few ulp of the terms r w dy and c x, which cancel
        // (at n = 1 entirely), so the tolerance is relative to r max|w dy|, not to dx.
        double ss = 0, wdy = 0;
        for (std::int64_t i = 0; i < n; ++i)
          ss += double(x[i]) * x[i], wdy = std::max(wdy, std::fabs(double(dy[i]) * (with_w ? w[i] : 1.0f)));
        const double terms = wdy / std::sqrt(ss / double(n) + 1e-6);
        expect_close("simd rmsnorm dx", gx, rx, 4e-6 * terms, 0);
        expect_close("simd rmsnorm dw", gw, rw, 0, 2e-6);
      }
    }
  });
}

TEST_CASE("rmsnorm backward: train::rmsnorm_backward (dispatched) matches the reference; frozen weight") {
  const std::int64_t M = 4, n = 33;
  const auto x = rand_f(M * n, 20), w = rand_f(n, 21), dy = rand_f(M * n, 22);
  std::vector<float> dx(std::size_t(M * n)), rx(std::size_t(M * n)), dw(std::size_t(n), 0.0f), rw = dw;
  rmsnorm_backward(dx.data(), dw.data(), dy.data(), x.data(), w.data(), M, n, 1e-6f);
  ref::rmsnorm_backward(rx.data(), rw.data(), dy.data(), x.data(), w.data(), M, n, 1e-6f);
  expect_close("dx", dx, rx, 0, 2e-6);
  expect_close("dw", dw, rw, 0, 2e-6);
  std::vector<float> fx(std::size_t(M * n));
  rmsnorm_backward(fx.data(), nullptr, dy.data(), x.data(), w.data(), M, n, 1e-6f);
  expect_close("dx, frozen weight", fx, dx, 0, 0);
}

TEST_CASE("layernorm backward: reference vs finite differences") {
  const std::int64_t M = 3, n = 9;
  const float eps = 1e-5f;
  const auto x = rand_f(M * n, 30, -2, 3), w = rand_f(n, 31, 0.5, 1.5), b = rand_f(n, 32), c = rand_f(M * n, 33);
  std::vector<double> xd = to_d(x), wd = to_d(w), bd = to_d(b);
  const std::vector<double> cd = to_d(c);
  auto loss = [&] {
    std::vector<double> y(std::size_t(M * n));
    ref::layernorm_forward(y.data(), xd.data(), wd.data(), bd.data(), M, n, double(eps));
    return weighted_sum(cd, y);
  };
  std::vector<float> dx(std::size_t(M * n)), dw(std::size_t(n), 0.0f), db(std::size_t(n), 0.0f);
  ref::layernorm_backward(dx.data(), dw.data(), db.data(), c.data(), x.data(), w.data(), M, n, eps);
  expect_grad("layernorm dx", dx, fd_grad(xd, loss));
  expect_grad("layernorm dw", dw, fd_grad(wd, loss));
  expect_grad("layernorm db", db, fd_grad(bd, loss));
  // The f32 forward agrees with the inference kernel.
  std::vector<float> y(std::size_t(M * n)), k(std::size_t(M * n));
  ref::layernorm_forward(y.data(), x.data(), w.data(), b.data(), M, n, eps);
  for (std::int64_t m = 0; m < M; ++m)
    lav2::kernels::ref::layernorm(k.data() + m * n, x.data() + m * n, w.data(), b.data(), n, eps);
  expect_close("layernorm forward vs kernels::ref::layernorm", y, k, 1e-6, 1e-6);
}
