// The weight table of LLaMA-Adapter V2's visual projector (docs/vision.md): its run-time dims,
// the weights struct and the one for_each_tensor() that lists every tensor with its name (keys of
// the adapter checkpoint's 'model' dict), shape and group (io::Group::visual: trained in the
// pre-train phase, spec 3.3). Loading (visual_projector.hpp), the model loader's key check
// (is_projector_key), `lav2 info` and the random projector all read this table.
//
// This header includes only core/, tensor/, io/ and vit_block_weights.hpp, so model/ may include it to recognise the
// projector's keys without depending on the rest of vision/.
//
// Dtypes: the matrices (clip_proj, qkv, proj, fc1, fc2, visual_proj) are MatPtr handles in the
// stored dtype (f32 in the released checkpoints), used in place; the norms, biases and the Q
// query rows are small and converted once to f32 at load, because the forward pass adds, scales
// or copies them in f32.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "lav2/io/weight_table.hpp"
#include "lav2/tensor/mat_ptr.hpp"
#include "lav2/tensor/tensor.hpp"
#include "lav2/vision/vit_block_weights.hpp"

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

/// \brief The projector of the released 7B checkpoints: 768 wide, 8 blocks, 16 heads, MLP 3072,
/// Q = 10 queries, LLaMA dim 4096.
inline VisualProjectorConfig projector_7b_config() {
  VisualProjectorConfig c;
  c.clip_dim = 768, c.width = 768, c.n_queries = 10, c.n_blocks = 8, c.hidden_dim = 3072, c.dim = 4096, c.n_heads = 16;
  return c;
}

/// \brief All projector weights.
struct VisualProjectorWeights {
  MatPtr clip_proj_weight;                                                 // (width, clip_dim)
  TensorView<const float> clip_proj_bias;                                  // (width)
  TensorView<const float> clip_proj_norm_weight, clip_proj_norm_bias;      // (width)
  TensorView<const float> visual_query;                                    // (Q, width)
  std::vector<VitBlockWeights> blocks;                                     // n_blocks
  MatPtr visual_proj_weight;                                               // (dim, width)
  TensorView<const float> visual_proj_bias;                                // (dim)
  TensorView<const float> visual_proj_norm_weight, visual_proj_norm_bias;  // (dim)
  std::vector<std::shared_ptr<const void>> owned;  // converted copies and the files views point into
};

/// \brief timm 0.3.2's Block: norm1, attn (qkv, proj), norm2, mlp (fc1, fc2).
inline constexpr VitBlockNames kTimmBlockNames{"norm1.weight",     "norm1.bias",     "attn.qkv.weight", "attn.qkv.bias",
                                               "attn.proj.weight", "attn.proj.bias", "norm2.weight",    "norm2.bias",
                                               "mlp.fc1.weight",   "mlp.fc1.bias",   "mlp.fc2.weight",  "mlp.fc2.bias"};

/// \brief Calls fn(spec, slot) for every projector tensor, slot a MatPtr& (a matrix in its
/// stored dtype) or a TensorView<const float>& (converted to f32).
template <class Fn>
void for_each_tensor(VisualProjectorWeights& w, const VisualProjectorConfig& c, Fn&& fn) {
  const std::int64_t W = c.width, H = c.hidden_dim, D = c.dim;
  auto emit = [&](std::string name, Shape shape, auto& slot) {
    fn(io::TensorSpec{std::move(name), shape, io::Missing::error, io::Group::visual}, slot);
  };
  emit("clip_proj.weight", Shape{W, c.clip_dim}, w.clip_proj_weight);
  emit("clip_proj.bias", Shape{W}, w.clip_proj_bias);
  emit("clip_proj_norm.weight", Shape{W}, w.clip_proj_norm_weight);
  emit("clip_proj_norm.bias", Shape{W}, w.clip_proj_norm_bias);
  emit("visual_query.weight", Shape{c.n_queries, W}, w.visual_query);
  for_each_blocks_tensor(w.blocks, c.n_blocks, "visual_blocks.", kTimmBlockNames, W, H, emit);
  emit("visual_proj.weight", Shape{D, W}, w.visual_proj_weight);
  emit("visual_proj.bias", Shape{D}, w.visual_proj_bias);
  emit("visual_proj_norm.weight", Shape{D}, w.visual_proj_norm_weight);
  emit("visual_proj_norm.bias", Shape{D}, w.visual_proj_norm_bias);
}

/// \brief The projector's table, in order.
inline std::vector<io::TensorSpec> projector_table(const VisualProjectorConfig& c) {
  return io::table_rows<VisualProjectorWeights>(c);
}

/// \brief True for a key of the projector (as the adapter checkpoint's 'model' dict spells it):
/// one that starts with a module of projector_table() ("clip_proj.", "visual_blocks.", ...), for
/// any sizes and block count.
inline bool is_projector_key(std::string_view name) {
  static const std::vector<std::string> modules = [] {
    VisualProjectorConfig one;  // sizes do not change the names; one block gives its module
    one.clip_dim = one.width = one.n_queries = one.n_blocks = one.hidden_dim = one.dim = 1;
    std::vector<std::string> m;
    for (const io::TensorSpec& spec : projector_table(one)) {
      std::string module = spec.name.substr(0, spec.name.find('.') + 1);  // "clip_proj." (every name has a dot)
      if (std::find(m.begin(), m.end(), module) == m.end()) m.push_back(std::move(module));
    }
    return m;
  }();
  return std::any_of(modules.begin(), modules.end(),
                     [&](const std::string& m) { return name.substr(0, m.size()) == m; });
}

}  // namespace lav2::vision
