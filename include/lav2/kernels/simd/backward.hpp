// xsimd kernels of the backward pass: the same operations as kernels/ref/backward.hpp, as functors
// templated on the xsimd architecture (simd_table.hpp binds them per level).
//
// Numerics: the two row sums use reduce_sum's four accumulators (ops.hpp), so they differ from
// the reference's double sums by f32 rounding of about sqrt(n / lanes) ulp of sum |terms|; the
// element-wise pass is one FMA per output.
#pragma once

#include <cmath>
#include <cstdint>

#include "lav2/kernels/simd/ops.hpp"

namespace lav2::kernels::simd {

struct rmsnorm_backward_fn {
  template <class Arch>
  void operator()(Arch, float* dx, float* dw, const float* dy, const float* x, const float* w, std::int64_t n,
                  float eps) const {
    using B = detail::fbatch<Arch>;
    constexpr std::int64_t kLanes = B::size;
    const std::int64_t tail = detail::tail_start<Arch>(n);
    // sum x^2 and sum w dy x, each in its own accumulators.
    float ss = detail::reduce_sum<Arch>(n, [x](const B& acc, std::int64_t i) {
      const B v = B::load_unaligned(x + i);
      return xsimd::fma(v, v, acc);
    });
    float sg = detail::reduce_sum<Arch>(n, [x, dy, w](const B& acc, std::int64_t i) {
      const B g = w ? B::load_unaligned(w + i) * B::load_unaligned(dy + i) : B::load_unaligned(dy + i);
      return xsimd::fma(g, B::load_unaligned(x + i), acc);
    });
    for (std::int64_t i = tail; i < n; ++i) {
      ss += x[i] * x[i];
      sg += (w ? w[i] : 1.0f) * dy[i] * x[i];
    }
    const float r = 1.0f / std::sqrt(ss / float(n) + eps);
    const float c = r * r * r / float(n) * sg;
    const B vr(r), vc(c);
    std::int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes) {
      const B vdy = B::load_unaligned(dy + i), vx = B::load_unaligned(x + i);
      const B g = w ? B::load_unaligned(w + i) * vdy : vdy;
      xsimd::fms(vr, g, vc * vx).store_unaligned(dx + i);
      if (dw && w) xsimd::fma(vdy * vx, vr, B::load_unaligned(dw + i)).store_unaligned(dw + i);
    }
    for (; i < n; ++i) {
      dx[i] = r * (w ? w[i] : 1.0f) * dy[i] - c * x[i];
      if (dw && w) dw[i] += dy[i] * x[i] * r;
    }
  }
};

}  // namespace lav2::kernels::simd
