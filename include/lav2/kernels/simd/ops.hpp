// xsimd kernels: the same operations as kernels/ref/ops.hpp, as functors templated on the xsimd
// architecture (dispatch.hpp calls them with xsimd::default_arch). Each body is a main loop over
// whole batches and a scalar tail for the last n % lanes elements.
//
// Numerics (what the tests' tolerances cover):
// - Reductions use four independent batch accumulators (hides FMA latency), combined as
//   (a0 + a1) + (a2 + a3), then one horizontal add, then the scalar tail. The order is fixed for
//   a given n and arch, so results are deterministic; they differ from ref (double, left to right)
//   by f32 rounding of about sqrt(n / lanes) ulp of sum |terms|.
// - exp/erf are xsimd's (within a few ulp of glibc's on the batch part; the tail uses <cmath>).
#pragma once

#include <algorithm>
#include <cmath>
#include <complex>
#include <cstdint>

#include "lav2/kernels/ref/ops.hpp"
#include "lav2/kernels/simd/convert.hpp"

namespace lav2::kernels::simd {

namespace detail {

/// sum_i f(i) for a batch-valued f(i) over full batches at i = 0, L, 2L, ... < n - n % L, with
/// four accumulators; returns the horizontal sum. The caller adds the scalar tail.
template <class Arch, class F>
inline float reduce_sum(std::int64_t n, F&& f) {
  using B = fbatch<Arch>;
  constexpr std::int64_t kLanes = B::size;
  B acc0(0.0f), acc1(0.0f), acc2(0.0f), acc3(0.0f);
  std::int64_t i = 0;
  for (; i + 4 * kLanes <= n; i += 4 * kLanes) {
    acc0 = f(acc0, i);
    acc1 = f(acc1, i + kLanes);
    acc2 = f(acc2, i + 2 * kLanes);
    acc3 = f(acc3, i + 3 * kLanes);
  }
  for (; i + kLanes <= n; i += kLanes) acc0 = f(acc0, i);
  return xsimd::hadd((acc0 + acc1) + (acc2 + acc3));
}

/// Applies the element-wise map `f` (a generic lambda valid for batches and for float) to x[0..n).
template <class Arch, class F>
inline void map_inplace(float* x, std::int64_t n, F&& f) {
  using B = fbatch<Arch>;
  constexpr std::int64_t kLanes = B::size;
  std::int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) f(B::load_unaligned(x + i)).store_unaligned(x + i);
  for (; i < n; ++i) x[i] = f(x[i]);
}

/// Full-batch part of the f32 sum of x (n); the caller adds the tail from n - n % lanes.
template <class Arch>
inline float sum_full_batches(const float* x, std::int64_t n) {
  return reduce_sum<Arch>(
      n, [x](const fbatch<Arch>& acc, std::int64_t i) { return acc + fbatch<Arch>::load_unaligned(x + i); });
}

template <class Arch>
inline std::int64_t tail_start(std::int64_t n) {
  return n - n % std::int64_t(fbatch<Arch>::size);
}

}  // namespace detail

// ---- vector primitives ------------------------------------------------------------------------

/// `b` is float or f16_t (an f16 KV cache), widened exactly before the multiply.
struct dot_fn {
  template <class Arch, class T>
  float operator()(Arch, const float* a, const T* b, std::int64_t n) const {
    using B = detail::fbatch<Arch>;
    float sum = detail::reduce_sum<Arch>(n, [a, b](const B& acc, std::int64_t i) {
      return xsimd::fma(B::load_unaligned(a + i), detail::load_as_f32<Arch>(b + i), acc);
    });
    for (std::int64_t i = detail::tail_start<Arch>(n); i < n; ++i)
      sum = std::fma(a[i], to_f32(b[i]), sum);  // explicit: contraction would vary by instantiation
    return sum;
  }
};

/// `x` is float or f16_t (an f16 KV cache), widened exactly before the multiply.
struct axpy_fn {
  template <class Arch, class T>
  void operator()(Arch, float* y, float a, const T* x, std::int64_t n) const {
    using B = detail::fbatch<Arch>;
    constexpr std::int64_t kLanes = B::size;
    const B va(a);
    std::int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes)
      xsimd::fma(va, detail::load_as_f32<Arch>(x + i), B::load_unaligned(y + i)).store_unaligned(y + i);
    for (; i < n; ++i) y[i] += a * to_f32(x[i]);
  }
};

