// The timm 0.3.2 Block of the visual branch (spec 4.2), composed of the train/ ops, against
// double finite differences for its input and every one of its tensors (all trainable in the
// official pretrain stage, weights included):
//   x' = x + proj(attn(LN1(x))),  attn: qkv rows [q; k; v], heads of W/H, softmax(q k^T hd^-0.5) v,
//   y  = x' + fc2(GELU(fc1(LN2(x'))))
#include <doctest/doctest.h>

#include <lav2/train/activation.hpp>
#include <lav2/train/attention.hpp>
#include <lav2/train/linear.hpp>
#include <lav2/train/norm.hpp>

#include "train/grad_check.hpp"

using namespace lav2;
using namespace lav2::train;
using namespace lav2::train::test;

namespace {

constexpr std::int64_t S = 4, W = 8, H = 2, Hd = W / H, F = 12;

// The block's tensors in the order of timm's state_dict.
template <class T>
struct Block {
  std::vector<T> n1w, n1b, qkv_w, qkv_b, proj_w, proj_b, n2w, n2b, fc1_w, fc1_b, fc2_w, fc2_b;
  std::vector<std::vector<T>*> all() {
    return {&n1w, &n1b, &qkv_w, &qkv_b, &proj_w, &proj_b, &n2w, &n2b, &fc1_w, &fc1_b, &fc2_w, &fc2_b};
  }
};
constexpr const char* kNames[] = {"norm1.weight",     "norm1.bias",     "attn.qkv.weight", "attn.qkv.bias",
                                  "attn.proj.weight", "attn.proj.bias", "norm2.weight",    "norm2.bias",
                                  "mlp.fc1.weight",   "mlp.fc1.bias",   "mlp.fc2.weight",  "mlp.fc2.bias"};

template <class T>
LinearParams<T> lin(const std::vector<T>& w, const std::vector<T>& b, std::int64_t N, std::int64_t K) {
  LinearParams<T> p;
  p.weight = w.data(), p.bias = b.data(), p.N = N, p.K = K;
  return p;
}

// Everything the backward reads.
template <class T>
struct Acts {
  std::vector<T> n1, qkv, q, k, v, probs, att, x1, n2, f1, g, y;
};

template <class T>
void forward(Acts<T>& a, const std::vector<T>& x, const Block<T>& b) {
  const T eps = T(1e-5);  // nn.LayerNorm's default: LLaMA_adapter builds Block() with it (spec 4.2)
  a.n1.resize(S * W), a.qkv.resize(S * 3 * W), a.q.resize(S * W), a.k.resize(S * W), a.v.resize(S * W);
  a.probs.resize(H * S * S), a.att.resize(S * W), a.x1.resize(S * W), a.n2.resize(S * W), a.f1.resize(S * F);
  a.g.resize(S * F), a.y.resize(S * W);
  ref::layernorm_forward(a.n1.data(), x.data(), b.n1w.data(), b.n1b.data(), S, W, eps);
  ref::linear_forward(a.qkv.data(), nullptr, nullptr, a.n1.data(), S, lin(b.qkv_w, b.qkv_b, 3 * W, W));
  for (std::int64_t i = 0; i < S; ++i)
    for (std::int64_t d = 0; d < W; ++d) {
      a.q[i * W + d] = a.qkv[i * 3 * W + d];
      a.k[i * W + d] = a.qkv[i * 3 * W + W + d];
      a.v[i * W + d] = a.qkv[i * 3 * W + 2 * W + d];
    }
  ref::attention_forward(a.att.data(), a.probs.data(), a.q.data(), a.k.data(), a.v.data(), S, H, Hd, false);
  ref::linear_forward(a.x1.data(), nullptr, nullptr, a.att.data(), S, lin(b.proj_w, b.proj_b, W, W));
  for (std::int64_t i = 0; i < S * W; ++i) a.x1[i] += x[i];
  ref::layernorm_forward(a.n2.data(), a.x1.data(), b.n2w.data(), b.n2b.data(), S, W, eps);
  ref::linear_forward(a.f1.data(), nullptr, nullptr, a.n2.data(), S, lin(b.fc1_w, b.fc1_b, F, W));
  gelu_forward(a.g.data(), a.f1.data(), S * F);
  ref::linear_forward(a.y.data(), nullptr, nullptr, a.g.data(), S, lin(b.fc2_w, b.fc2_b, W, F));
  for (std::int64_t i = 0; i < S * W; ++i) a.y[i] += a.x1[i];
}

}  // namespace

