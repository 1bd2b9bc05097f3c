// Embedding, RoPE, SwiGLU (alone and as LLaMA's FFN), GELU, QuickGELU and the official masked
// cross-entropy: each against double finite differences.
#include <doctest/doctest.h>

#include <cstring>

#include <lav2/model/rope.hpp>
#include <lav2/train/activation.hpp>
#include <lav2/train/embedding.hpp>
#include <lav2/train/linear.hpp>
#include <lav2/train/loss.hpp>
#include <lav2/train/rope.hpp>

#include "train/grad_check.hpp"

using namespace lav2;
using namespace lav2::train;
using namespace lav2::train::test;

TEST_CASE("embedding backward: scatter-add of repeated ids; bad ids refused") {
  const std::int64_t V = 5, dim = 3, M = 4;
  const std::int32_t ids[M] = {2, 0, 2, 4};
  const auto table = rand_f(V * dim, 1), c = rand_f(M * dim, 2);
  std::vector<double> td = to_d(table);
  const std::vector<double> cd = to_d(c);
  auto loss = [&] {
    std::vector<double> y(std::size_t(M * dim));
    embedding_forward(y.data(), td.data(), ids, M, V, dim);
    return weighted_sum(cd, y);
  };
  std::vector<float> dt(table.size(), 0.0f);
  embedding_backward(dt.data(), c.data(), ids, M, V, dim);
  expect_grad("d table", dt, fd_grad(td, loss), 1e-6);
  const std::int32_t bad[1] = {5};
  std::vector<float> y(static_cast<std::size_t>(dim));
  CHECK_THROWS_AS(embedding_forward(y.data(), table.data(), bad, 1, V, dim), input_error);
  CHECK_THROWS_AS(embedding_backward(dt.data(), c.data(), bad, 1, V, dim), input_error);
}

TEST_CASE("rope backward: interleaved pairs, the official angles") {
  const std::int64_t S = 4, H = 2, hd = 6, dim = H * hd, half = hd / 2;
  const model::RopeFrequencies freqs(int(hd), 10000.0f);
  std::vector<float> cs(std::size_t(S * half)), sn(cs.size());
  freqs.fill(0, S, cs.data(), sn.data());
  const std::vector<double> csd = to_d(cs), snd = to_d(sn);
  const auto x = rand_f(S * dim, 3), c = rand_f(S * dim, 4);
  std::vector<double> xd = to_d(x);
  const std::vector<double> cd = to_d(c);
  auto loss = [&] {
    std::vector<double> y = xd;
    rope_forward(y.data(), csd.data(), snd.data(), S, H, hd);
    return weighted_sum(cd, y);
  };
  std::vector<float> dx = c;
  rope_backward(dx.data(), cs.data(), sn.data(), S, H, hd);
  expect_grad("dx", dx, fd_grad(xd, loss));
  // The forward is the inference kernel's rotation.
  std::vector<float> y = x, k = x;
  rope_forward(y.data(), cs.data(), sn.data(), S, H, hd);
  for (std::int64_t t = 0; t < S; ++t)
    for (std::int64_t h = 0; h < H; ++h)
      kernels::ref::rope_interleaved(k.data() + t * dim + h * hd, hd, cs.data() + t * half, sn.data() + t * half);
  expect_close("forward vs kernels::ref::rope_interleaved", y, k, 0, 0);
}