struct add_fn {
  template <class Arch>
  void operator()(Arch, float* y, const float* x, std::int64_t n) const {
    using B = detail::fbatch<Arch>;
    constexpr std::int64_t kLanes = B::size;
    std::int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes) (B::load_unaligned(y + i) + B::load_unaligned(x + i)).store_unaligned(y + i);
    for (; i < n; ++i) y[i] += x[i];
  }
};

// ---- normalisation ----------------------------------------------------------------------------

struct rmsnorm_fn {
  template <class Arch>
  void operator()(Arch, float* out, const float* x, const float* weight, std::int64_t n, float eps) const {
    using B = detail::fbatch<Arch>;
    constexpr std::int64_t kLanes = B::size;
    const float ss = dot_fn{}(Arch{}, x, x, n);
    // sqrt then divide (not an rsqrt approximation): the scale is correctly rounded from ss.
    const float scale = 1.0f / std::sqrt(ss / float(n) + eps);
    const B vs(scale);
    std::int64_t i = 0;
    if (weight) {
      for (; i + kLanes <= n; i += kLanes)
        (B::load_unaligned(x + i) * vs * B::load_unaligned(weight + i)).store_unaligned(out + i);
      for (; i < n; ++i) out[i] = x[i] * scale * weight[i];
    } else {
      for (; i + kLanes <= n; i += kLanes) (B::load_unaligned(x + i) * vs).store_unaligned(out + i);
      for (; i < n; ++i) out[i] = x[i] * scale;
    }
  }
};

struct layernorm_fn {
  template <class Arch>
  void operator()(Arch, float* out, const float* x, const float* weight, const float* bias, std::int64_t n,
                  float eps) const {
    using B = detail::fbatch<Arch>;
    constexpr std::int64_t kLanes = B::size;
    const std::int64_t tail = detail::tail_start<Arch>(n);
    float sum = detail::sum_full_batches<Arch>(x, n);
    for (std::int64_t i = tail; i < n; ++i) sum += x[i];
    const float mean = sum / float(n);
    // Two-pass variance, as ref: sum (x - mean)^2 has no catastrophic cancellation.
    const B vm(mean);
    float var = detail::reduce_sum<Arch>(n, [x, &vm](const B& acc, std::int64_t i) {
      const B d = B::load_unaligned(x + i) - vm;
      return xsimd::fma(d, d, acc);
    });
    for (std::int64_t i = tail; i < n; ++i) var += (x[i] - mean) * (x[i] - mean);
    const float rstd = 1.0f / std::sqrt(var / float(n) + eps);
    const B vr(rstd);
    std::int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes) {
      B y = (B::load_unaligned(x + i) - vm) * vr;
      if (weight) y *= B::load_unaligned(weight + i);
      if (bias) y += B::load_unaligned(bias + i);
      y.store_unaligned(out + i);
    }
    for (; i < n; ++i) out[i] = (x[i] - mean) * rstd * (weight ? weight[i] : 1.0f) + (bias ? bias[i] : 0.0f);
  }
};

// ---- rotary position embedding ----------------------------------------------------------------

struct rope_interleaved_fn {
  template <class Arch>
  void operator()(Arch, float* x, std::int64_t head_dim, const float* cos, const float* sin) const {
    // An interleaved pair is a complex number x[2i] + i x[2i+1] (exactly torch.view_as_complex),
    // and the rotation is a complex product with cos[i] + i sin[i]. xsimd's complex batch
    // de-interleaves on load and re-interleaves on store, so no shuffles are written here.
    // (std::complex<float> arrays may alias float[2] arrays: [complex.numbers] p4.)
    using C = xsimd::batch<std::complex<float>, Arch>;
    using B = detail::fbatch<Arch>;
    constexpr std::int64_t kLanes = B::size;
    auto* z = reinterpret_cast<std::complex<float>*>(x);
    const std::int64_t half = head_dim / 2;
    std::int64_t i = 0;
    for (; i + kLanes <= half; i += kLanes) {
      const C v = C::load_unaligned(z + i);
      const B c = B::load_unaligned(cos + i), s = B::load_unaligned(sin + i);
      const B re = v.real() * c - v.imag() * s;
      const B im = v.real() * s + v.imag() * c;
      C(re, im).store_unaligned(z + i);
    }
    if (i < half) ref::rope_interleaved(x + 2 * i, 2 * (half - i), cos + i, sin + i);  // the tail
  }
};

// ---- softmax and activations ------------------------------------------------------------------

