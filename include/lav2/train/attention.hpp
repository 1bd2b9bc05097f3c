// Softmax attention of one sequence and its backward (training), per head h: causal for LLaMA,
// or over all S keys (`causal` false) for the timm visual blocks and the CLIP tower:
//   s_ij = scale q_i . k_j  (j <= i, or all j),   p_i = softmax(s_i),   o_i = sum_j p_ij v_j
// Backward, with e_ij = do_i . v_j and t_i = sum_j p_ij e_ij (= do_i . o_i):
//   dv_j += p_ij do_i,   ds_ij = p_ij (e_ij - t_i),   dq_i += scale sum_j ds_ij k_j,
//   dk_j += scale ds_ij q_i
// q, k, v, o (S, n_heads * head_dim), rows = positions 0..S-1 (training runs from 0); the
// forward keeps probs (n_heads, S, S), row i holding p_i in its first i + 1 entries (causal; the
// rest 0) or in all S. scale = 1 / sqrt(head_dim) (timm's head_dim^-0.5 is the same).
// The row backward is shared with the gated adapter attention (adapter_attention.hpp), whose
// prompt branch is the same softmax times a per-head gain.
#pragma once

#include <cmath>
#include <cstdint>

#include "lav2/core/thread_pool.hpp"
#include "lav2/kernels/dispatch.hpp"
#include "lav2/train/workspace.hpp"

