// The weight table of the CLIP vision tower (OpenAI's `visual` module, docs/vision.md): its
// run-time dims, the weights struct and the one for_each_tensor() that lists every tensor with
// its name, shape and group (io::Group::clip: frozen in every official phase). Loading
// (clip_vit.hpp), the random tower (random_visual.hpp) and tests all read this table.
//
// Dtypes: the six matrices (conv1, in_proj, out_proj, c_fc, c_proj, proj) are MatPtr handles in
// the dtype the file stores (f16 in OpenAI's archive), used in place; the norms, biases, class
// and positional embeddings are small and converted once to f32 at load, because every forward
// pass adds or scales with them in f32.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "lav2/io/weight_table.hpp"
#include "lav2/tensor/mat_ptr.hpp"
#include "lav2/tensor/tensor.hpp"
#include "lav2/vision/vit_block_weights.hpp"

namespace lav2::vision {

/// \brief Run-time dims of a CLIP vision tower (ViT-L/14: 1024, 24, 16, 4096, 14, 16, 768).
struct ClipVisionConfig {
  int width = 0;       ///< residual width
  int n_layers = 0;    ///< resblocks
  int n_heads = 0;     ///< width / 64, as OpenAI's build_model
  int hidden_dim = 0;  ///< c_fc outputs (4 * width)
  int patch = 0;       ///< conv1 kernel and stride
  int grid = 0;        ///< patches per side; image side = grid * patch
  int out_dim = 0;     ///< proj columns
  int image_size() const { return grid * patch; }
  int n_tokens() const { return 1 + grid * grid; }
  int patch_dim() const { return 3 * patch * patch; }
  double flops_per_image() const {  // multiply-adds x 2 of the GEMMs and attention
    const double T = n_tokens(), C = width, H = hidden_dim;
    return 2.0 * (double(grid) * grid * patch_dim() * C + n_layers * (T * (4 * C * C + 2 * C * H) + 2 * T * T * C) +
                  T * C * out_dim);
  }
};

/// \brief OpenAI's ViT-L/14 at 224 px: width 1024, 24 resblocks, 16 heads, patch 14, out 768.
inline ClipVisionConfig clip_vit_l14_config() {
  ClipVisionConfig c;
  c.width = 1024, c.n_layers = 24, c.n_heads = 16, c.hidden_dim = 4096, c.patch = 14, c.grid = 16, c.out_dim = 768;
  return c;
}

/// \brief All weights of the tower.
struct ClipVisionWeights {
  MatPtr conv1;                                          // (width, 3, patch, patch) as (width, 3 patch^2)
  TensorView<const float> class_embedding;               // (width)
  TensorView<const float> positional_embedding;          // (n_tokens, width)
  TensorView<const float> ln_pre_weight, ln_pre_bias;    // (width)
  std::vector<VitBlockWeights> layers;                   // n_layers, names in for_each_tensor
  TensorView<const float> ln_post_weight, ln_post_bias;  // (width)
  MatPtr proj;                                           // (width, out_dim), used as x @ proj
  MatPtr proj_t;                                         // (out_dim, width): proj transposed at load for the GEMM
  std::vector<std::shared_ptr<const void>> owned;        // converted copies and the files views point into
};

/// \brief CLIP's ResidualAttentionBlock: ln_1, attn (nn.MultiheadAttention), ln_2, mlp (c_fc, c_proj).
inline constexpr VitBlockNames kClipBlockNames{
    "ln_1.weight",          "ln_1.bias",          "attn.in_proj_weight", "attn.in_proj_bias",
    "attn.out_proj.weight", "attn.out_proj.bias", "ln_2.weight",         "ln_2.bias",
    "mlp.c_fc.weight",      "mlp.c_fc.bias",      "mlp.c_proj.weight",   "mlp.c_proj.bias"};

/// \brief Calls fn(spec, slot) for every tensor of the tower, slot a MatPtr& (a matrix in its
/// stored dtype) or a TensorView<const float>& (converted to f32). Names are relative to the
/// `visual.` module (as in CLIP.visual.state_dict()); proj_t is derived, not in the table.
template <class Fn>
void for_each_tensor(ClipVisionWeights& w, const ClipVisionConfig& c, Fn&& fn) {
  const std::int64_t C = c.width, H = c.hidden_dim;
  auto emit = [&](std::string name, Shape shape, auto& slot) {
    fn(io::TensorSpec{std::move(name), shape, io::Missing::error, io::Group::clip}, slot);
  };
  emit("conv1.weight", Shape{C, 3, c.patch, c.patch}, w.conv1);
  emit("class_embedding", Shape{C}, w.class_embedding);
  emit("positional_embedding", Shape{c.n_tokens(), C}, w.positional_embedding);
  emit("ln_pre.weight", Shape{C}, w.ln_pre_weight);
  emit("ln_pre.bias", Shape{C}, w.ln_pre_bias);
  for_each_blocks_tensor(w.layers, c.n_layers, "transformer.resblocks.", kClipBlockNames, C, H, emit);
  emit("ln_post.weight", Shape{C}, w.ln_post_weight);
  emit("ln_post.bias", Shape{C}, w.ln_post_bias);
  emit("proj", Shape{C, c.out_dim}, w.proj);
}

/// \brief The tower's table, in order.
inline std::vector<io::TensorSpec> clip_tensor_table(const ClipVisionConfig& c) {
  return io::table_rows<ClipVisionWeights>(c);
}

}  // namespace lav2::vision