TEST_CASE("swiglu, gelu, quick_gelu backward") {
  const std::int64_t n = 23;
  const auto a = rand_f(n, 5, -4, 4), u = rand_f(n, 6, -2, 2), c = rand_f(n, 7);
  std::vector<double> ad = to_d(a), ud = to_d(u);
  const std::vector<double> cd = to_d(c);
  auto swiglu_loss = [&] {
    std::vector<double> h(static_cast<std::size_t>(n));
    swiglu_forward(h.data(), ad.data(), ud.data(), n);
    return weighted_sum(cd, h);
  };
  std::vector<float> da(static_cast<std::size_t>(n)), du(static_cast<std::size_t>(n));
  swiglu_backward(da.data(), du.data(), c.data(), a.data(), u.data(), n);
  expect_grad("swiglu da", da, fd_grad(ad, swiglu_loss));
  expect_grad("swiglu du", du, fd_grad(ud, swiglu_loss));

  auto act_loss = [&](void (*f)(double*, const double*, std::int64_t)) {
    return [&, f] {
      std::vector<double> y(static_cast<std::size_t>(n));
      f(y.data(), ad.data(), n);
      return weighted_sum(cd, y);
    };
  };
  std::vector<float> dx(static_cast<std::size_t>(n));
  gelu_backward(dx.data(), c.data(), a.data(), n);
  expect_grad("gelu dx", dx, fd_grad(ad, act_loss(gelu_forward<double>)));
  quick_gelu_backward(dx.data(), c.data(), a.data(), n);
  expect_grad("quick_gelu dx", dx, fd_grad(ad, act_loss(quick_gelu_forward<double>)));
  // The f32 forwards are the inference kernels' maps.
  std::vector<float> y(static_cast<std::size_t>(n)), k = a;
  gelu_forward(y.data(), a.data(), n);
  kernels::ref::gelu_erf(k.data(), n);
  expect_close("gelu forward vs kernels::ref", y, k, 1e-7, 1e-6);
  k = a;
  quick_gelu_forward(y.data(), a.data(), n);
  kernels::ref::quick_gelu(k.data(), n);
  expect_close("quick_gelu forward vs kernels::ref", y, k, 1e-7, 1e-6);
}

TEST_CASE("SwiGLU FFN w2(silu(w1 x + b1) * (w3 x + b3)) + b2: backward composed of the ops") {
  const std::int64_t M = 3, dim = 5, hidden = 8;
  const auto x = rand_f(M * dim, 8), w1 = rand_f(hidden * dim, 9), w3 = rand_f(hidden * dim, 10);
  const auto w2 = rand_f(dim * hidden, 11), b1 = rand_f(hidden, 12), b3 = rand_f(hidden, 13), b2 = rand_f(dim, 14);
  const auto c = rand_f(M * dim, 15);
  std::vector<double> xd = to_d(x), b1d = to_d(b1), b3d = to_d(b3), b2d = to_d(b2);
  const std::vector<double> w1d = to_d(w1), w3d = to_d(w3), w2d = to_d(w2), cd = to_d(c);
  auto lin = [](const auto& w, const auto& b, std::int64_t N, std::int64_t K) {
    using T = std::decay_t<decltype(w[0])>;
    LinearParams<T> p;
    p.weight = w.data(), p.bias = b.data(), p.N = N, p.K = K;
    return p;
  };
  auto loss = [&] {
    std::vector<double> a(std::size_t(M * hidden)), u(a.size()), h(a.size()), y(std::size_t(M * dim));
    ref::linear_forward(a.data(), nullptr, nullptr, xd.data(), M, lin(w1d, b1d, hidden, dim));
    ref::linear_forward(u.data(), nullptr, nullptr, xd.data(), M, lin(w3d, b3d, hidden, dim));
    swiglu_forward(h.data(), a.data(), u.data(), M * hidden);
    ref::linear_forward(y.data(), nullptr, nullptr, h.data(), M, lin(w2d, b2d, dim, hidden));
    return weighted_sum(cd, y);
  };
  std::vector<float> a(std::size_t(M * hidden)), u(a.size()), h(a.size()), y(std::size_t(M * dim));
  ref::linear_forward(a.data(), nullptr, nullptr, x.data(), M, lin(w1, b1, hidden, dim));
  ref::linear_forward(u.data(), nullptr, nullptr, x.data(), M, lin(w3, b3, hidden, dim));
  swiglu_forward(h.data(), a.data(), u.data(), M * hidden);
  std::vector<float> dh(h.size()), da(h.size()), du(h.size()), dx(x.size()), dx3(x.size());
  std::vector<float> db1(b1.size()), db3(b3.size()), db2(b2.size());
  ref::linear_backward(dh.data(), LinearGrads<float>{db2.data()}, c.data(), h.data(), nullptr, nullptr, M,
                       lin(w2, b2, dim, hidden));
  swiglu_backward(da.data(), du.data(), dh.data(), a.data(), u.data(), M * hidden);
  ref::linear_backward(dx.data(), LinearGrads<float>{db1.data()}, da.data(), x.data(), nullptr, nullptr, M,
                       lin(w1, b1, hidden, dim));
  ref::linear_backward(dx3.data(), LinearGrads<float>{db3.data()}, du.data(), x.data(), nullptr, nullptr, M,
                       lin(w3, b3, hidden, dim));
  for (std::size_t i = 0; i < dx.size(); ++i) dx[i] += dx3[i];
  expect_grad("ffn dx", dx, fd_grad(xd, loss));
  expect_grad("ffn d b1", db1, fd_grad(b1d, loss));
  expect_grad("ffn d b3", db3, fd_grad(b3d, loss));
  expect_grad("ffn d b2", db2, fd_grad(b2d, loss));
}

