// Every SIMD vector kernel against its scalar reference at sizes 1, lanes-1, lanes, lanes+1, 4096
// and 11008. Tolerances are written at each check: atol + rtol * max |reference|.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include <lav2/kernels/ref/ops.hpp>
#include <lav2/kernels/selfcheck.hpp>

#include "kernels/levels.hpp"

using namespace lav2::kernels;
using check::random_vector;
using lav2::kernels::test::for_each_level;
using lav2::kernels::test::level_attention;
using lav2::kernels::test::level_matmul;

namespace {

std::vector<std::int64_t> test_sizes(std::int64_t kLanes) {
  std::vector<std::int64_t> s{1, kLanes + 1, 4096, 11008, kLanes};
  if (kLanes > 1) s.push_back(kLanes - 1);
  return s;
}

// Checks `got` against `want` with tolerance atol + rtol * max|want|.
void expect_close(const char* what, std::int64_t n, const std::vector<float>& got, const std::vector<float>& want,
                  double atol, double rtol) {
  const auto r = check::compare(what, got.data(), want.data(), std::int64_t(got.size()), atol, rtol);
  INFO(what, " n=", n, " max|diff|=", r.max_diff, " tolerance=", r.tolerance);
  CHECK(r.ok());
}
}  // namespace

TEST_CASE("dot, axpy, add: simd vs ref") {
  for_each_level([&](const KernelTable& L) {
    [[maybe_unused]] const std::int64_t kLanes = L.float_lanes;
    for (std::int64_t n : test_sizes(kLanes)) {
      const auto a = random_vector(n, 1), b = random_vector(n, 2);
      // dot: f32 partial sums vs a double reference; |a b| <= 1, so 1e-6 * sqrt(n) covers the
      // expected sqrt(n)-ulp growth with a wide margin.
      const float g = L.dot(a.data(), b.data(), n), r = ref::dot(a.data(), b.data(), n);
      INFO("dot n=", n);
      CHECK(std::fabs(g - r) <= 1e-6 * std::sqrt(double(n)));
      auto yg = a, yr = a;
      L.axpy(yg.data(), -0.3f, b.data(), n);
      ref::axpy(yr.data(), -0.3f, b.data(), n);
      expect_close("axpy", n, yg, yr, 2.5e-7, 0.0);  // one FMA vs mul+add: at most 1 ulp of |y| <= 1.3
      yg = a, yr = a;
      L.add(yg.data(), b.data(), n);
      ref::add(yr.data(), b.data(), n);
      expect_close("add", n, yg, yr, 0.0, 0.0);  // exact: the same single rounding
    }
  });
}

TEST_CASE("rmsnorm and layernorm: simd vs ref") {
  for_each_level([&](const KernelTable& L) {
    [[maybe_unused]] const std::int64_t kLanes = L.float_lanes;
    for (std::int64_t n : test_sizes(kLanes)) {
      const auto x = random_vector(n, 3, -4.0f, 4.0f), w = random_vector(n, 4), bias = random_vector(n, 5);
      std::vector<float> g(static_cast<std::size_t>(n)), r(static_cast<std::size_t>(n));
      for (const float* weight : {w.data(), static_cast<const float*>(nullptr)}) {
        L.rmsnorm(g.data(), x.data(), weight, n, 1e-5f);
        ref::rmsnorm(r.data(), x.data(), weight, n, 1e-5f);
        expect_close("rmsnorm", n, g, r, 0.0, 2e-6);  // scale from an f32 sum: a few ulp relative
      }
      // Offset inputs (mean 3) exercise the two-pass variance.
      auto xo = x;
      for (auto& v : xo) v += 3.0f;
      L.layernorm(g.data(), xo.data(), w.data(), bias.data(), n, 1e-5f);
      ref::layernorm(r.data(), xo.data(), w.data(), bias.data(), n, 1e-5f);
      expect_close("layernorm", n, g, r, 1e-6, 4e-6);  // f32 mean/var vs double
      L.layernorm(g.data(), xo.data(), nullptr, nullptr, n, 1e-5f);
      ref::layernorm(r.data(), xo.data(), nullptr, nullptr, n, 1e-5f);
      expect_close("layernorm(no affine)", n, g, r, 1e-6, 4e-6);
    }
  });
}

TEST_CASE("rope_interleaved: simd vs ref, and a quarter turn by hand") {
  for_each_level([&](const KernelTable& L) {
    [[maybe_unused]] const std::int64_t kLanes = L.float_lanes;
    for (std::int64_t half : test_sizes(kLanes)) {
      const std::int64_t hd = 2 * half;
      const auto x = random_vector(hd, 6), ang = random_vector(half, 7, -3.2f, 3.2f);
      std::vector<float> c(static_cast<std::size_t>(half)), s(static_cast<std::size_t>(half));
      for (std::size_t i = 0; i < c.size(); ++i) c[i] = std::cos(ang[i]), s[i] = std::sin(ang[i]);
      auto g = x, r = x;
      L.rope_interleaved(g.data(), hd, c.data(), s.data());
      ref::rope_interleaved(r.data(), hd, c.data(), s.data());
      expect_close("rope", hd, g, r, 2.5e-7, 0.0);  // FMA contraction may differ: 1-2 ulp of |x| <= 1.42
    }
    float x[4] = {1.0f, 2.0f, 3.0f, 4.0f};
    const float c[2] = {0.0f, 1.0f}, s[2] = {1.0f, 0.0f};  // pair 0 turns by 90 degrees, pair 1 stays
    L.rope_interleaved(x, 4, c, s);
    CHECK(x[0] == -2.0f);
    CHECK(x[1] == 1.0f);
    CHECK(x[2] == 3.0f);
    CHECK(x[3] == 4.0f);
  });
}