struct softmax_fn {
  template <class Arch>
  void operator()(Arch, float* x, std::int64_t n) const {
    using B = detail::fbatch<Arch>;
    constexpr std::int64_t kLanes = B::size;
    if (n <= 0) return;
    float max_val = x[0];
    std::int64_t i = 0;
    if (n >= kLanes) {
      B vmax = B::load_unaligned(x);
      for (i = kLanes; i + kLanes <= n; i += kLanes) vmax = xsimd::max(vmax, B::load_unaligned(x + i));
      alignas(64) float lanes[kLanes];
      vmax.store_aligned(lanes);
      for (std::int64_t l = 0; l < kLanes; ++l) max_val = std::fmax(max_val, lanes[l]);
    }
    for (; i < n; ++i) max_val = std::fmax(max_val, x[i]);
    const B vmax(max_val);
    // exp is written back into x during the sum, so x is read twice rather than three times.
    float sum = detail::reduce_sum<Arch>(n, [x, &vmax](const B& acc, std::int64_t j) {
      const B e = xsimd::exp(B::load_unaligned(x + j) - vmax);
      e.store_unaligned(x + j);
      return acc + e;
    });
    for (std::int64_t j = detail::tail_start<Arch>(n); j < n; ++j) {
      x[j] = std::exp(x[j] - max_val);
      sum += x[j];
    }
    const float inv = 1.0f / sum;
    detail::map_inplace<Arch>(x, n, [inv](auto v) { return v * inv; });
  }
};

struct silu_fn {
  template <class Arch>
  void operator()(Arch, float* x, std::int64_t n) const {
    detail::map_inplace<Arch>(x, n, [](auto v) { return v / (1.0f + xsimd::exp(-v)); });
  }
};

struct swiglu_fn {
  template <class Arch>
  void operator()(Arch, float* out, const float* gate, const float* up, std::int64_t n) const {
    using B = detail::fbatch<Arch>;
    constexpr std::int64_t kLanes = B::size;
    std::int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes) {
      const B g = B::load_unaligned(gate + i);
      (g / (1.0f + xsimd::exp(-g)) * B::load_unaligned(up + i)).store_unaligned(out + i);
    }
    for (; i < n; ++i) out[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
  }
};

struct gelu_erf_fn {
  template <class Arch>
  void operator()(Arch, float* x, std::int64_t n) const {
    detail::map_inplace<Arch>(x, n, [](auto v) { return 0.5f * v * (1.0f + xsimd::erf(v * 0.70710678118654752f)); });
  }
};

struct quick_gelu_fn {
  template <class Arch>
  void operator()(Arch, float* x, std::int64_t n) const {
    detail::map_inplace<Arch>(x, n, [](auto v) { return v / (1.0f + xsimd::exp(-1.702f * v)); });
  }
};

// ---- attention --------------------------------------------------------------------------------

/// Scores s_j = scale * q . k_j into `scratch`, then softmax: shared by both attention kernels.
struct attention_probs_fn {
  template <class Arch, class KV>
  void operator()(Arch, float* scratch, const float* q, const KV* k, std::int64_t n_keys, std::int64_t head_dim,
                  std::int64_t kv_stride, float scale) const {
    for (std::int64_t j = 0; j < n_keys; ++j) scratch[j] = dot_fn{}(Arch{}, q, k + j * kv_stride, head_dim) * scale;
    softmax_fn{}(Arch{}, scratch, n_keys);
  }
};

/// K and V rows are float or f16_t (an f16 KV cache).
struct attention_head_fn {
  template <class Arch, class KV>
  void operator()(Arch, float* out, const float* q, const KV* k, const KV* v, std::int64_t n_keys,
                  std::int64_t head_dim, std::int64_t kv_stride, float scale, float* scratch) const {
    attention_probs_fn{}(Arch{}, scratch, q, k, n_keys, head_dim, kv_stride, scale);
    std::fill(out, out + head_dim, 0.0f);
    for (std::int64_t j = 0; j < n_keys; ++j) axpy_fn{}(Arch{}, out, scratch[j], v + j * kv_stride, head_dim);
  }
};

struct adapter_attention_head_fn {
  template <class Arch>
  void operator()(Arch, float* out, const float* q, const float* ka, const float* va, std::int64_t n_prompts,
                  std::int64_t head_dim, std::int64_t kv_stride, float scale, float gate, float* scratch) const {
    attention_probs_fn{}(Arch{}, scratch, q, ka, n_prompts, head_dim, kv_stride, scale);
    for (std::int64_t j = 0; j < n_prompts; ++j)
      axpy_fn{}(Arch{}, out, gate * scratch[j], va + j * kv_stride, head_dim);
  }
};

}  // namespace lav2::kernels::simd