TEST_CASE("cross-entropy: logits[:, :-1] against labels[:, 1:], label 0 ignored (spec 8)") {
  const std::int64_t B = 2, S = 4, V = 6;
  // Row 0: prompt (0), then two answer tokens; row 1: all masked but one.
  const std::int32_t labels[B * S] = {0, 0, 3, 5, 0, 0, 0, 2};
  const auto z = rand_f(B * S * V, 16, -3, 3);
  std::vector<double> zd = to_d(z);
  auto loss = [&] { return cross_entropy_forward_backward<double>(nullptr, zd.data(), labels, B, S, V); };
  std::vector<float> dz(z.size());
  const double l = cross_entropy_forward_backward(dz.data(), z.data(), labels, B, S, V);
  CHECK(l == doctest::Approx(loss()).epsilon(1e-6));
  expect_grad("d logits", dz, fd_grad(zd, loss));
  // By hand: three kept positions (b0 t1 -> 3, b0 t2 -> 5, b1 t2 -> 2); the rest have no gradient.
  double want = 0;
  const int kept[3][3] = {{0, 1, 3}, {0, 2, 5}, {1, 2, 2}};
  for (const auto& k : kept) {
    const double* r = zd.data() + (k[0] * S + k[1]) * V;
    double s = 0;
    for (std::int64_t v = 0; v < V; ++v) s += std::exp(r[v]);
    want += std::log(s) - r[k[2]];
  }
  CHECK(l == doctest::Approx(want / 3).epsilon(1e-12));
  for (std::int64_t v = 0; v < V; ++v) CHECK(dz[std::size_t((1 * S + 3) * V + v)] == 0.0f);  // last position
  // Every label masked: loss 0, no gradient (the official output.mean() * 0).
  const std::int32_t none[B * S] = {};
  CHECK(cross_entropy_forward_backward(dz.data(), z.data(), none, B, S, V) == 0.0);
  CHECK(lav2::test::max_abs(dz.data(), std::int64_t(dz.size())) == 0.0);
  const std::int32_t bad[B * S] = {0, 0, 3, 6, 0, 0, 0, 2};
  CHECK_THROWS_AS(cross_entropy_forward_backward(dz.data(), z.data(), bad, B, S, V), input_error);
  // The fast path (pool, kernels::softmax) against the reference, 1 and 2 threads the same bits;
  // a row whose label's probability underflows f32 (logit gap 200) falls back to double.
  std::vector<float> zf = z;
  zf[std::size_t((1 * S + 2) * V + 2)] = -100.0f, zf[std::size_t((1 * S + 2) * V + 0)] = 100.0f;
  std::vector<float> want_dz(z.size()), got1(z.size()), got2(z.size());
  const double want_l = cross_entropy_forward_backward(want_dz.data(), zf.data(), labels, B, S, V);
  std::vector<double> scratch;
  ThreadPool one(1), two(2);
  const double l1 = cross_entropy_forward_backward(one, got1.data(), zf.data(), labels, B, S, V, scratch);
  const double l2 = cross_entropy_forward_backward(two, got2.data(), zf.data(), labels, B, S, V, scratch);
  CHECK(l1 == doctest::Approx(want_l).epsilon(1e-6));
  CHECK(l1 == l2);
  CHECK(lav2::test::max_abs_diff(got1.data(), want_dz.data(), std::int64_t(z.size())) < 1e-6);
  CHECK(std::memcmp(got1.data(), got2.data(), got1.size() * sizeof(float)) == 0);
  CHECK_THROWS_AS(cross_entropy_forward_backward(one, got1.data(), zf.data(), bad, B, S, V, scratch), input_error);
}
