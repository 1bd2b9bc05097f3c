// Causal attention and the gated adapter attention (tanh(gate) per head, new_gate, the prompt
// keys and values): the scalar references against double finite differences; the fast paths
// (dispatched dot / axpy kernels, heads over the pool) against the references.
#include <doctest/doctest.h>

#include <lav2/train/adapter_attention.hpp>
#include <lav2/train/attention.hpp>

#include "train/grad_check.hpp"

using namespace lav2;
using namespace lav2::train;
using namespace lav2::train::test;

TEST_CASE("attention backward (causal, and over all keys): reference vs finite differences") {
  for (bool causal : {true, false}) {
    INFO("causal ", causal);
    const std::int64_t S = 5, H = 2, hd = 4, dim = H * hd;
    const auto q = rand_f(S * dim, 1), k = rand_f(S * dim, 2), v = rand_f(S * dim, 3), c = rand_f(S * dim, 4);
    std::vector<double> qd = to_d(q), kd = to_d(k), vd = to_d(v);
    const std::vector<double> cd = to_d(c);
    auto loss = [&] {
      std::vector<double> o(std::size_t(S * dim)), p(std::size_t(H * S * S));
      ref::attention_forward(o.data(), p.data(), qd.data(), kd.data(), vd.data(), S, H, hd, causal);
      return weighted_sum(cd, o);
    };
    std::vector<float> o(std::size_t(S * dim)), p(std::size_t(H * S * S));
    ref::attention_forward(o.data(), p.data(), q.data(), k.data(), v.data(), S, H, hd, causal);
    std::vector<float> dq(o.size()), dk(o.size()), dv(o.size());
    ref::attention_backward(dq.data(), dk.data(), dv.data(), c.data(), q.data(), k.data(), v.data(), p.data(), S, H, hd,
                            causal);
    expect_grad("dq", dq, fd_grad(qd, loss));
    expect_grad("dk", dk, fd_grad(kd, loss));
    expect_grad("dv", dv, fd_grad(vd, loss));
  }
}

TEST_CASE("attention (causal, and over all keys): fast path vs reference, 1 and 2 threads") {
  for (bool causal : {true, false}) {
    INFO("causal ", causal);
    const std::int64_t S = 19, H = 3, hd = 16, dim = H * hd;
    const auto q = rand_f(S * dim, 11, -2, 2), k = rand_f(S * dim, 12, -2, 2), v = rand_f(S * dim, 13);
    const auto c = rand_f(S * dim, 14);
    std::vector<float> o(std::size_t(S * dim)), p(std::size_t(H * S * S));
    ref::attention_forward(o.data(), p.data(), q.data(), k.data(), v.data(), S, H, hd, causal);
    std::vector<float> dq(o.size()), dk(o.size()), dv(o.size());
    ref::attention_backward(dq.data(), dk.data(), dv.data(), c.data(), q.data(), k.data(), v.data(), p.data(), S, H, hd,
                            causal);
    std::vector<float> first;
    for (int threads : {1, 2}) {
      INFO(threads, " threads");
      ThreadPool pool(threads);
      Workspace ws;
      std::vector<float> fo(o.size()), fp(p.size(), 7.0f), fq(o.size()), fk(o.size()), fv(o.size());
      attention_forward(pool, fo.data(), fp.data(), q.data(), k.data(), v.data(), S, H, hd, causal);
      expect_close("out", fo, o, 0, 1e-6);
      expect_close("probs", fp, p, 0, 1e-6);
      attention_backward(pool, ws, fq.data(), fk.data(), fv.data(), c.data(), q.data(), k.data(), v.data(), fp.data(),
                         S, H, hd, causal);
      expect_close("dq", fq, dq, 0, 1e-5);
      expect_close("dk", fk, dk, 0, 1e-5);
      expect_close("dv", fv, dv, 0, 1e-5);
      if (first.empty()) first = fq;
      expect_close("dq bit-identical across pool sizes", fq, first, 0, 0);
    }
  }
}

namespace {
struct AdapterCase {
  std::int64_t S = 4, L = 3, H = 2, hd = 4;
  std::vector<float> q, ka, va, gate, new_gate, c, base;
  explicit AdapterCase(std::uint32_t seed, std::int64_t S_ = 4, std::int64_t L_ = 3, std::int64_t H_ = 2,
                       std::int64_t hd_ = 4)
      : S(S_),
        L(L_),
        H(H_),
        hd(hd_),
        q(rand_f(S * H * hd, seed)),
        ka(rand_f(L * H * hd, seed + 1)),
        va(rand_f(L * H * hd, seed + 2)),
        gate(rand_f(H, seed + 3, -0.8f, 0.8f)),
        new_gate{0.7f},
        c(rand_f(S * H * hd, seed + 4)),
        base(rand_f(S * H * hd, seed + 5)) {}
};
}  // namespace

