// LLaMA-Adapter V2's visual projector (`forward_visual` after clip_encode_image, docs/vision.md):
//
//   f  = clip_proj_norm(clip_proj(clip_features))          [n_tokens, width]  Linear + LN
//   x  = [visual_query.weight; f]                          [Q + n_tokens, width], queries FIRST
//   for each visual_blocks.i (timm 0.3.2 Block, pre-norm):
//     x = x + attn.proj(MHA(norm1(x)))    qkv rows q | k | v, visual_heads heads of width/visual_heads,
//                                         softmax(q k^T * head_dim^-0.5) v, no mask
//     x = x + mlp.fc2(GELU(mlp.fc1(norm2(x))))   exact erf GELU
//   vq = visual_proj_norm(visual_proj(x[:Q]))              [Q, dim]
// LayerNorm eps 1e-5. The matrices are used in their stored dtype (f32 in the adapter
// checkpoints), the small tensors converted to f32 at load (the table: projector_weights.hpp). Only the first Q rows leave the last block, so that block's attention,
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
#include "lav2/vision/projector_weights.hpp"

namespace lav2::vision {

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
    auto w = std::make_shared<VisualProjectorWeights>();
    if (keep_alive) w->owned.push_back(std::move(keep_alive));
    detail::bind_weights(*w, p.cfg_, model_dict, "", file);
    p.w_ = std::move(w);
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
      LAV2_THROW(load_error, "checkpoint '", file, "': visual projector dims must be > 0 (width ", c.width,
                 ", clip_dim ", c.clip_dim, ", queries ", c.n_queries, ", dim ", c.dim, ")");
    return c;
  }

  const VisualProjectorConfig& config() const { return cfg_; }

  /// \brief clip_features [n_tokens, clip_dim] (or [1, n_tokens, clip_dim]) -> [Q, dim].
  Tensor<float> encode(ThreadPool& pool, const Tensor<float>& clip_features) const {
    const Shape& s = clip_features.shape();
    const bool ok = (s.rank == 2 && s[1] == cfg_.clip_dim && s[0] > 0) ||
                    (s.rank == 3 && s[0] == 1 && s[2] == cfg_.clip_dim && s[1] > 0);
    if (!ok)
      LAV2_THROW(input_error, "visual projector: features have shape ", s.to_string(), ", expected (n_tokens, ",
                 cfg_.clip_dim, ")");
    const std::int64_t T = s[s.rank - 2];
    const VisualProjectorWeights& w = *w_;
    const std::int64_t Q = cfg_.n_queries, N = Q + T, C = cfg_.width, H = cfg_.hidden_dim, D = cfg_.dim;
    constexpr float kEps = 1e-5f;
    // x = [visual_query; clip_proj_norm(clip_proj(f))]
    Tensor<float> x(Shape{N, C});
    std::memcpy(x.data(), w.visual_query.data(), std::size_t(Q * C) * sizeof(float));
    detail::linear(pool, x.data() + Q * C, clip_features.data(), w.clip_proj_weight, w.clip_proj_bias, T);
    detail::layernorm_rows(pool, x.data() + Q * C, x.data() + Q * C, w.clip_proj_norm_weight.data(),
                           w.clip_proj_norm_bias.data(), T, C, kEps);

    detail::VitScratch scratch(N, C, H);
    for (std::size_t bi = 0; bi < w.blocks.size(); ++bi) {
      // Rows that must leave this block: all, except in the last block only the Q queries.
      const std::int64_t R = bi + 1 == w.blocks.size() ? Q : N;
      detail::vit_block(pool, w.blocks[bi], x.data(), scratch, N, R, cfg_.n_heads, detail::MlpActivation::gelu_erf);
    }
    // vq = visual_proj_norm(visual_proj(x[:Q]))
    Tensor<float> vq(Shape{Q, D});
    detail::linear(pool, vq.data(), x.data(), w.visual_proj_weight, w.visual_proj_bias, Q);
    detail::layernorm_rows(pool, vq.data(), vq.data(), w.visual_proj_norm_weight.data(), w.visual_proj_norm_bias.data(),
                           Q, D, kEps);
    return vq;
  }

 private:
  VisualProjectorConfig cfg_;
  std::shared_ptr<const VisualProjectorWeights> w_;  // shared by copies: immutable after load
};

}  // namespace lav2::vision
