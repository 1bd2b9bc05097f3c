// A tuned linear layer and its backward (training): a frozen weight W (N, K) gets no gradient
// (LLaMA's), a trainable one gets dW (the visual branch's linears in pretrain); the bias, scale
// and LoRA tensors that exist get theirs, and the input gets dx. The forms are
// those of the inference model (model/llama_model.hpp, linear_):
//   plain / bias   y = W x + b
//   input scale    y = W (s x) + b                    s (K)   chat65b
//   output scale   y = s (W x + b)                    s (N)   the paper
//   LoRA           y = W x + b + l2 (l1 x)            l1 (r, K), l2 (N, r)   (no alpha / r)
// Rows are tokens: x (M, K), y and dy (M, N).
// Backward, with d = dy s (output scale) or dy:
//   ds_out += sum_m dy u,  u = W x + b      db += sum_m d      dW += d^T xin  (xin = s x or x)
//   dx = (d W) s (input scale: ds_in += sum_m (d W) x) or d W
//   LoRA: mid = l1 x (M, r);  dl2 += dy^T mid;  dmid = dy l2;  dl1 += dmid^T x;  dx += dmid l1
// The scalar reference (ref::) is a template so that the tests run it in double; the fast path
// runs every product as a GEMM through kernels::matmul (the dispatched SIMD kernels), on
// transposed copies where the product needs the other orientation.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "lav2/core/error.hpp"
#include "lav2/core/thread_pool.hpp"
#include "lav2/kernels/dispatch.hpp"
#include "lav2/model/adapter_spec.hpp"
#include "lav2/tensor/mat_ptr.hpp"
#include "lav2/train/workspace.hpp"

