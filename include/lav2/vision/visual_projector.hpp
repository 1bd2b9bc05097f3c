// LLaMA-Adapter V2's visual projector (`forward_visual` after clip_encode_image, spec section 4.2):
//
//   f  = clip_proj_norm(clip_proj(clip_features))          [n_tokens, width]  Linear + LN
//   x  = [visual_query.weight; f]                          [Q + n_tokens, width], queries FIRST
//   for each visual_blocks.i (timm 0.3.2 Block, pre-norm):
//     x = x + attn.proj(MHA(norm1(x)))    qkv rows q | k | v, visual_heads heads of width/visual_heads,
//                                         softmax(q k^T * head_dim^-0.5) v, no mask
//     x = x + mlp.fc2(GELU(mlp.fc1(norm2(x))))   exact erf GELU
//   vq = visual_proj_norm(visual_proj(x[:Q]))              [Q, dim]
// LayerNorm eps 1e-5. All weights f32 (the adapter checkpoint stores them so; f16/bf16 are
// widened at load). Only the first Q rows leave the last block, so that block's attention,
// projection and MLP run on Q rows (the other rows would be discarded): identical results.
//
// Dims from the tensors: clip_dim (input) and width from clip_proj.weight (width, clip_dim), Q from
// visual_query.weight, n_blocks from the visual_blocks present, mlp hidden from fc1, dim from
// visual_proj.weight. The head count is not in the checkpoint: the official load() hard-codes 16.
#pragma once

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
#include "lav2/vision/detail/vit_ops.hpp"

