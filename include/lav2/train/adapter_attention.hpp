// The gated adapter attention of LLaMA-Adapter V2 and its backward (training), exactly as the
// official Attention.forward computes it (spec 2.1), per head h:
//   sa_ij = scale q_i . ka_j  (all L prompts, no mask),   pa_i = softmax(sa_i)
//   o_i  += G_h sum_j pa_ij va_j,   G_h = tanh(g_h) * ng   (ng = new_gate, or 1 without it)
// ka = wk(P), va = wv(P) are the prompt keys and values (plain frozen wk / wv: no bias, LoRA or
// RoPE; their backward is the linear's). tanh(g) is computed from the gate on every call, never
// cached, so it follows the optimiser's updates.
// Backward, with e_ij = do_i . va_j and t_i = sum_j pa_ij e_ij (= do_i . A_i, A_i the ungated
// prompt output):
//   dva_j += G pa_ij do_i,   dq_i += scale G sum_j pa_ij (e_ij - t_i) ka_j,
//   dka_j += scale G pa_ij (e_ij - t_i) q_i,
//   dG_h = sum_i t_i,   dg_h += dG_h ng (1 - tanh^2 g_h),   dng += sum_h dG_h tanh g_h
// q, o (S, n_heads * head_dim); ka, va (L, n_heads * head_dim); gate (n_heads) = the (1, H, 1, 1)
// parameter; new_gate (1) or null. The forward keeps probs (n_heads, S, L).
#pragma once

#include <cmath>
#include <cstdint>

#include "lav2/core/thread_pool.hpp"
#include "lav2/kernels/dispatch.hpp"
#include "lav2/train/attention.hpp"
#include "lav2/train/workspace.hpp"