namespace lav2::train {

using model::ScaleMode;

/// \brief A linear's tensors; a null pointer is a tensor the model lacks.
template <class T>
struct LinearParams {
  const T* weight = nullptr;               // (N, K)
  const T* bias = nullptr;                 // (N)
  const T* scale = nullptr;                // (K) for ScaleMode::input, (N) for ScaleMode::output
  ScaleMode scale_mode = ScaleMode::none;  //
  const T* lora_l1 = nullptr;              // (rank, K)
  const T* lora_l2 = nullptr;              // (N, rank)
  std::int64_t N = 0, K = 0, rank = 0;     // out features, in features, LoRA rank
  bool has_output_scale() const { return scale && scale_mode == ScaleMode::output; }
  bool has_input_scale() const { return scale && scale_mode == ScaleMode::input; }
  bool has_lora() const { return lora_l1 && lora_l2 && rank > 0; }
};

/// \brief Gradient buffers of the trainable tensors, accumulated (+=); null for a frozen or
/// absent one (a frozen weight has none).
template <class T>
struct LinearGrads {
  T* bias = nullptr;     // (N)
  T* scale = nullptr;    // (K) or (N)
  T* lora_l1 = nullptr;  // (rank, K)
  T* lora_l2 = nullptr;  // (N, rank)
  T* weight = nullptr;   // (N, K)
};

namespace detail {
template <class T>
struct NoDeduce {
  using type = T;
};
}  // namespace detail

namespace ref {

/// \brief y (M, N) = the linear of x (M, K). Keeps for the backward: `u` (M, N) = W x + b when
/// the linear has an output scale, `mid` (M, rank) = l1 x when it has LoRA (null otherwise).
template <class T>
void linear_forward(T* y, typename detail::NoDeduce<T>::type* u, typename detail::NoDeduce<T>::type* mid, const T* x,
                    std::int64_t M, const LinearParams<T>& p) {
  const std::int64_t N = p.N, K = p.K, r = p.rank;
  for (std::int64_t m = 0; m < M; ++m) {
    const T* xr = x + m * K;
    if (p.has_lora())
      for (std::int64_t j = 0; j < r; ++j) {
        T acc = 0;
        for (std::int64_t k = 0; k < K; ++k) acc += p.lora_l1[j * K + k] * xr[k];
        mid[m * r + j] = acc;
      }
    for (std::int64_t n = 0; n < N; ++n) {
      T acc = 0;
      for (std::int64_t k = 0; k < K; ++k)
        acc += p.weight[n * K + k] * xr[k] * (p.has_input_scale() ? p.scale[k] : T(1));
      if (p.bias) acc += p.bias[n];
      if (p.has_output_scale()) {
        u[m * N + n] = acc;
        acc *= p.scale[n];
      }
      if (p.has_lora())
        for (std::int64_t j = 0; j < r; ++j) acc += p.lora_l2[n * r + j] * mid[m * r + j];
      y[m * N + n] = acc;
    }
  }
}

/// \brief dx (M, K; null when the input needs no gradient) and the trainable tensors' gradients
/// `g` from dy (M, N); x, u, mid as the forward kept them.
template <class T>
void linear_backward(T* dx, const LinearGrads<T>& g, const T* dy, const T* x,
                     const typename detail::NoDeduce<T>::type* u, const typename detail::NoDeduce<T>::type* mid,
                     std::int64_t M, const LinearParams<T>& p) {
  const std::int64_t N = p.N, K = p.K, r = p.rank;
  std::vector<T> d(static_cast<std::size_t>(N)), dmid(static_cast<std::size_t>(r));
  for (std::int64_t m = 0; m < M; ++m) {
    const T *dyr = dy + m * N, *xr = x + m * K;
    for (std::int64_t n = 0; n < N; ++n) {
      d[std::size_t(n)] = dyr[n] * (p.has_output_scale() ? p.scale[n] : T(1));
      if (p.has_output_scale() && g.scale) g.scale[n] += dyr[n] * u[m * N + n];
      if (g.bias) g.bias[n] += d[std::size_t(n)];
    }
    if (g.weight)
      for (std::int64_t n = 0; n < N; ++n)
        for (std::int64_t k = 0; k < K; ++k)
          g.weight[n * K + k] += d[std::size_t(n)] * xr[k] * (p.has_input_scale() ? p.scale[k] : T(1));
    for (std::int64_t k = 0; k < K; ++k) {
      T acc = 0;  // (d W)[k]
      for (std::int64_t n = 0; n < N; ++n) acc += d[std::size_t(n)] * p.weight[n * K + k];
      if (p.has_input_scale() && g.scale) g.scale[k] += acc * xr[k];
      if (dx) dx[m * K + k] = acc * (p.has_input_scale() ? p.scale[k] : T(1));
    }
    if (!p.has_lora()) continue;
    for (std::int64_t j = 0; j < r; ++j) {
      T acc = 0;
      for (std::int64_t n = 0; n < N; ++n) {
        acc += dyr[n] * p.lora_l2[n * r + j];
        if (g.lora_l2) g.lora_l2[n * r + j] += dyr[n] * mid[m * r + j];
      }
      dmid[std::size_t(j)] = acc;
    }
    for (std::int64_t k = 0; k < K; ++k)
      for (std::int64_t j = 0; j < r; ++j) {
        if (g.lora_l1) g.lora_l1[j * K + k] += dmid[std::size_t(j)] * xr[k];
        if (dx) dx[m * K + k] += dmid[std::size_t(j)] * p.lora_l1[j * K + k];
      }
  }
}

}  // namespace ref

namespace detail {
/// out[m, n] = in[m, n] s[n] over (M, N); `out` may equal `in`.
inline void scale_columns(float* out, const float* in, const float* s, std::int64_t M, std::int64_t N) {
  for (std::int64_t m = 0; m < M; ++m)
    for (std::int64_t n = 0; n < N; ++n) out[m * N + n] = in[m * N + n] * s[n];
}

/// W (N, K) of f32, f16 or bf16 transposed to (K, N) in the workspace; quantised weights have no
/// transpose that the backward could multiply with, and are refused.
inline MatPtr transposed_weight(Workspace& ws, const MatPtr& w) {
  const std::int64_t N = w.rows, K = w.cols;
  if (!w.contiguous()) LAV2_THROW(internal_error, "linear backward: weight rows are padded");
  if (w.dtype == DType::f32) {
    float* t = Workspace::grow(ws.e, N * K);
    transpose(t, static_cast<const float*>(w.data), N, K);
    return MatPtr::of(t, K, N);
  }
  if (w.dtype == DType::f16 || w.dtype == DType::bf16) {
    std::uint16_t* t = Workspace::grow(ws.half, N * K);
    transpose(t, static_cast<const std::uint16_t*>(w.data), N, K);
    return MatPtr(w.dtype, t, K, N, N);
  }
  LAV2_THROW(input_error, "training: a frozen weight of dtype ", dtype_name(w.dtype),
             " has no backward; use f32, f16 or bf16 weights");
}
}  // namespace detail

/// \brief The fast forward: as ref::linear_forward, with the weight `w` (N, K) a handle
/// in its stored dtype (the p.weight pointer is not read) and every product through
/// kernels::matmul.
inline void linear_forward(ThreadPool& pool, Workspace& ws, float* y, float* u, float* mid, const float* x,
                           std::int64_t M, const MatPtr& w, const LinearParams<float>& p) {
  const std::int64_t N = w.rows, K = w.cols, r = p.rank;
  LAV2_ASSERT(N == p.N && K == p.K);
  const float* in = x;
  if (p.has_input_scale()) {
    float* xs = Workspace::grow(ws.a, M * K);
    for (std::int64_t m = 0; m < M; ++m)
      for (std::int64_t k = 0; k < K; ++k) xs[m * K + k] = x[m * K + k] * p.scale[k];
    in = xs;
  }
  kernels::matmul(pool, y, in, w, M, kernels::Epilogue{p.bias, false});
  if (p.has_output_scale()) {
    std::copy(y, y + M * N, u);
    detail::scale_columns(y, y, p.scale, M, N);
  }
  if (p.has_lora()) {
    kernels::matmul(pool, mid, x, MatPtr::of(p.lora_l1, r, K), M);
    kernels::matmul(pool, y, mid, MatPtr::of(p.lora_l2, N, r), M, kernels::Epilogue{nullptr, true});
  }
}

/// \brief The fast backward: as ref::linear_backward, every product a GEMM through
/// kernels::matmul (the outputs' sums run in the kernels' order, so they differ from the
/// reference's in the last bits).
inline void linear_backward(ThreadPool& pool, Workspace& ws, float* dx, const LinearGrads<float>& g, const float* dy,
                            const float* x, const float* u, const float* mid, std::int64_t M, const MatPtr& w,
                            const LinearParams<float>& p) {
  const std::int64_t N = w.rows, K = w.cols, r = p.rank;
  LAV2_ASSERT(N == p.N && K == p.K);
  // d = dy s (output scale), with ds += sum_m dy u.
  const float* d = dy;
  if (p.has_output_scale()) {
    float* du = Workspace::grow(ws.a, M * N);
    detail::scale_columns(du, dy, p.scale, M, N);
    if (g.scale)
      for (std::int64_t i = 0; i < M * N; ++i) g.scale[i % N] += dy[i] * u[i];
    d = du;
  }
  if (g.bias)
    for (std::int64_t m = 0; m < M; ++m) kernels::add(g.bias, d + m * N, N);
  if (g.weight) {  // dW (N, K) += d^T xin: rows of d^T times rows of xin^T
    float* dt = Workspace::grow(ws.c, N * M);
    transpose(dt, d, M, N);
    float* xt = Workspace::grow(ws.g, K * M);
    transpose(xt, x, M, K);
    if (p.has_input_scale())
      for (std::int64_t k = 0; k < K; ++k)
        for (std::int64_t m = 0; m < M; ++m) xt[k * M + m] *= p.scale[k];
    kernels::matmul(pool, g.weight, dt, MatPtr::of(xt, K, M), N, kernels::Epilogue{nullptr, true});
  }
  // dx = d W: the GEMM multiplies by a transposed right-hand side, so W^T (K, N) is made.
  const bool need_dxin = dx || (p.has_input_scale() && g.scale);
  if (need_dxin) {
    float* dxin = dx ? dx : Workspace::grow(ws.b, M * K);
    kernels::matmul(pool, dxin, d, detail::transposed_weight(ws, w), M);
    if (p.has_input_scale())
      for (std::int64_t m = 0; m < M; ++m)
        for (std::int64_t k = 0; k < K; ++k) {
          if (g.scale) g.scale[k] += dxin[m * K + k] * x[m * K + k];
          dxin[m * K + k] *= p.scale[k];
        }
  }
  if (!p.has_lora() || !(dx || g.lora_l1 || g.lora_l2)) return;
  float* dyt = Workspace::grow(ws.c, N * M);  // dy^T (N, M)
  transpose(dyt, dy, M, N);
  if (g.lora_l2) {  // dl2 (N, r) += dy^T mid: rows of dy^T times rows of mid^T
    float* midt = Workspace::grow(ws.d, r * M);
    transpose(midt, mid, M, r);
    kernels::matmul(pool, g.lora_l2, dyt, MatPtr::of(midt, r, M), N, kernels::Epilogue{nullptr, true});
  }
  // dmid (M, r) = dy l2; l2^T (r, N) is made.
  float* l2t = Workspace::grow(ws.d, r * N);
  transpose(l2t, p.lora_l2, N, r);
  float* dmid = Workspace::grow(ws.f, M * r);
  kernels::matmul(pool, dmid, dy, MatPtr::of(l2t, r, N), M);
  if (g.lora_l1) {  // dl1 (r, K) += dmid^T x
    float* dmidt = Workspace::grow(ws.d, r * M);
    transpose(dmidt, dmid, M, r);
    float* xt = Workspace::grow(ws.c, K * M);
    transpose(xt, x, M, K);
    kernels::matmul(pool, g.lora_l1, dmidt, MatPtr::of(xt, K, M), r, kernels::Epilogue{nullptr, true});
  }
  if (dx) {  // dx += dmid l1
    float* l1t = Workspace::grow(ws.d, K * r);
    transpose(l1t, p.lora_l1, r, K);
    kernels::matmul(pool, dx, dmid, MatPtr::of(l1t, K, r), M, kernels::Epilogue{nullptr, true});
  }
}

}  // namespace lav2::train
