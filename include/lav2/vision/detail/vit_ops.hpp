// Internals shared by the CLIP tower (clip_vit.hpp) and the visual projector
// (visual_projector.hpp): binding checkpoint tensors to typed views, and the token-batched steps
// of a pre-norm ViT block. Every step works on all tokens at once ([n_tokens, width] row-major),
// so each linear is one GEMM with M = n_tokens.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "lav2/core/error.hpp"
#include "lav2/core/thread_pool.hpp"
#include "lav2/io/tensor_map.hpp"
#include "lav2/kernels/dispatch.hpp"
#include "lav2/tensor/tensor.hpp"

namespace lav2::vision::detail {

/// Converts a float tensor of any dtype (f32/f16/bf16) and strides to a contiguous Tensor<T>.
template <class T>
std::shared_ptr<Tensor<T>> convert_tensor(const AnyTensorView& src, const std::string& file, const std::string& name) {
  if (src.dtype != DType::f32 && src.dtype != DType::f16 && src.dtype != DType::bf16)
    LAV2_THROW(load_error, "checkpoint '", file, "': tensor '", name, "' has dtype ", dtype_name(src.dtype),
               ", expected f32, f16 or bf16");
  auto out = std::make_shared<Tensor<T>>(src.shape);
  const std::int64_t n = src.numel();
  std::int64_t idx[kMaxRank] = {};
  for (std::int64_t flat = 0; flat < n; ++flat) {
    std::int64_t off = 0;
    for (int d = 0; d < src.shape.rank; ++d) off += idx[d] * src.strides[std::size_t(d)];
    float v = 0.0f;
    if (src.dtype == DType::f32) v = static_cast<const float*>(src.data)[off];
    else if (src.dtype == DType::f16) v = f16_to_f32(static_cast<const std::uint16_t*>(src.data)[off]);
    else v = bf16_to_f32(static_cast<const std::uint16_t*>(src.data)[off]);
    (*out)[flat] = from_f32<T>(v);
    for (int d = src.shape.rank - 1; d >= 0; --d) {
      if (++idx[d] < src.shape[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}

/// Looks `name` up in `t` and checks its shape; binds `slot` in place when the dtype is `T` and
/// the layout contiguous, else to a converted copy kept in `owned`.
template <class T>
void bind(TensorView<const T>& slot, const io::TensorMap& t, const std::string& name, const Shape& shape,
          const std::string& file, std::vector<std::shared_ptr<const void>>& owned) {
  const auto it = t.find(name);
  if (it == t.end())
    LAV2_THROW(load_error, "checkpoint '", file, "': tensor '", name, "' is missing (expected shape ", shape.to_string(), ")");
  const AnyTensorView& src = it->second;
  if (src.shape != shape)
    LAV2_THROW(load_error, "checkpoint '", file, "': tensor '", name, "' has shape ", src.shape.to_string(), ", expected ",
               shape.to_string());
  if (src.dtype == dtype_of_v<T> && TensorView<const T>(static_cast<const T*>(src.data), src.shape, src.strides).is_contiguous()) {
    slot = TensorView<const T>(static_cast<const T*>(src.data), src.shape);
    return;
  }
  auto copy = convert_tensor<T>(src, file, name);
  slot = TensorView<const T>(copy->data(), copy->shape());
  owned.push_back(std::move(copy));
}

/// The shape of `name` in `t`, or a load_error naming what it was needed for.
inline const Shape& shape_of(const io::TensorMap& t, const std::string& name, const std::string& file, int rank) {
  const auto it = t.find(name);
  if (it == t.end()) LAV2_THROW(load_error, "checkpoint '", file, "': tensor '", name, "' is missing");
  if (it->second.shape.rank != rank)
    LAV2_THROW(load_error, "checkpoint '", file, "': tensor '", name, "' has shape ", it->second.shape.to_string(),
               ", expected rank ", rank);
  return it->second.shape;
}

/// LayerNorm over each row of x [rows, n] into out, eps as given. `out` may equal `x`: the
/// kernel's pointers must not alias, so an in-place row goes through a per-thread copy.
inline void layernorm_rows(ThreadPool& pool, float* out, const float* x, const float* w, const float* b,
                           std::int64_t rows, std::int64_t n, float eps) {
  pool.parallel_for(rows, [&](std::int64_t r0, std::int64_t r1) {
    std::vector<float> row(out == x ? std::size_t(n) : 0);
    for (std::int64_t r = r0; r < r1; ++r) {
      const float* src = x + r * n;
      if (out == x) src = static_cast<const float*>(std::memcpy(row.data(), src, std::size_t(n) * sizeof(float)));
      kernels::layernorm(out + r * n, src, w, b, n, eps);
    }
  }, 16);
}

/// out[M, N] = x[M, K] · w[N, K]^T + bias[N] (nn.Linear); bias may be null. With `residual`,
/// out += that instead (x = x + f(x) of a pre-norm block), fused into the GEMM's store.
template <class W>
void linear(ThreadPool& pool, float* out, const float* x, const W* w, const float* bias, std::int64_t M,
            std::int64_t N, std::int64_t K, bool residual = false) {
  kernels::matmul(pool, out, x, w, M, N, K, kernels::Epilogue{bias, residual});
}

/// Multi-head self-attention without mask over `qkv` [n_tokens, 3*width] (rows q | k | v, heads
/// contiguous inside each), for the first `n_queries` tokens: out[i, h*hd:(h+1)*hd] =
/// softmax((scale * q_i,h) · k_j,h) v_j,h over all n_tokens keys. out is [n_queries, width].
/// q is scaled as it is gathered, before the product, as nn.MultiheadAttention and timm's
/// Attention do (exact for CLIP's head size 64, where scale = 1/8). Per head, two GEMMs:
/// S = Q K^T [n_queries, n_tokens], row-wise softmax, then O = P V, with V gathered transposed
/// so both run on the register-blocked matmul. Heads are split over threads (each head on one
/// thread, so results do not depend on the thread count); each thread keeps its scratch.
inline void self_attention(ThreadPool& pool, float* out, const float* qkv, std::int64_t n_tokens,
                           std::int64_t n_queries, std::int64_t width, std::int64_t n_heads) {
  const std::int64_t hd = width / n_heads, stride = 3 * width;
  const float scale = 1.0f / std::sqrt(float(hd));
  pool.parallel_for(n_heads, [&](std::int64_t h0, std::int64_t h1) {
    // q | k | vt | s | o, reused across calls: s alone is 264 KiB for CLIP's 257 tokens.
    thread_local std::vector<float> scratch;
    const std::int64_t nq = n_queries * hd, nk = n_tokens * hd, ns = n_queries * n_tokens;
    scratch.resize(std::size_t(nq + 2 * nk + ns + nq));
    float* q = scratch.data();
    float* k = q + nq;
    float* vt = k + nk;
    float* s = vt + nk;
    float* o = s + ns;
    for (std::int64_t h = h0; h < h1; ++h) {
      for (std::int64_t i = 0; i < n_queries; ++i) {
        const float* row = qkv + i * stride + h * hd;
        for (std::int64_t d = 0; d < hd; ++d) q[i * hd + d] = row[d] * scale;
      }
      for (std::int64_t j = 0; j < n_tokens; ++j) {
        const float* row = qkv + j * stride + h * hd;
        std::memcpy(k + j * hd, row + width, std::size_t(hd) * sizeof(float));
        for (std::int64_t d = 0; d < hd; ++d) vt[d * n_tokens + j] = row[2 * width + d];
      }
      // Inside this parallel_for the matmuls run serially on this thread.
      kernels::matmul(pool, s, q, k, n_queries, n_tokens, hd);
      for (std::int64_t i = 0; i < n_queries; ++i) kernels::softmax(s + i * n_tokens, n_tokens);
      kernels::matmul(pool, o, s, vt, n_queries, hd, n_tokens);
      for (std::int64_t i = 0; i < n_queries; ++i)
        std::memcpy(out + i * width + h * hd, o + i * hd, std::size_t(hd) * sizeof(float));
    }
  });
}

}  // namespace lav2::vision::detail