namespace lav2::train {

/// \brief The prompt tensors of one layer for one sequence.
template <class T>
struct AdapterPrompts {
  const T* ka = nullptr;        // (L, dim)
  const T* va = nullptr;        // (L, dim)
  const T* gate = nullptr;      // (n_heads)
  const T* new_gate = nullptr;  // (1) or null
  std::int64_t L = 0;           // prompts
};

/// \brief Their gradients: dka, dva (L, dim) overwritten; dgate (n_heads) and dnew_gate (1)
/// accumulated, each null when frozen (dnew_gate also when the model has no new_gate).
template <class T>
struct AdapterPromptGrads {
  T* dka = nullptr;
  T* dva = nullptr;
  T* dgate = nullptr;
  T* dnew_gate = nullptr;
};

namespace ref {

/// \brief out (S, dim) += the gated prompt branch; probs (n_heads, S, L) kept.
template <class T>
void adapter_attention_forward(T* out, T* probs, const T* q, const AdapterPrompts<T>& a, std::int64_t S,
                               std::int64_t n_heads, std::int64_t head_dim) {
  const std::int64_t dim = n_heads * head_dim, L = a.L;
  const T scale = T(1) / std::sqrt(T(head_dim)), ng = a.new_gate ? a.new_gate[0] : T(1);
  for (std::int64_t h = 0; h < n_heads; ++h) {
    const T G = std::tanh(a.gate[h]) * ng;
    for (std::int64_t i = 0; i < S; ++i) {
      T* p = probs + (h * S + i) * L;
      attention_probs(p, q + i * dim + h * head_dim, a.ka + h * head_dim, L, head_dim, dim, scale);
      for (std::int64_t j = 0; j < L; ++j)
        for (std::int64_t d = 0; d < head_dim; ++d)
          out[i * dim + h * head_dim + d] += G * p[j] * a.va[j * dim + h * head_dim + d];
    }
  }
}

/// \brief dq (S, dim) += the prompt branch's part; the prompts' gradients into `g`.
template <class T>
void adapter_attention_backward(T* dq, const AdapterPromptGrads<T>& g, const T* d_out, const T* q,
                                const AdapterPrompts<T>& a, const T* probs, std::int64_t S, std::int64_t n_heads,
                                std::int64_t head_dim) {
  const std::int64_t dim = n_heads * head_dim, L = a.L;
  const T scale = T(1) / std::sqrt(T(head_dim)), ng = a.new_gate ? a.new_gate[0] : T(1);
  for (std::int64_t i = 0; i < L * dim; ++i) g.dka[i] = g.dva[i] = 0;
  for (std::int64_t h = 0; h < n_heads; ++h) {
    const T th = std::tanh(a.gate[h]), G = th * ng;
    const std::int64_t o = h * head_dim;
    T dG = 0;
    for (std::int64_t i = 0; i < S; ++i)
      dG += attention_row_backward(dq + i * dim + o, g.dka + o, g.dva + o, d_out + i * dim + o, q + i * dim + o,
                                   a.ka + o, a.va + o, probs + (h * S + i) * L, L, head_dim, dim, scale, G);
    if (g.dgate) g.dgate[h] += dG * ng * (T(1) - th * th);
    if (g.dnew_gate) g.dnew_gate[0] += dG * th;
  }
}

}  // namespace ref

/// \brief Fast forward: kernels::adapter_attention_head per (head, row), heads over the pool.
inline void adapter_attention_forward(ThreadPool& pool, float* out, float* probs, const float* q,
                                      const AdapterPrompts<float>& a, std::int64_t S, std::int64_t n_heads,
                                      std::int64_t head_dim) {
  const std::int64_t dim = n_heads * head_dim, L = a.L;
  const float scale = 1.0f / std::sqrt(float(head_dim)), ng = a.new_gate ? a.new_gate[0] : 1.0f;
  pool.parallel_for(n_heads, [&](std::int64_t h0, std::int64_t h1) {
    for (std::int64_t h = h0; h < h1; ++h) {
      const float G = std::tanh(a.gate[h]) * ng;
      const std::int64_t o = h * head_dim;
      for (std::int64_t i = 0; i < S; ++i)
        kernels::adapter_attention_head(out + i * dim + o, q + i * dim + o, a.ka + o, a.va + o, L, head_dim, dim, scale,
                                        G, probs + (h * S + i) * L);
    }
  });
}

/// \brief Fast backward (as ref::adapter_attention_backward), heads over the pool; the gates'
/// sums are reduced after the parallel part, in head order, so any pool size gives the same bits.
inline void adapter_attention_backward(ThreadPool& pool, Workspace& ws, float* dq, const AdapterPromptGrads<float>& g,
                                       const float* d_out, const float* q, const AdapterPrompts<float>& a,
                                       const float* probs, std::int64_t S, std::int64_t n_heads,
                                       std::int64_t head_dim) {
  const std::int64_t dim = n_heads * head_dim, L = a.L;
  const float scale = 1.0f / std::sqrt(float(head_dim)), ng = a.new_gate ? a.new_gate[0] : 1.0f;
  float* e_all = Workspace::grow(ws.a, n_heads * L);
  float* dG = Workspace::grow(ws.b, n_heads);
  pool.parallel_for(n_heads, [&](std::int64_t h0, std::int64_t h1) {
    for (std::int64_t h = h0; h < h1; ++h) {
      const std::int64_t o = h * head_dim;
      const float G = std::tanh(a.gate[h]) * ng;
      for (std::int64_t j = 0; j < L; ++j)
        for (std::int64_t d = 0; d < head_dim; ++d) g.dka[j * dim + o + d] = g.dva[j * dim + o + d] = 0;
      double sum = 0;
      for (std::int64_t i = 0; i < S; ++i)
        sum += attention_row_backward(dq + i * dim + o, g.dka + o, g.dva + o, e_all + h * L, d_out + i * dim + o,
                                      q + i * dim + o, a.ka + o, a.va + o, probs + (h * S + i) * L, L, head_dim, dim,
                                      scale, G);
      dG[h] = float(sum);
    }
  });
  for (std::int64_t h = 0; h < n_heads; ++h) {
    const float th = std::tanh(a.gate[h]);
    if (g.dgate) g.dgate[h] += dG[h] * ng * (1.0f - th * th);
    if (g.dnew_gate) g.dnew_gate[0] += dG[h] * th;
  }
}

}  // namespace lav2::train
