// Scalar reference kernels: the specification every SIMD kernel is tested against, and the
// fallback when LAV2_USE_SIMD is off. Written to be read (llama2.c), not to be fast.
//
// Numerics: reductions (dot products, sums of squares, softmax denominators) accumulate in
// double, left to right, so the reference is more accurate than any f32 SIMD order and the test
// tolerances measure only the SIMD kernel's own rounding. Element-wise maps compute in f32 with
// the <cmath> functions (expf, erff, tanhf), which glibc rounds to within 1 ulp.
// All pointers may not alias unless a kernel says so (in-place kernels take one pointer).
#pragma once

#include <cmath>
#include <cstdint>

#include "lav2/tensor/dtype.hpp"

namespace lav2::kernels::ref {

// ---- vector primitives ------------------------------------------------------------------------

/// \brief sum_i a[i] * b[i]. `a`, `b` are (n).
/// `b` may also be f16 (a KV cache stored in f16), widened exactly.
template <class T>
inline float dot(const float* a, const T* b, std::int64_t n) {
  double sum = 0.0;
  for (std::int64_t i = 0; i < n; ++i) sum += double(a[i]) * double(to_f32(b[i]));
  return float(sum);
}

/// \brief y += a * x. `y`, `x` are (n).
/// `x` may also be f16 (a KV cache stored in f16), widened exactly.
template <class T>
inline void axpy(float* y, float a, const T* x, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) y[i] += a * to_f32(x[i]);
}

/// \brief y += x (the residual connection). `y`, `x` are (n).
inline void add(float* y, const float* x, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) y[i] += x[i];
}

// ---- normalisation ----------------------------------------------------------------------------

/// \brief RMSNorm (Zhang & Sennrich 2019), as in LLaMA: out = x / sqrt(mean(x^2) + eps) * weight.
/// `out`, `x`, `weight` are (n); `weight` may be null (all ones). `out` may equal `x`.
inline void rmsnorm(float* out, const float* x, const float* weight, std::int64_t n, float eps) {
  double ss = 0.0;
  for (std::int64_t i = 0; i < n; ++i) ss += double(x[i]) * double(x[i]);
  // The scale is rounded to f32 once, as PyTorch's f32 `x * torch.rsqrt(...)` does.
  const float scale = float(1.0 / std::sqrt(ss / double(n) + double(eps)));
  for (std::int64_t i = 0; i < n; ++i) out[i] = x[i] * scale * (weight ? weight[i] : 1.0f);
}

/// \brief LayerNorm (the CLIP ViT's): out = (x - mean) / sqrt(var + eps) * weight + bias, with the
/// biased variance (divide by n). `weight`/`bias` may be null (1 / 0). `out` may equal `x`.
inline void layernorm(float* out, const float* x, const float* weight, const float* bias, std::int64_t n, float eps) {
  double sum = 0.0;
  for (std::int64_t i = 0; i < n; ++i) sum += x[i];
  const double mean = sum / double(n);
  // Two passes (mean first, then squared deviations): no cancellation for inputs far from 0.
  double var = 0.0;
  for (std::int64_t i = 0; i < n; ++i) var += (x[i] - mean) * (x[i] - mean);
  var /= double(n);
  const float rstd = float(1.0 / std::sqrt(var + double(eps)));
  const float meanf = float(mean);
  for (std::int64_t i = 0; i < n; ++i)
    out[i] = (x[i] - meanf) * rstd * (weight ? weight[i] : 1.0f) + (bias ? bias[i] : 0.0f);
}

// ---- rotary position embedding ----------------------------------------------------------------

/// \brief RoPE on interleaved pairs (Meta's LLaMA layout, `torch.view_as_complex`): pair i is
/// (x[2i], x[2i+1]) and turns by the angle with cos[i], sin[i]. `x` is (head_dim), rotated in
/// place; `cos`, `sin` are (head_dim / 2), precomputed by the model for this position.
inline void rope_interleaved(float* x, std::int64_t head_dim, const float* cos, const float* sin) {
  for (std::int64_t i = 0; i < head_dim / 2; ++i) {
    const float x0 = x[2 * i], x1 = x[2 * i + 1];
    x[2 * i] = x0 * cos[i] - x1 * sin[i];
    x[2 * i + 1] = x0 * sin[i] + x1 * cos[i];
  }
}

// ---- softmax and activations ------------------------------------------------------------------