namespace lav2::train {

namespace ref {

/// \brief One query row's backward over n_keys keys: dv_j += gain p_j do; dq += scale gain
/// sum_j p_j (e_j - t) k_j; dk_j += scale gain p_j (e_j - t) q. Rows of k, v, dk, dv are
/// `stride` apart. Returns t = sum_j p_j e_j.
template <class T>
T attention_row_backward(T* dq, T* dk, T* dv, const T* d_out, const T* q, const T* k, const T* v, const T* p,
                         std::int64_t n_keys, std::int64_t head_dim, std::int64_t stride, T scale, T gain) {
  T t = 0;
  for (std::int64_t j = 0; j < n_keys; ++j) {
    T e = 0;
    for (std::int64_t d = 0; d < head_dim; ++d) e += d_out[d] * v[j * stride + d];
    t += p[j] * e;
  }
  for (std::int64_t j = 0; j < n_keys; ++j) {
    T e = 0;
    for (std::int64_t d = 0; d < head_dim; ++d) e += d_out[d] * v[j * stride + d];
    const T ds = scale * gain * p[j] * (e - t);
    for (std::int64_t d = 0; d < head_dim; ++d) {
      dq[d] += ds * k[j * stride + d];
      dk[j * stride + d] += ds * q[d];
      dv[j * stride + d] += gain * p[j] * d_out[d];
    }
  }
  return t;
}

/// \brief p (n_keys) = softmax over j of scale q . k_j, key rows `stride` apart.
template <class T>
void attention_probs(T* p, const T* q, const T* k, std::int64_t n_keys, std::int64_t head_dim, std::int64_t stride,
                     T scale) {
  T max_s = -INFINITY, sum = 0;
  for (std::int64_t j = 0; j < n_keys; ++j) {
    T s = 0;
    for (std::int64_t d = 0; d < head_dim; ++d) s += q[d] * k[j * stride + d];
    max_s = std::fmax(max_s, p[j] = s * scale);
  }
  for (std::int64_t j = 0; j < n_keys; ++j) sum += (p[j] = std::exp(p[j] - max_s));
  for (std::int64_t j = 0; j < n_keys; ++j) p[j] /= sum;
}

/// \brief out (S, dim) = attention of q, k, v; probs (n_heads, S, S) kept.
template <class T>
void attention_forward(T* out, T* probs, const T* q, const T* k, const T* v, std::int64_t S, std::int64_t n_heads,
                       std::int64_t head_dim, bool causal = true) {
  const std::int64_t dim = n_heads * head_dim;
  const T scale = T(1) / std::sqrt(T(head_dim));
  for (std::int64_t h = 0; h < n_heads; ++h)
    for (std::int64_t i = 0; i < S; ++i) {
      T* p = probs + (h * S + i) * S;
      const std::int64_t n = causal ? i + 1 : S;
      attention_probs(p, q + i * dim + h * head_dim, k + h * head_dim, n, head_dim, dim, scale);
      for (std::int64_t j = n; j < S; ++j) p[j] = 0;
      T* o = out + i * dim + h * head_dim;
      for (std::int64_t d = 0; d < head_dim; ++d) o[d] = 0;
      for (std::int64_t j = 0; j < n; ++j)
        for (std::int64_t d = 0; d < head_dim; ++d) o[d] += p[j] * v[j * dim + h * head_dim + d];
    }
}

/// \brief dq, dk, dv (S, dim), overwritten, from d_out (S, dim) and the forward's probs.
template <class T>
void attention_backward(T* dq, T* dk, T* dv, const T* d_out, const T* q, const T* k, const T* v, const T* probs,
                        std::int64_t S, std::int64_t n_heads, std::int64_t head_dim, bool causal = true) {
  const std::int64_t dim = n_heads * head_dim;
  const T scale = T(1) / std::sqrt(T(head_dim));
  for (std::int64_t i = 0; i < S * dim; ++i) dq[i] = dk[i] = dv[i] = 0;
  for (std::int64_t h = 0; h < n_heads; ++h)
    for (std::int64_t i = 0; i < S; ++i) {
      const std::int64_t o = h * head_dim;
      attention_row_backward(dq + i * dim + o, dk + o, dv + o, d_out + i * dim + o, q + i * dim + o, k + o, v + o,
                             probs + (h * S + i) * S, causal ? i + 1 : S, head_dim, dim, scale, T(1));
    }
}

}  // namespace ref

/// \brief The fast row backward: ref::attention_row_backward with its dot products and updates
/// through the dispatched SIMD kernels. `e` is scratch (n_keys).
inline float attention_row_backward(float* dq, float* dk, float* dv, float* e, const float* d_out, const float* q,
                                    const float* k, const float* v, const float* p, std::int64_t n_keys,
                                    std::int64_t head_dim, std::int64_t stride, float scale, float gain) {
  double t = 0;
  for (std::int64_t j = 0; j < n_keys; ++j) {
    e[j] = kernels::dot(d_out, v + j * stride, head_dim);
    t += double(p[j]) * double(e[j]);
  }
  const float tf = float(t);
  for (std::int64_t j = 0; j < n_keys; ++j) {
    const float ds = scale * gain * p[j] * (e[j] - tf);
    kernels::axpy(dq, ds, k + j * stride, head_dim);
    kernels::axpy(dk + j * stride, ds, q, head_dim);
    kernels::axpy(dv + j * stride, gain * p[j], d_out, head_dim);
  }
  return tf;
}

/// \brief Fast attention forward: kernels::attention_head per (head, row), heads split over the
/// pool (each head on one thread, so any pool size gives the same bits).
inline void attention_forward(ThreadPool& pool, float* out, float* probs, const float* q, const float* k,
                              const float* v, std::int64_t S, std::int64_t n_heads, std::int64_t head_dim,
                              bool causal = true) {
  const std::int64_t dim = n_heads * head_dim;
  const float scale = 1.0f / std::sqrt(float(head_dim));
  pool.parallel_for(n_heads, [&](std::int64_t h0, std::int64_t h1) {
    for (std::int64_t h = h0; h < h1; ++h)
      for (std::int64_t i = 0; i < S; ++i) {
        float* p = probs + (h * S + i) * S;
        const std::int64_t o = h * head_dim, n = causal ? i + 1 : S;
        kernels::attention_head(out + i * dim + o, q + i * dim + o, k + o, v + o, n, head_dim, dim, scale, p);
        for (std::int64_t j = n; j < S; ++j) p[j] = 0.0f;
      }
  });
}

/// \brief Fast attention backward (as ref::attention_backward), heads split over the pool.
inline void attention_backward(ThreadPool& pool, Workspace& ws, float* dq, float* dk, float* dv, const float* d_out,
                               const float* q, const float* k, const float* v, const float* probs, std::int64_t S,
                               std::int64_t n_heads, std::int64_t head_dim, bool causal = true) {
  const std::int64_t dim = n_heads * head_dim;
  const float scale = 1.0f / std::sqrt(float(head_dim));
  float* e_all = Workspace::grow(ws.a, n_heads * S);
  pool.parallel_for(n_heads, [&](std::int64_t h0, std::int64_t h1) {
    for (std::int64_t h = h0; h < h1; ++h) {
      const std::int64_t o = h * head_dim;
      for (std::int64_t i = 0; i < S; ++i)
        for (std::int64_t d = 0; d < head_dim; ++d) dq[i * dim + o + d] = dk[i * dim + o + d] = dv[i * dim + o + d] = 0;
      for (std::int64_t i = 0; i < S; ++i)
        attention_row_backward(dq + i * dim + o, dk + o, dv + o, e_all + h * S, d_out + i * dim + o, q + i * dim + o,
                               k + o, v + o, probs + (h * S + i) * S, causal ? i + 1 : S, head_dim, dim, scale, 1.0f);
    }
  });
}

}  // namespace lav2::train