namespace lav2::vision {

/// \brief Run-time dims of the projector (official: 768, 768, 10, 8, 3072, 4096, 16).
struct VisualProjectorConfig {
  int clip_dim = 0;    ///< CLIP feature width (clip_proj input)
  int width = 0;       ///< v_embed_dim
  int n_queries = 0;   ///< Q, rows of visual_query
  int n_blocks = 0;    ///< v_depth
  int hidden_dim = 0;  ///< mlp.fc1 outputs
  int dim = 0;         ///< LLaMA dim (visual_proj outputs)
  int n_heads = 16;    ///< visual_heads (run-time parameter)
  /// Multiply-adds x 2 of the GEMMs and attention for `n_tokens` CLIP tokens, as encode() runs
  /// them (the last block on the Q query rows only).
  double flops(double n_tokens) const {
    const double Q = n_queries, N = Q + n_tokens, W = width, H = hidden_dim;
    double f = 2 * n_tokens * clip_dim * W;
    for (int b = 0; b < n_blocks; ++b) {
      const double R = b + 1 == n_blocks ? Q : N;
      f += 2 * N * 3 * W * W + 2 * 2 * R * N * W + 2 * R * (W * W + 2 * W * H);
    }
    return f + 2 * Q * W * dim;
  }
};

/// \brief One timm Block. Matrices are [out, in].
struct VisualBlockWeights {
  TensorView<const float> norm1_weight, norm1_bias;  // (width)
  TensorView<const float> qkv_weight;                // (3 width, width), rows q | k | v
  TensorView<const float> qkv_bias;                  // (3 width)
  TensorView<const float> proj_weight;               // (width, width)
  TensorView<const float> proj_bias;                 // (width)
  TensorView<const float> norm2_weight, norm2_bias;  // (width)
  TensorView<const float> fc1_weight;                // (hidden_dim, width)
  TensorView<const float> fc1_bias;                  // (hidden_dim)
  TensorView<const float> fc2_weight;                // (width, hidden_dim)
  TensorView<const float> fc2_bias;                  // (width)
};

/// \brief All projector weights.
struct VisualProjectorWeights {
  TensorView<const float> clip_proj_weight;               // (width, clip_dim)
  TensorView<const float> clip_proj_bias;                 // (width)
  TensorView<const float> clip_proj_norm_weight, clip_proj_norm_bias;  // (width)
  TensorView<const float> visual_query;                   // (Q, width)
  std::vector<VisualBlockWeights> blocks;                 // n_blocks
  TensorView<const float> visual_proj_weight;             // (dim, width)
  TensorView<const float> visual_proj_bias;               // (dim)
  TensorView<const float> visual_proj_norm_weight, visual_proj_norm_bias;  // (dim)
  std::vector<std::shared_ptr<const void>> owned;
};

/// \brief Calls fn(name, shape, slot) for every projector tensor, keys as in the adapter
/// checkpoint's 'model' dict.
template <class Fn>
void for_each_tensor(VisualProjectorWeights& w, const VisualProjectorConfig& c, Fn&& fn) {
  const std::int64_t W = c.width, H = c.hidden_dim, D = c.dim;
  fn(std::string("clip_proj.weight"), Shape{W, c.clip_dim}, w.clip_proj_weight);
  fn(std::string("clip_proj.bias"), Shape{W}, w.clip_proj_bias);
  fn(std::string("clip_proj_norm.weight"), Shape{W}, w.clip_proj_norm_weight);
  fn(std::string("clip_proj_norm.bias"), Shape{W}, w.clip_proj_norm_bias);
  fn(std::string("visual_query.weight"), Shape{c.n_queries, W}, w.visual_query);
  w.blocks.resize(std::size_t(c.n_blocks));
  for (int i = 0; i < c.n_blocks; ++i) {
    const std::string p = "visual_blocks." + std::to_string(i) + ".";
    VisualBlockWeights& b = w.blocks[std::size_t(i)];
    fn(p + "norm1.weight", Shape{W}, b.norm1_weight);
    fn(p + "norm1.bias", Shape{W}, b.norm1_bias);
    fn(p + "attn.qkv.weight", Shape{3 * W, W}, b.qkv_weight);
    fn(p + "attn.qkv.bias", Shape{3 * W}, b.qkv_bias);
    fn(p + "attn.proj.weight", Shape{W, W}, b.proj_weight);
    fn(p + "attn.proj.bias", Shape{W}, b.proj_bias);
    fn(p + "norm2.weight", Shape{W}, b.norm2_weight);
    fn(p + "norm2.bias", Shape{W}, b.norm2_bias);
    fn(p + "mlp.fc1.weight", Shape{H, W}, b.fc1_weight);
    fn(p + "mlp.fc1.bias", Shape{H}, b.fc1_bias);
    fn(p + "mlp.fc2.weight", Shape{W, H}, b.fc2_weight);
    fn(p + "mlp.fc2.bias", Shape{W}, b.fc2_bias);
  }
  fn(std::string("visual_proj.weight"), Shape{D, W}, w.visual_proj_weight);
  fn(std::string("visual_proj.bias"), Shape{D}, w.visual_proj_bias);
  fn(std::string("visual_proj_norm.weight"), Shape{D}, w.visual_proj_norm_weight);
  fn(std::string("visual_proj_norm.bias"), Shape{D}, w.visual_proj_norm_bias);
}

/// \brief CLIP features -> the Q visual query tokens added to the adapter prompts.
class VisualProjector {
 public:
  /// \brief Binds the projector from the adapter checkpoint's 'model' dict (keys of spec 5.2).
  /// \param visual_heads attention heads of the visual blocks (the official load() uses 16); it
  ///   must divide the width, else input_error.
  /// \param keep_alive holds what the views in `model_dict` point into (f32 tensors are used in
  ///   place), for callers that do not keep it themselves.
  static VisualProjector from_tensors(const io::TensorMap& model_dict, const std::string& file, int visual_heads = 16,
                                      std::shared_ptr<const void> keep_alive = {}) {
    VisualProjector p;
    p.cfg_ = infer_config(model_dict, file);
    if (visual_heads <= 0 || p.cfg_.width % visual_heads != 0)
      LAV2_THROW(input_error, "visual_heads ", visual_heads, " does not divide the visual width ", p.cfg_.width,
                 " (from checkpoint '", file, "' clip_proj.weight)");
    p.cfg_.n_heads = visual_heads;
    p.w_ = std::make_shared<VisualProjectorWeights>();
    if (keep_alive) p.w_->owned.push_back(std::move(keep_alive));
    for_each_tensor(*p.w_, p.cfg_, [&](const std::string& name, const Shape& shape, auto& slot) {
      detail::bind(slot, model_dict, name, shape, file, p.w_->owned);
    });
    return p;
  }

  /// \brief Reads the dims from the tensors (n_heads stays at its default).
  static VisualProjectorConfig infer_config(const io::TensorMap& t, const std::string& file) {
    VisualProjectorConfig c;
    const Shape& cp = detail::shape_of(t, "clip_proj.weight", file, 2);
    c.width = int(cp[0]);
    c.clip_dim = int(cp[1]);
    c.n_queries = int(detail::shape_of(t, "visual_query.weight", file, 2)[0]);
    while (t.count("visual_blocks." + std::to_string(c.n_blocks) + ".attn.qkv.weight")) ++c.n_blocks;
    c.hidden_dim = c.n_blocks ? int(detail::shape_of(t, "visual_blocks.0.mlp.fc1.weight", file, 2)[0]) : 0;
    c.dim = int(detail::shape_of(t, "visual_proj.weight", file, 2)[0]);
    if (c.width <= 0 || c.clip_dim <= 0 || c.n_queries <= 0 || c.dim <= 0)
      LAV2_THROW(load_error, "checkpoint '", file, "': visual projector dims must be > 0 (width ", c.width, ", clip_dim ",
                 c.clip_dim, ", queries ", c.n_queries, ", dim ", c.dim, ")");
    return c;
  }

