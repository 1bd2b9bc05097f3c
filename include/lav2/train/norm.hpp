// RMSNorm (LLaMA) and LayerNorm (CLIP, the timm blocks, the projector) with their backward, row
// by row over (M, n). The scalar references are templates so that the tests run them in double
// for finite differences; the library runs them in f32.
//
// RMSNorm   y = x r w,                    r = 1 / sqrt(mean(x^2) + eps)
//   dx = r w dy - x r^3 / n * sum(w dy x),   dw += sum_rows dy x r
// LayerNorm y = xh w + b,   xh = (x - mean) s,   s = 1 / sqrt(var + eps)  (biased variance)
//   g = w dy;   dx = s (g - mean(g) - xh mean(g xh)),   dw += sum_rows dy xh,   db += sum_rows dy
#pragma once

#include <cmath>
#include <cstdint>

#include "lav2/kernels/dispatch.hpp"

namespace lav2::train {

namespace ref {

/// \brief y (M, n) = RMSNorm of each row of x (M, n) with weight w (n); eps as the checkpoint's.
template <class T>
void rmsnorm_forward(T* y, const T* x, const T* w, std::int64_t M, std::int64_t n, T eps) {
  for (std::int64_t m = 0; m < M; ++m) {
    const T* xr = x + m * n;
    T ss = 0;
    for (std::int64_t i = 0; i < n; ++i) ss += xr[i] * xr[i];
    const T r = T(1) / std::sqrt(ss / T(n) + eps);
    for (std::int64_t i = 0; i < n; ++i) y[m * n + i] = xr[i] * r * w[i];
  }
}

/// \brief dx (M, n) and dw (n, accumulated; null for a frozen weight) from dy (M, n).
template <class T>
void rmsnorm_backward(T* dx, T* dw, const T* dy, const T* x, const T* w, std::int64_t M, std::int64_t n, T eps) {
  for (std::int64_t m = 0; m < M; ++m) {
    const T *xr = x + m * n, *g = dy + m * n;
    T ss = 0, sg = 0;
    for (std::int64_t i = 0; i < n; ++i) ss += xr[i] * xr[i], sg += w[i] * g[i] * xr[i];
    const T r = T(1) / std::sqrt(ss / T(n) + eps), c = r * r * r / T(n) * sg;
    for (std::int64_t i = 0; i < n; ++i) {
      dx[m * n + i] = r * w[i] * g[i] - c * xr[i];
      if (dw) dw[i] += g[i] * xr[i] * r;
    }
  }
}

/// \brief y (M, n) = LayerNorm of each row of x (M, n); w, b (n).
template <class T>
void layernorm_forward(T* y, const T* x, const T* w, const T* b, std::int64_t M, std::int64_t n, T eps) {
  for (std::int64_t m = 0; m < M; ++m) {
    const T* xr = x + m * n;
    T mean = 0, var = 0;
    for (std::int64_t i = 0; i < n; ++i) mean += xr[i];
    mean /= T(n);
    for (std::int64_t i = 0; i < n; ++i) var += (xr[i] - mean) * (xr[i] - mean);
    const T s = T(1) / std::sqrt(var / T(n) + eps);
    for (std::int64_t i = 0; i < n; ++i) y[m * n + i] = (xr[i] - mean) * s * w[i] + b[i];
  }
}

/// \brief dx (M, n); dw, db (n) accumulated, each null when frozen. Not a hot op (the visual
/// branch runs 267 rows of 768), so it has no SIMD path.
template <class T>
void layernorm_backward(T* dx, T* dw, T* db, const T* dy, const T* x, const T* w, std::int64_t M, std::int64_t n,
                        T eps) {
  for (std::int64_t m = 0; m < M; ++m) {
    const T *xr = x + m * n, *g = dy + m * n;
    T mean = 0, var = 0;
    for (std::int64_t i = 0; i < n; ++i) mean += xr[i];
    mean /= T(n);
    for (std::int64_t i = 0; i < n; ++i) var += (xr[i] - mean) * (xr[i] - mean);
    const T s = T(1) / std::sqrt(var / T(n) + eps);
    T mean_g = 0, mean_gx = 0;  // mean(w dy), mean(w dy xh)
    for (std::int64_t i = 0; i < n; ++i) {
      const T xh = (xr[i] - mean) * s;
      mean_g += w[i] * g[i];
      mean_gx += w[i] * g[i] * xh;
    }
    mean_g /= T(n);
    mean_gx /= T(n);
    for (std::int64_t i = 0; i < n; ++i) {
      const T xh = (xr[i] - mean) * s;
      dx[m * n + i] = s * (w[i] * g[i] - mean_g - xh * mean_gx);
      if (dw) dw[i] += g[i] * xh;
      if (db) db[i] += g[i];
    }
  }
}

}  // namespace ref

/// \brief RMSNorm backward through the dispatched kernel (kernels::rmsnorm_backward, SIMD), row
/// by row; dw (n) accumulates over rows in order, or is null for a frozen weight.
inline void rmsnorm_backward(float* dx, float* dw, const float* dy, const float* x, const float* w, std::int64_t M,
                             std::int64_t n, float eps) {
  for (std::int64_t m = 0; m < M; ++m) kernels::rmsnorm_backward(dx + m * n, dw, dy + m * n, x + m * n, w, n, eps);
}

}  // namespace lav2::train
