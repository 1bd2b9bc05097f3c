// The tuned linear's backward (bias, input / output scale, LoRA, and the weight where it is
// trainable, as the visual branch's are): the scalar reference against double finite
// differences for every trainable tensor and the input; the fast GEMM path
// (kernels::matmul on transposed copies) against the reference, for 1 and 2 threads and for an
// f16 frozen weight.
#include <doctest/doctest.h>

#include <string>

#include <lav2/train/linear.hpp>

#include "train/grad_check.hpp"

using namespace lav2;
using namespace lav2::train;
using namespace lav2::train::test;

namespace {

struct Case {
  const char* name;
  bool bias;
  ScaleMode scale;
  bool lora;
};
constexpr Case kCases[] = {{"plain", false, ScaleMode::none, false},
                           {"bias", true, ScaleMode::none, false},
                           {"bias + input scale", true, ScaleMode::input, false},
                           {"bias + output scale", true, ScaleMode::output, false},
                           {"bias + LoRA", true, ScaleMode::none, true}};

// The tensors of one linear, f32, with the LoRA l2 nonzero (officially it starts at zero, which
// would hide l1's gradient).
struct Tensors {
  std::int64_t M, N, K, r;
  std::vector<float> x, w, b, s, l1, l2, c;
  Tensors(std::int64_t M_, std::int64_t N_, std::int64_t K_, std::int64_t r_, const Case& cs)
      : M(M_),
        N(N_),
        K(K_),
        r(r_),
        x(rand_f(M * K, 1)),
        w(rand_f(N * K, 2)),
        b(cs.bias ? rand_f(N, 3) : std::vector<float>{}),
        s(cs.scale == ScaleMode::none ? std::vector<float>{}
                                      : rand_f(cs.scale == ScaleMode::input ? K : N, 4, 0.5, 1.5)),
        l1(cs.lora ? rand_f(r * K, 5) : std::vector<float>{}),
        l2(cs.lora ? rand_f(N * r, 6) : std::vector<float>{}),
        c(rand_f(M * N, 7)) {}
};

template <class T>
LinearParams<T> params(const std::vector<T>& w, const std::vector<T>& b, const std::vector<T>& s,
                       const std::vector<T>& l1, const std::vector<T>& l2, ScaleMode mode, std::int64_t N,
                       std::int64_t K, std::int64_t r) {
  LinearParams<T> p;
  p.weight = w.data();
  p.bias = b.empty() ? nullptr : b.data();
  p.scale = s.empty() ? nullptr : s.data();
  p.scale_mode = mode;
  p.lora_l1 = l1.empty() ? nullptr : l1.data();
  p.lora_l2 = l2.empty() ? nullptr : l2.data();
  p.N = N, p.K = K, p.rank = l1.empty() ? 0 : r;
  return p;
}

struct Grads {
  std::vector<float> dx, b, s, l1, l2, w;  // w empty: the weight is frozen
  Grads(const Tensors& t, bool train_weight)
      : dx(std::size_t(t.M * t.K)),
        b(t.b.size()),
        s(t.s.size()),
        l1(t.l1.size()),
        l2(t.l2.size()),
        w(train_weight ? t.w.size() : 0) {}
  LinearGrads<float> view() {
    auto ptr = [](std::vector<float>& v) { return v.empty() ? nullptr : v.data(); };
    return {ptr(b), ptr(s), ptr(l1), ptr(l2), ptr(w)};
  }
};

}  // namespace

TEST_CASE("linear backward: reference vs finite differences") {
  for (const Case& cs : kCases) {
    INFO("linear ", std::string(cs.name));
    const Tensors t(3, 5, 6, 2, cs);
    std::vector<double> xd = to_d(t.x), bd = to_d(t.b), sd = to_d(t.s), l1d = to_d(t.l1), l2d = to_d(t.l2);
    std::vector<double> wd = to_d(t.w);
    const std::vector<double> cd = to_d(t.c);
    auto loss = [&] {
      std::vector<double> y(std::size_t(t.M * t.N)), u(y.size()), mid(std::size_t(t.M * t.r));
      ref::linear_forward(y.data(), u.data(), mid.data(), xd.data(), t.M,
                          params(wd, bd, sd, l1d, l2d, cs.scale, t.N, t.K, t.r));
      return weighted_sum(cd, y);
    };
    const auto p = params(t.w, t.b, t.s, t.l1, t.l2, cs.scale, t.N, t.K, t.r);
    std::vector<float> y(std::size_t(t.M * t.N)), u(y.size()), mid(std::size_t(t.M * t.r));
    ref::linear_forward(y.data(), u.data(), mid.data(), t.x.data(), t.M, p);
    Grads g(t, true);
    ref::linear_backward(g.dx.data(), g.view(), t.c.data(), t.x.data(), u.data(), mid.data(), t.M, p);
    expect_grad("dx", g.dx, fd_grad(xd, loss));
    expect_grad("d weight", g.w, fd_grad(wd, loss));
    if (cs.bias) expect_grad("d bias", g.b, fd_grad(bd, loss));
    if (cs.scale != ScaleMode::none) expect_grad("d scale", g.s, fd_grad(sd, loss));
    if (cs.lora) {
      expect_grad("d lora_l1", g.l1, fd_grad(l1d, loss));
      expect_grad("d lora_l2", g.l2, fd_grad(l2d, loss));
    }
  }
}