  const VisualProjectorConfig& config() const { return cfg_; }

  /// \brief clip_features [n_tokens, clip_dim] (or [1, n_tokens, clip_dim]) -> [Q, dim].
  Tensor<float> encode(ThreadPool& pool, const Tensor<float>& clip_features) const {
    const Shape& s = clip_features.shape();
    const bool ok = (s.rank == 2 && s[1] == cfg_.clip_dim && s[0] > 0) || (s.rank == 3 && s[0] == 1 && s[2] == cfg_.clip_dim && s[1] > 0);
    if (!ok)
      LAV2_THROW(input_error, "visual projector: features have shape ", s.to_string(), ", expected (n_tokens, ", cfg_.clip_dim, ")");
    const std::int64_t T = s[s.rank - 2];
    const VisualProjectorWeights& w = *w_;
    const std::int64_t Q = cfg_.n_queries, N = Q + T, C = cfg_.width, H = cfg_.hidden_dim, D = cfg_.dim;
    constexpr float kEps = 1e-5f;
    // x = [visual_query; clip_proj_norm(clip_proj(f))]
    Tensor<float> x(Shape{N, C});
    std::memcpy(x.data(), w.visual_query.data(), std::size_t(Q * C) * sizeof(float));
    detail::linear(pool, x.data() + Q * C, clip_features.data(), w.clip_proj_weight.data(), w.clip_proj_bias.data(), T, C, cfg_.clip_dim);
    detail::layernorm_rows(pool, x.data() + Q * C, x.data() + Q * C, w.clip_proj_norm_weight.data(), w.clip_proj_norm_bias.data(), T, C, kEps);

    Tensor<float> h(Shape{N, C}), qkv(Shape{N, 3 * C}), att(Shape{N, C}), f(Shape{N, std::max<std::int64_t>(H, 1)});
    for (std::size_t bi = 0; bi < w.blocks.size(); ++bi) {
      const VisualBlockWeights& b = w.blocks[bi];
      // Rows that must leave this block: all, except in the last block only the Q queries.
      const std::int64_t R = bi + 1 == w.blocks.size() ? Q : N;
      // x = x + proj(MHA(norm1(x))): keys/values from all N rows, queries from the first R.
      detail::layernorm_rows(pool, h.data(), x.data(), b.norm1_weight.data(), b.norm1_bias.data(), N, C, kEps);
      detail::linear(pool, qkv.data(), h.data(), b.qkv_weight.data(), b.qkv_bias.data(), N, 3 * C, C);
      detail::self_attention(pool, att.data(), qkv.data(), N, R, C, cfg_.n_heads);
      detail::linear(pool, x.data(), att.data(), b.proj_weight.data(), b.proj_bias.data(), R, C, C,
                     /*residual=*/true);
      // x = x + fc2(GELU(fc1(norm2(x))))
      detail::layernorm_rows(pool, h.data(), x.data(), b.norm2_weight.data(), b.norm2_bias.data(), R, C, kEps);
      detail::linear(pool, f.data(), h.data(), b.fc1_weight.data(), b.fc1_bias.data(), R, H, C);
      pool.parallel_for(R, [&](std::int64_t r0, std::int64_t r1) { kernels::gelu_erf(f.data() + r0 * H, (r1 - r0) * H); }, 16);
      detail::linear(pool, x.data(), f.data(), b.fc2_weight.data(), b.fc2_bias.data(), R, C, H,
                     /*residual=*/true);
    }
    // vq = visual_proj_norm(visual_proj(x[:Q]))
    Tensor<float> vq(Shape{Q, D});
    detail::linear(pool, vq.data(), x.data(), w.visual_proj_weight.data(), w.visual_proj_bias.data(), Q, D, C);
    detail::layernorm_rows(pool, vq.data(), vq.data(), w.visual_proj_norm_weight.data(), w.visual_proj_norm_bias.data(), Q, D, kEps);
    return vq;
  }

 private:
  VisualProjectorConfig cfg_;
  std::shared_ptr<VisualProjectorWeights> w_;
};

}  // namespace lav2::vision