/// \brief In-place softmax over `x` (n). The maximum is subtracted first so exp never overflows;
/// a row of all -inf is left as NaN, as in PyTorch.
inline void softmax(float* x, std::int64_t n) {
  if (n <= 0) return;
  float max_val = x[0];
  for (std::int64_t i = 1; i < n; ++i) max_val = std::fmax(max_val, x[i]);
  double sum = 0.0;
  for (std::int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - max_val);
    sum += x[i];
  }
  const float inv = float(1.0 / sum);
  for (std::int64_t i = 0; i < n; ++i) x[i] *= inv;
}

/// \brief SiLU (swish): x * sigmoid(x), in place. `x` is (n).
inline void silu(float* x, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) x[i] = x[i] / (1.0f + std::exp(-x[i]));
}

/// \brief SwiGLU, LLaMA's FFN gate: out = silu(gate) * up. All (n); `out` may equal `gate` or `up`.
inline void swiglu(float* out, const float* gate, const float* up, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) out[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

/// \brief Exact GELU, torch's default: 0.5 x (1 + erf(x / sqrt 2)), in place. `x` is (n).
inline void gelu_erf(float* x, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) x[i] = 0.5f * x[i] * (1.0f + std::erf(x[i] * 0.70710678118654752f));
}

/// \brief QuickGELU, OpenAI CLIP's: x * sigmoid(1.702 x), in place. `x` is (n).
inline void quick_gelu(float* x, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) x[i] = x[i] / (1.0f + std::exp(-1.702f * x[i]));
}

// ---- attention --------------------------------------------------------------------------------

/// \brief One head of causal self-attention over a KV cache:
///   s_j = scale * q . k_j   (j < n_keys),  p = softmax(s),  out = sum_j p_j v_j.
/// `q`, `out` are (head_dim); key/value row j is at k + j*kv_stride, v + j*kv_stride (head_dim
/// floats each); `scratch` is (n_keys) and ends up holding p.
/// K and V rows may be float or f16 (a KV cache stored in f16).
template <class KV>
inline void attention_head(float* out, const float* q, const KV* k, const KV* v, std::int64_t n_keys,
                           std::int64_t head_dim, std::int64_t kv_stride, float scale, float* scratch) {
  for (std::int64_t j = 0; j < n_keys; ++j) scratch[j] = dot(q, k + j * kv_stride, head_dim) * scale;
  softmax(scratch, n_keys);
  for (std::int64_t d = 0; d < head_dim; ++d) out[d] = 0.0f;
  for (std::int64_t j = 0; j < n_keys; ++j) axpy(out, scratch[j], v + j * kv_stride, head_dim);
}

/// \brief The gated adapter step of LLaMA-Adapter (Zhang et al. 2023, zero-init attention): attention of the
/// query over the adaptation prompts, softmaxed on its own and added with a per-head factor:
///   s_j = scale * q . ka_j  (j < n_prompts),  p = softmax(s),  out += gate * sum_j p_j va_j.
/// `gate` is the finished factor (tanh(g) * new_gate for V2, g for V1). Shapes as attention_head.
inline void adapter_attention_head(float* out, const float* q, const float* ka, const float* va, std::int64_t n_prompts,
                                   std::int64_t head_dim, std::int64_t kv_stride, float scale, float gate,
                                   float* scratch) {
  for (std::int64_t j = 0; j < n_prompts; ++j) scratch[j] = dot(q, ka + j * kv_stride, head_dim) * scale;
  softmax(scratch, n_prompts);
  for (std::int64_t j = 0; j < n_prompts; ++j) axpy(out, gate * scratch[j], va + j * kv_stride, head_dim);
}

// ---- conversions ------------------------------------------------------------------------------

/// \brief Widen (n) f16 values to f32 (exact).
inline void convert_f16_to_f32(float* out, const f16_t* in, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) out[i] = f16_to_f32(in[i].bits);
}
/// \brief Narrow (n) f32 values to f16, round to nearest even.
inline void convert_f32_to_f16(f16_t* out, const float* in, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) out[i].bits = f32_to_f16(in[i]);
}
/// \brief Widen (n) bf16 values to f32 (exact).
inline void convert_bf16_to_f32(float* out, const bf16_t* in, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) out[i] = bf16_to_f32(in[i].bits);
}
/// \brief Narrow (n) f32 values to bf16, round to nearest even.
inline void convert_f32_to_bf16(bf16_t* out, const float* in, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) out[i].bits = f32_to_bf16(in[i]);
}

}  // namespace lav2::kernels::ref
