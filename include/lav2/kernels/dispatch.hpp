// The kernels the model calls, and the one place that chooses between the scalar reference
// (kernels/ref, the specification) and the xsimd kernels (kernels/simd).
//
// LAV2_USE_SIMD (set by CMake, default ON) selects simd:: instantiated for xsimd::default_arch,
// the best instruction set the compiler is allowed to use (-march): AVX-512, AVX2+FMA, SSE, NEON,
// or xsimd's scalar emulation. With LAV2_USE_SIMD=0 every call goes to ref::.
//
// Kernels take pointers and sizes, never model configs; none allocates except matmul's per-call
// packing scratch; none throws. Unless a kernel says otherwise, pointers must not alias.
#pragma once

#include <cstdint>

#include "lav2/core/thread_pool.hpp"
#include "lav2/kernels/epilogue.hpp"
#include "lav2/kernels/ref/matmul.hpp"
#include "lav2/kernels/ref/ops.hpp"
#include "lav2/tensor/dtype.hpp"
#include "lav2/tensor/mat_ptr.hpp"

#ifndef LAV2_USE_SIMD
#define LAV2_USE_SIMD 1
#endif

#if LAV2_USE_SIMD
#include "lav2/kernels/simd/convert.hpp"
#include "lav2/kernels/simd/matmul.hpp"
#include "lav2/kernels/simd/ops.hpp"
#define LAV2_KERNEL_CALL(name, ...) simd::name##_fn{}(xsimd::default_arch{}, __VA_ARGS__)
#else
#define LAV2_KERNEL_CALL(name, ...) ref::name(__VA_ARGS__)
#endif

