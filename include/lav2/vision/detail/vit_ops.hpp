// Internals shared by the CLIP tower (clip_vit.hpp) and the visual projector
// (visual_projector.hpp): binding a weight table from named tensors, and the token-batched steps
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
#include "lav2/io/weight_bind.hpp"
#include "lav2/kernels/dispatch.hpp"
#include "lav2/tensor/mat_ptr.hpp"
#include "lav2/tensor/tensor.hpp"
#include "lav2/vision/vit_block_weights.hpp"

namespace lav2::vision::detail {

/// Binds every row of `w`'s table (its for_each_tensor) from `t`, keys `prefix` + the table
/// name, checking presence, shape and dtype; converted copies go to w.owned.
template <class Weights, class Config>
void bind_weights(Weights& w, const Config& c, const io::TensorMap& t, const std::string& prefix,
                  const std::string& file) {
  for_each_tensor(w, c, [&](const io::TensorSpec& spec, auto& slot) {
    const std::string name = prefix + spec.name;
    const auto it = t.find(name);
    io::bind_row(slot, spec, name, it == t.end() ? nullptr : &it->second, file, w.owned);
  });
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
  pool.parallel_for(
      rows,
      [&](std::int64_t r0, std::int64_t r1) {
        std::vector<float> row(out == x ? std::size_t(n) : 0);
        for (std::int64_t r = r0; r < r1; ++r) {
          const float* src = x + r * n;
          if (out == x) src = static_cast<const float*>(std::memcpy(row.data(), src, std::size_t(n) * sizeof(float)));
          kernels::layernorm(out + r * n, src, w, b, n, eps);
        }
      },
      16);
}

/// out[M, N] = x[M, K] · w[N, K]^T + bias[N] (nn.Linear), w a (N, K) handle of any matmul
/// dtype; bias may be null. With `residual`, out += that instead (x = x + f(x) of a pre-norm
/// block), fused into the GEMM's store.
inline void linear(ThreadPool& pool, float* out, const float* x, const MatPtr& w, const TensorView<const float>& bias,
                   std::int64_t M, bool residual = false) {
  kernels::matmul(pool, out, x, w, M, kernels::Epilogue{bias.data(), residual});
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

/// The activation between a block's fc1 and fc2: CLIP's QuickGELU, timm's exact erf GELU.
enum class MlpActivation { quick_gelu, gelu_erf };

/// The buffers of vit_block for up to `n_tokens` rows, allocated once per forward pass.
struct VitScratch {
  Tensor<float> h, qkv, att, f;  // [N, width], [N, 3 width], [N, width], [N, hidden]
  VitScratch(std::int64_t n_tokens, std::int64_t width, std::int64_t hidden)
      : h(Shape{n_tokens, width}),
        qkv(Shape{n_tokens, 3 * width}),
        att(Shape{n_tokens, width}),
        f(Shape{n_tokens, std::max<std::int64_t>(hidden, 1)}) {}
};

/// One pre-norm block on x [n_tokens, width] (width and hidden from the weights):
///   x = x + proj(MHA(norm1(x)));  x = x + fc2(act(fc1(norm2(x))))   LayerNorm eps 1e-5
/// Keys and values come from all n_tokens rows; only the first `rows_out` rows are queried and
/// updated (the projector's last block needs only its Q query rows; the others would be dropped).
inline void vit_block(ThreadPool& pool, const VitBlockWeights& b, float* x, VitScratch& s, std::int64_t n_tokens,
                      std::int64_t rows_out, std::int64_t n_heads, MlpActivation act) {
  constexpr float kEps = 1e-5f;
  const std::int64_t C = b.qkv_weight.cols, H = b.fc1_weight.rows;
  layernorm_rows(pool, s.h.data(), x, b.norm1_weight.data(), b.norm1_bias.data(), n_tokens, C, kEps);
  linear(pool, s.qkv.data(), s.h.data(), b.qkv_weight, b.qkv_bias, n_tokens);
  self_attention(pool, s.att.data(), s.qkv.data(), n_tokens, rows_out, C, n_heads);
  linear(pool, x, s.att.data(), b.proj_weight, b.proj_bias, rows_out, /*residual=*/true);
  layernorm_rows(pool, s.h.data(), x, b.norm2_weight.data(), b.norm2_bias.data(), rows_out, C, kEps);
  linear(pool, s.f.data(), s.h.data(), b.fc1_weight, b.fc1_bias, rows_out);
  pool.parallel_for(
      rows_out,
      [&](std::int64_t r0, std::int64_t r1) {
        float* f = s.f.data() + r0 * H;
        if (act == MlpActivation::quick_gelu) kernels::quick_gelu(f, (r1 - r0) * H);
        else kernels::gelu_erf(f, (r1 - r0) * H);
      },
      16);
  linear(pool, x, s.f.data(), b.fc2_weight, b.fc2_bias, rows_out, /*residual=*/true);
}

}  // namespace lav2::vision::detail