TEST_CASE("softmax and activations: simd vs ref") {
  for_each_level([&](const KernelTable& L) {
    [[maybe_unused]] const std::int64_t kLanes = L.float_lanes;
    for (std::int64_t n : test_sizes(kLanes)) {
      const auto x = random_vector(n, 8, -10.0f, 10.0f), up = random_vector(n, 9);
      auto g = x, r = x;
      L.softmax(g.data(), n);
      ref::softmax(r.data(), n);
      expect_close("softmax", n, g, r, 0.0, 1e-5);  // xsimd exp (<= 2 ulp) plus the f32 sum
      double total = 0;
      for (float v : g) total += v;
      CHECK(std::fabs(total - 1.0) < 1e-5);
      g = x, r = x;
      L.silu(g.data(), n);
      ref::silu(r.data(), n);
      expect_close("silu", n, g, r, 1e-6, 0.0);
      std::vector<float> go(static_cast<std::size_t>(n)), ro(static_cast<std::size_t>(n));
      L.swiglu(go.data(), x.data(), up.data(), n);
      ref::swiglu(ro.data(), x.data(), up.data(), n);
      expect_close("swiglu", n, go, ro, 1e-6, 0.0);
      g = x, r = x;
      L.gelu_erf(g.data(), n);
      ref::gelu_erf(r.data(), n);
      expect_close("gelu_erf", n, g, r, 1e-6, 0.0);
      g = x, r = x;
      L.quick_gelu(g.data(), n);
      ref::quick_gelu(r.data(), n);
      expect_close("quick_gelu", n, g, r, 1e-6, 0.0);
    }
  });
}

TEST_CASE("softmax keeps large logits finite and gelu matches known values") {
  for_each_level([&](const KernelTable& L) {
    [[maybe_unused]] const std::int64_t kLanes = L.float_lanes;
    std::vector<float> x{1000.0f, 999.0f, -1000.0f};
    L.softmax(x.data(), 3);
    CHECK(x[0] == doctest::Approx(1.0 / (1.0 + std::exp(-1.0))).epsilon(1e-6));
    CHECK(x[2] == 0.0f);
    float v[3] = {0.0f, 1.0f, -1.0f};
    L.gelu_erf(v, 3);
    CHECK(v[0] == 0.0f);
    CHECK(v[1] == doctest::Approx(0.8413447460685429).epsilon(1e-6));
    CHECK(v[2] == doctest::Approx(-0.15865525393145707).epsilon(1e-6));
  });
}

TEST_CASE("attention_head and the gated adapter step: simd vs ref") {
  for_each_level([&](const KernelTable& L) {
    [[maybe_unused]] const std::int64_t kLanes = L.float_lanes;
    for (std::int64_t n_keys : test_sizes(kLanes)) {
      if (n_keys > 4096) continue;  // 11008 keys is beyond any context; 4096 covers the long case
      for (std::int64_t hd : {std::int64_t(64), std::int64_t(128), kLanes + 1}) {
        const std::int64_t stride = 3 * hd + 1;  // odd stride: unaligned rows of an interleaved cache
        const auto q = random_vector(hd, 10), k = random_vector(n_keys * stride, 11),
                   v = random_vector(n_keys * stride, 12);
        std::vector<float> scratch(static_cast<std::size_t>(n_keys)), g(static_cast<std::size_t>(hd)),
            r(static_cast<std::size_t>(hd));
        const float scale = 1.0f / std::sqrt(float(hd));
        level_attention(L, g.data(), q.data(), k.data(), v.data(), n_keys, hd, stride, scale, scratch.data());
        ref::attention_head(r.data(), q.data(), k.data(), v.data(), n_keys, hd, stride, scale, scratch.data());
        expect_close("attention_head", n_keys, g, r, 1e-6, 0.0);  // convex mix of |v| <= 1
        g = r = random_vector(hd, 13);
        const float gate = std::tanh(0.8f) * 0.5f;
        L.adapter_attention_head(g.data(), q.data(), k.data(), v.data(), n_keys, hd, stride, scale, gate,
                                 scratch.data());
        ref::adapter_attention_head(r.data(), q.data(), k.data(), v.data(), n_keys, hd, stride, scale, gate,
                                    scratch.data());
        expect_close("adapter_attention_head", n_keys, g, r, 1e-6, 0.0);
      }
    }
  });
}

TEST_CASE("adapter step with gate 0 leaves the output unchanged (zero-init gating)") {
  for_each_level([&](const KernelTable& L) {
    [[maybe_unused]] const std::int64_t kLanes = L.float_lanes;
    const std::int64_t hd = 128, n = 10;
    const auto q = random_vector(hd, 14), k = random_vector(n * hd, 15), v = random_vector(n * hd, 16);
    auto out = random_vector(hd, 17);
    const auto before = out;
    std::vector<float> scratch(n);
    L.adapter_attention_head(out.data(), q.data(), k.data(), v.data(), n, hd, hd, 0.1f, 0.0f, scratch.data());
    CHECK(out == before);
  });
}