namespace lav2::kernels {

/// \brief Name of the instruction set the dispatched kernels use ("avx2", "avx512bw", "ref", ...).
inline const char* kernel_arch_name() {
#if LAV2_USE_SIMD
  return xsimd::default_arch::name();
#else
  return "ref";
#endif
}

/// \brief out[M, N] = x[M, K] · w[N, K]^T: nn.Linear, weights as PyTorch stores them; `ep`
/// optionally adds the bias and/or accumulates into `out` (a residual) in the same pass
/// (epilogue.hpp: the same bits as separate adds).
/// \tparam W float, f16_t or bf16_t; 16-bit weights are widened exactly to f32 before multiplying.
/// \param pool threads to split the N output features over; each output is computed by one
///   thread, so results are bit-identical for any pool size. M < 4 uses the matvec path (one
///   pass over w per row); larger M the packed GEMM, whose outputs are single FMA chains over
///   k = 0..K-1 (simd/matmul.hpp). The two paths may differ in the last bits for the same row.
template <class W>
void matmul(ThreadPool& pool, float* out, const float* x, const W* w, std::int64_t M, std::int64_t N, std::int64_t K,
            Epilogue ep = {}) {
#if LAV2_USE_SIMD
  simd::matmul_fn{}(xsimd::default_arch{}, pool, out, x, w, M, N, K, ep);
#else
  ref::matmul(pool, out, x, w, M, N, K, ep);
#endif
}

/// \brief out[M, N] = x[M, K] · w^T for a weight handle of any supported dtype: the one closed
/// dtype switch of lav2. `w` is (N, K) with contiguous rows (the binders guarantee it; a padded
/// stride is a caller's bug and throws internal_error). A dtype outside is_matmul_dtype() throws
/// internal_error too: the loaders refuse such files before any kernel runs.
inline void matmul(ThreadPool& pool, float* out, const float* x, const MatPtr& w, std::int64_t M, Epilogue ep = {}) {
  LAV2_ASSERT(w.contiguous());
  const std::int64_t N = w.rows, K = w.cols;
  switch (w.dtype) {
    case DType::f32: return matmul(pool, out, x, static_cast<const float*>(w.data), M, N, K, ep);
    case DType::f16: return matmul(pool, out, x, static_cast<const f16_t*>(w.data), M, N, K, ep);
    case DType::bf16: return matmul(pool, out, x, static_cast<const bf16_t*>(w.data), M, N, K, ep);
    default: break;
  }
  LAV2_THROW(internal_error, "matmul: weight dtype ", dtype_name(w.dtype), " has no kernel");
}

/// \brief RMSNorm: out = x * rsqrt(mean(x^2) + eps) * weight; `weight` may be null. (n) each.
inline void rmsnorm(float* out, const float* x, const float* weight, std::int64_t n, float eps) {
  LAV2_KERNEL_CALL(rmsnorm, out, x, weight, n, eps);
}
/// \brief LayerNorm: out = (x - mean) / sqrt(var + eps) * weight + bias; weight/bias may be null.
inline void layernorm(float* out, const float* x, const float* weight, const float* bias, std::int64_t n, float eps) {
  LAV2_KERNEL_CALL(layernorm, out, x, weight, bias, n, eps);
}
/// \brief Rotates interleaved pairs (x[2i], x[2i+1]) of `x` (head_dim) by cos[i], sin[i].
inline void rope_interleaved(float* x, std::int64_t head_dim, const float* cos, const float* sin) {
  LAV2_KERNEL_CALL(rope_interleaved, x, head_dim, cos, sin);
}
/// \brief In-place, max-subtracted softmax of `x` (n).
inline void softmax(float* x, std::int64_t n) { LAV2_KERNEL_CALL(softmax, x, n); }
/// \brief In-place x * sigmoid(x).
inline void silu(float* x, std::int64_t n) { LAV2_KERNEL_CALL(silu, x, n); }
/// \brief out = silu(gate) * up; `out` may equal `gate` or `up`.
inline void swiglu(float* out, const float* gate, const float* up, std::int64_t n) {
  LAV2_KERNEL_CALL(swiglu, out, gate, up, n);
}
/// \brief In-place exact GELU, 0.5 x (1 + erf(x / sqrt 2)).
inline void gelu_erf(float* x, std::int64_t n) { LAV2_KERNEL_CALL(gelu_erf, x, n); }
/// \brief In-place QuickGELU, x * sigmoid(1.702 x).
inline void quick_gelu(float* x, std::int64_t n) { LAV2_KERNEL_CALL(quick_gelu, x, n); }
/// \brief sum_i a[i] * b[i].
inline float dot(const float* a, const float* b, std::int64_t n) { return LAV2_KERNEL_CALL(dot, a, b, n); }
/// \brief y += a * x.
inline void axpy(float* y, float a, const float* x, std::int64_t n) { LAV2_KERNEL_CALL(axpy, y, a, x, n); }
/// \brief y += x.
inline void add(float* y, const float* x, std::int64_t n) { LAV2_KERNEL_CALL(add, y, x, n); }

/// \brief One attention head over a KV cache: out = softmax(scale * q · k_j) · v.
/// Row j of k / v is at k + j*kv_stride / v + j*kv_stride; `scratch` is (n_keys).
/// K and V rows are float or f16_t (an f16 KV cache, widened exactly as they are read).
template <class KV>
inline void attention_head(float* out, const float* q, const KV* k, const KV* v, std::int64_t n_keys,
                           std::int64_t head_dim, std::int64_t kv_stride, float scale, float* scratch) {
  LAV2_KERNEL_CALL(attention_head, out, q, k, v, n_keys, head_dim, kv_stride, scale, scratch);
}
/// \brief The gated adapter step: out += gate * softmax(scale * q · ka_j) · va, with `gate` the
/// finished per-head factor (tanh(g) * new_gate, or g for V1). `scratch` is (n_prompts).
inline void adapter_attention_head(float* out, const float* q, const float* ka, const float* va, std::int64_t n_prompts,
                                   std::int64_t head_dim, std::int64_t kv_stride, float scale, float gate,
                                   float* scratch) {
  LAV2_KERNEL_CALL(adapter_attention_head, out, q, ka, va, n_prompts, head_dim, kv_stride, scale, gate, scratch);
}

/// \brief Exact f16 -> f32 of (n) values.
inline void convert_f16_to_f32(float* out, const f16_t* in, std::int64_t n) {
  LAV2_KERNEL_CALL(convert_f16_to_f32, out, in, n);
}
/// \brief f32 -> f16, round to nearest even.
inline void convert_f32_to_f16(f16_t* out, const float* in, std::int64_t n) {
  LAV2_KERNEL_CALL(convert_f32_to_f16, out, in, n);
}
/// \brief Exact bf16 -> f32.
inline void convert_bf16_to_f32(float* out, const bf16_t* in, std::int64_t n) {
  LAV2_KERNEL_CALL(convert_bf16_to_f32, out, in, n);
}
/// \brief f32 -> bf16, round to nearest even.
inline void convert_f32_to_bf16(bf16_t* out, const float* in, std::int64_t n) {
  LAV2_KERNEL_CALL(convert_f32_to_bf16, out, in, n);
}

}  // namespace lav2::kernels

#undef LAV2_KERNEL_CALL
