// Rotary position embedding on Meta's interleaved pairs, and its backward (training). Pair i of a
// head, (x[2i], x[2i+1]), turns by the angle theta(t, i) of its row's position t:
//   forward:  y0 = x0 c - x1 s,   y1 = x0 s + x1 c            (c, s = cos, sin of theta)
//   backward: the transpose of a rotation is the rotation by -theta:
//             dx0 = dy0 c + dy1 s,   dx1 = -dy0 s + dy1 c
// x (S, n_heads * head_dim), one row per position; cos, sin (S, head_dim / 2) as
// model::RopeFrequencies::fill makes them. O(S dim) next to the O(S dim^2) linears: scalar only.
#pragma once

#include <cstdint>

namespace lav2::train {

/// \brief Rotates every head of x (S, n_heads * head_dim) in place; `inverse` turns by -theta
/// (the backward).
template <class T>
void rope_rotate(T* x, const T* cos, const T* sin, std::int64_t S, std::int64_t n_heads, std::int64_t head_dim,
                 bool inverse) {
  const std::int64_t half = head_dim / 2, dim = n_heads * head_dim;
  for (std::int64_t t = 0; t < S; ++t)
    for (std::int64_t h = 0; h < n_heads; ++h) {
      T* p = x + t * dim + h * head_dim;
      for (std::int64_t i = 0; i < half; ++i) {
        const T c = cos[t * half + i], s = inverse ? -sin[t * half + i] : sin[t * half + i];
        const T x0 = p[2 * i], x1 = p[2 * i + 1];
        p[2 * i] = x0 * c - x1 * s;
        p[2 * i + 1] = x0 * s + x1 * c;
      }
    }
}

/// \brief Forward: y = RoPE(x), in place.
template <class T>
void rope_forward(T* x, const T* cos, const T* sin, std::int64_t S, std::int64_t n_heads, std::int64_t head_dim) {
  rope_rotate(x, cos, sin, S, n_heads, head_dim, false);
}
/// \brief Backward: dx = RoPE^T(dy), in place.
template <class T>
void rope_backward(T* dy, const T* cos, const T* sin, std::int64_t S, std::int64_t n_heads, std::int64_t head_dim) {
  rope_rotate(dy, cos, sin, S, n_heads, head_dim, true);
}

}  // namespace lav2::train
