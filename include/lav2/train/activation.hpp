// Element-wise activations with their backward (training), each over (n) values:
//   SwiGLU     h = silu(a) u,   silu(a) = a s(a),  s = sigmoid
//              da = dh u s(a) (1 + a (1 - s(a))),   du = dh silu(a)
//   GELU       y = x Phi(x) = 0.5 x (1 + erf(x / sqrt 2))      (timm's nn.GELU, exact erf)
//              dx = dy (Phi(x) + x phi(x)),   phi(x) = exp(-x^2 / 2) / sqrt(2 pi)
//   QuickGELU  y = x s(1.702 x)                                  (OpenAI CLIP)
//              dx = dy (s + 1.702 x s (1 - s)),   s = s(1.702 x)
// The backward reads the forward's input, not its output: it recomputes s(a) or Phi(x), which is
// cheaper than storing a second activation. O(n) and memory-bound next to the linears around
// them, so scalar only.
#pragma once

#include <cmath>
#include <cstdint>

namespace lav2::train {

namespace detail {
template <class T>
T sigmoid(T x) {
  return T(1) / (T(1) + std::exp(-x));
}
}  // namespace detail

/// \brief h = silu(a) * u. All (n).
template <class T>
void swiglu_forward(T* h, const T* a, const T* u, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) h[i] = a[i] * detail::sigmoid(a[i]) * u[i];
}
/// \brief da, du (n) from dh (n) and the forward's inputs a, u. da may equal dh.
template <class T>
void swiglu_backward(T* da, T* du, const T* dh, const T* a, const T* u, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) {
    const T s = detail::sigmoid(a[i]), g = dh[i];
    du[i] = g * a[i] * s;
    da[i] = g * u[i] * s * (T(1) + a[i] * (T(1) - s));
  }
}

/// \brief y = GELU(x), exact erf. (n)
template <class T>
void gelu_forward(T* y, const T* x, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) y[i] = T(0.5) * x[i] * (T(1) + std::erf(x[i] * T(0.70710678118654752440)));
}
/// \brief dx from dy and the forward's input x; dx may equal dy. (n)
template <class T>
void gelu_backward(T* dx, const T* dy, const T* x, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) {
    const T cdf = T(0.5) * (T(1) + std::erf(x[i] * T(0.70710678118654752440)));
    const T pdf = std::exp(T(-0.5) * x[i] * x[i]) * T(0.39894228040143267794);
    dx[i] = dy[i] * (cdf + x[i] * pdf);
  }
}

/// \brief y = QuickGELU(x). (n)
template <class T>
void quick_gelu_forward(T* y, const T* x, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) y[i] = x[i] * detail::sigmoid(T(1.702) * x[i]);
}
/// \brief dx from dy and the forward's input x; dx may equal dy. (n)
template <class T>
void quick_gelu_backward(T* dx, const T* dy, const T* x, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) {
    const T s = detail::sigmoid(T(1.702) * x[i]);
    dx[i] = dy[i] * (s + T(1.702) * x[i] * s * (T(1) - s));
  }
}

}  // namespace lav2::train