TEST_CASE("linear: the fast GEMM path matches the reference (1 and 2 threads, f32 and f16 weight)") {
  for (const Case& cs : kCases)
    for (int threads : {1, 2})
      for (std::int64_t M : {std::int64_t(1), std::int64_t(37)}) {
        INFO("linear ", std::string(cs.name), ", ", threads, " threads, M = ", M);
        const Tensors t(M, 70, 45, 16, cs);
        const auto p = params(t.w, t.b, t.s, t.l1, t.l2, cs.scale, t.N, t.K, t.r);
        std::vector<float> y(std::size_t(t.M * t.N)), u(y.size()), mid(std::size_t(t.M * t.r));
        ref::linear_forward(y.data(), u.data(), mid.data(), t.x.data(), t.M, p);
        Grads want(t, true);
        ref::linear_backward(want.dx.data(), want.view(), t.c.data(), t.x.data(), u.data(), mid.data(), t.M, p);

        ThreadPool pool(threads);
        Workspace ws;
        std::vector<float> fy(y.size()), fu(y.size()), fmid(mid.size());
        linear_forward(pool, ws, fy.data(), fu.data(), fmid.data(), t.x.data(), t.M, MatPtr::of(t.w.data(), t.N, t.K),
                       p);
        expect_close("forward y", fy, y, 0, 1e-5);  // f32 sums in GEMM order vs the reference's
        Grads got(t, true), frozen(t, false);
        linear_backward(pool, ws, got.dx.data(), got.view(), t.c.data(), t.x.data(), fu.data(), fmid.data(), t.M,
                        MatPtr::of(t.w.data(), t.N, t.K), p);
        linear_backward(pool, ws, frozen.dx.data(), frozen.view(), t.c.data(), t.x.data(), fu.data(), fmid.data(), t.M,
                        MatPtr::of(t.w.data(), t.N, t.K), p);
        expect_close("dx", got.dx, want.dx, 0, 1e-5);
        expect_close("d weight", got.w, want.w, 0, 1e-5);
        expect_close("dx with the weight frozen", frozen.dx, got.dx, 0, 0);
        expect_close("d bias with the weight frozen", frozen.b, got.b, 0, 0);
        expect_close("d bias", got.b, want.b, 0, 1e-5);
        expect_close("d scale", got.s, want.s, 0, 1e-5);
        expect_close("d lora_l1", got.l1, want.l1, 0, 1e-5);
        expect_close("d lora_l2", got.l2, want.l2, 0, 1e-5);

        // A frozen f16 weight: the same as its f32 widening.
        std::vector<f16_t> w16(t.w.size());
        std::vector<float> w16f(t.w.size());
        for (std::size_t i = 0; i < t.w.size(); ++i)
          w16[i].bits = f32_to_f16(t.w[i]), w16f[i] = f16_to_f32(w16[i].bits);
        Grads h(t, false), hf(t, false);
        linear_backward(pool, ws, h.dx.data(), h.view(), t.c.data(), t.x.data(), fu.data(), fmid.data(), t.M,
                        MatPtr::of(w16.data(), t.N, t.K), p);
        linear_backward(pool, ws, hf.dx.data(), hf.view(), t.c.data(), t.x.data(), fu.data(), fmid.data(), t.M,
                        MatPtr::of(w16f.data(), t.N, t.K), p);
        expect_close("dx, f16 weight vs its f32 widening", h.dx, hf.dx, 0, 1e-6);
      }
}

TEST_CASE("linear backward: a quantised frozen weight is refused") {
  const Case cs{"bias", true, ScaleMode::none, false};
  const Tensors t(2, 4, 32, 0, cs);
  std::vector<BlockQ8_0> q(4);
  for (int n = 0; n < 4; ++n) quantize_row(t.w.data() + n * 32, q.data() + n, 32);
  ThreadPool pool(1);
  Workspace ws;
  Grads g(t, false);
  const auto p = params(t.w, t.b, t.s, t.l1, t.l2, cs.scale, t.N, t.K, t.r);
  CHECK_THROWS_AS(linear_backward(pool, ws, g.dx.data(), g.view(), t.c.data(), t.x.data(), nullptr, nullptr, t.M,
                                  MatPtr(DType::q8_0, q.data(), 4, 32, 32), p),
                  input_error);
}