TEST_CASE("timm ViT block backward: every tensor and the input vs finite differences") {
  Block<float> bf;
  std::uint32_t seed = 50;
  const std::int64_t sizes[] = {W, W, 3 * W * W, 3 * W, W * W, W, W, W, F * W, F, W * F, W};
  auto all = bf.all();
  for (std::size_t i = 0; i < all.size(); ++i) *all[i] = rand_f(sizes[i], seed++);
  const auto x = rand_f(S * W, 70, -2, 2), c = rand_f(S * W, 71);
  Block<double> bd;
  auto alld = bd.all();
  for (std::size_t i = 0; i < all.size(); ++i) *alld[i] = to_d(*all[i]);
  std::vector<double> xd = to_d(x);
  const std::vector<double> cd = to_d(c);
  auto loss = [&] {
    Acts<double> a;
    forward(a, xd, bd);
    return weighted_sum(cd, a.y);
  };

  Acts<float> a;
  forward(a, x, bf);
  Block<float> g;
  auto allg = g.all();
  for (std::size_t i = 0; i < all.size(); ++i) allg[i]->assign(all[i]->size(), 0.0f);
  const float eps = 1e-5f;
  // y = x1 + fc2(g):  dx1 = c + the MLP's part
  std::vector<float> dg(S * F), df1(S * F), dn2(S * W), dx1 = c, tmp(S * W);
  ref::linear_backward(dg.data(), LinearGrads<float>{g.fc2_b.data(), nullptr, nullptr, nullptr, g.fc2_w.data()},
                       c.data(), a.g.data(), nullptr, nullptr, S, lin(bf.fc2_w, bf.fc2_b, W, F));
  gelu_backward(df1.data(), dg.data(), a.f1.data(), S * F);
  ref::linear_backward(dn2.data(), LinearGrads<float>{g.fc1_b.data(), nullptr, nullptr, nullptr, g.fc1_w.data()},
                       df1.data(), a.n2.data(), nullptr, nullptr, S, lin(bf.fc1_w, bf.fc1_b, F, W));
  ref::layernorm_backward(tmp.data(), g.n2w.data(), g.n2b.data(), dn2.data(), a.x1.data(), bf.n2w.data(), S, W, eps);
  for (std::int64_t i = 0; i < S * W; ++i) dx1[i] += tmp[i];
  // x1 = x + proj(att)
  std::vector<float> datt(S * W), dq(S * W), dk(S * W), dv(S * W), dqkv(S * 3 * W), dn1(S * W), dx = dx1;
  ref::linear_backward(datt.data(), LinearGrads<float>{g.proj_b.data(), nullptr, nullptr, nullptr, g.proj_w.data()},
                       dx1.data(), a.att.data(), nullptr, nullptr, S, lin(bf.proj_w, bf.proj_b, W, W));
  ref::attention_backward(dq.data(), dk.data(), dv.data(), datt.data(), a.q.data(), a.k.data(), a.v.data(),
                          a.probs.data(), S, H, Hd, false);
  for (std::int64_t i = 0; i < S; ++i)
    for (std::int64_t d = 0; d < W; ++d) {
      dqkv[i * 3 * W + d] = dq[i * W + d];
      dqkv[i * 3 * W + W + d] = dk[i * W + d];
      dqkv[i * 3 * W + 2 * W + d] = dv[i * W + d];
    }
  ref::linear_backward(dn1.data(), LinearGrads<float>{g.qkv_b.data(), nullptr, nullptr, nullptr, g.qkv_w.data()},
                       dqkv.data(), a.n1.data(), nullptr, nullptr, S, lin(bf.qkv_w, bf.qkv_b, 3 * W, W));
  ref::layernorm_backward(tmp.data(), g.n1w.data(), g.n1b.data(), dn1.data(), x.data(), bf.n1w.data(), S, W, eps);
  for (std::int64_t i = 0; i < S * W; ++i) dx[i] += tmp[i];

  expect_grad("block dx", dx, fd_grad(xd, loss));
  for (std::size_t i = 0; i < all.size(); ++i)
    expect_grad(std::string("block d ") + kNames[i], *allg[i], fd_grad(*alld[i], loss));
}