TEST_CASE("gated adapter attention backward: reference vs finite differences (tanh gate, new_gate)") {
  for (bool with_new_gate : {false, true}) {
    INFO("new_gate ", with_new_gate);
    AdapterCase t(21);
    const std::int64_t dim = t.H * t.hd;
    std::vector<double> qd = to_d(t.q), kad = to_d(t.ka), vad = to_d(t.va), gd = to_d(t.gate), ngd = to_d(t.new_gate);
    const std::vector<double> cd = to_d(t.c), based = to_d(t.base);
    auto loss = [&] {
      std::vector<double> o = based, p(std::size_t(t.H * t.S * t.L));
      const AdapterPrompts<double> a{kad.data(), vad.data(), gd.data(), with_new_gate ? ngd.data() : nullptr, t.L};
      ref::adapter_attention_forward(o.data(), p.data(), qd.data(), a, t.S, t.H, t.hd);
      return weighted_sum(cd, o);
    };
    const AdapterPrompts<float> a{t.ka.data(), t.va.data(), t.gate.data(), with_new_gate ? t.new_gate.data() : nullptr,
                                  t.L};
    std::vector<float> o = t.base, p(std::size_t(t.H * t.S * t.L));
    ref::adapter_attention_forward(o.data(), p.data(), t.q.data(), a, t.S, t.H, t.hd);
    std::vector<float> dq(std::size_t(t.S * dim), 0.0f), dka(t.ka.size()), dva(t.va.size()), dg(t.gate.size(), 0.0f),
        dng(1, 0.0f);
    const AdapterPromptGrads<float> g{dka.data(), dva.data(), dg.data(), with_new_gate ? dng.data() : nullptr};
    ref::adapter_attention_backward(dq.data(), g, t.c.data(), t.q.data(), a, p.data(), t.S, t.H, t.hd);
    expect_grad("dq", dq, fd_grad(qd, loss));
    expect_grad("d ka", dka, fd_grad(kad, loss));
    expect_grad("d va", dva, fd_grad(vad, loss));
    expect_grad("d gate", dg, fd_grad(gd, loss));
    if (with_new_gate) expect_grad("d new_gate", dng, fd_grad(ngd, loss));
  }
}

TEST_CASE("gated adapter attention: a zero gate leaves the output, yet its gradient is not zero") {
  AdapterCase t(31);
  std::fill(t.gate.begin(), t.gate.end(), 0.0f);
  const AdapterPrompts<float> a{t.ka.data(), t.va.data(), t.gate.data(), nullptr, t.L};
  std::vector<float> o = t.base, p(std::size_t(t.H * t.S * t.L));
  ref::adapter_attention_forward(o.data(), p.data(), t.q.data(), a, t.S, t.H, t.hd);
  expect_close("zero-init gate: output unchanged", o, t.base, 0, 0);
  std::vector<float> dq(t.q.size(), 0.0f), dka(t.ka.size()), dva(t.va.size()), dg(t.gate.size(), 0.0f);
  ref::adapter_attention_backward(dq.data(), AdapterPromptGrads<float>{dka.data(), dva.data(), dg.data(), nullptr},
                                  t.c.data(), t.q.data(), a, p.data(), t.S, t.H, t.hd);
  CHECK(lav2::test::max_abs(dg.data(), std::int64_t(dg.size())) > 1e-3);  // d tanh / dg = 1 at 0
  CHECK(lav2::test::max_abs(dva.data(), std::int64_t(dva.size())) == 0.0);
}

TEST_CASE("gated adapter attention: fast path vs reference, 1 and 2 threads") {
  AdapterCase t(41, 17, 10, 4, 16);
  const std::int64_t dim = t.H * t.hd;
  const AdapterPrompts<float> a{t.ka.data(), t.va.data(), t.gate.data(), t.new_gate.data(), t.L};
  std::vector<float> o = t.base, p(std::size_t(t.H * t.S * t.L));
  ref::adapter_attention_forward(o.data(), p.data(), t.q.data(), a, t.S, t.H, t.hd);
  std::vector<float> dq(std::size_t(t.S * dim), 0.5f), dka(t.ka.size()), dva(t.va.size()), dg(t.gate.size(), 0.25f),
      dng(1, 0.125f);
  ref::adapter_attention_backward(dq.data(), AdapterPromptGrads<float>{dka.data(), dva.data(), dg.data(), dng.data()},
                                  t.c.data(), t.q.data(), a, p.data(), t.S, t.H, t.hd);
  std::vector<float> first;
  for (int threads : {1, 2}) {
    INFO(threads, " threads");
    ThreadPool pool(threads);
    Workspace ws;
    std::vector<float> fo = t.base, fp(p.size());
    adapter_attention_forward(pool, fo.data(), fp.data(), t.q.data(), a, t.S, t.H, t.hd);
    expect_close("out", fo, o, 0, 1e-6);
    std::vector<float> fq(dq.size(), 0.5f), fka(dka.size()), fva(dva.size()), fg(dg.size(), 0.25f), fng(1, 0.125f);
    adapter_attention_backward(pool, ws, fq.data(),
                               AdapterPromptGrads<float>{fka.data(), fva.data(), fg.data(), fng.data()}, t.c.data(),
                               t.q.data(), a, fp.data(), t.S, t.H, t.hd);
    expect_close("dq", fq, dq, 0, 1e-5);
    expect_close("d ka", fka, dka, 0, 1e-5);
    expect_close("d va", fva, dva, 0, 1e-5);
    expect_close("d gate", fg, dg, 0, 1e-5);
    expect_close("d new_gate", fng, dng, 0, 1e-5);
    if (first.empty()) first = fg;
    expect_close("d gate bit-identical across pool sizes", fg, first, 0, 0);
  }
}
