// The weights of one pre-norm ViT block, shared by CLIP's ResidualAttentionBlock (ln_1, attn
// in_proj / out_proj, ln_2, mlp.c_fc / c_proj) and timm's Block in the visual projector (norm1,
// attn.qkv / proj, norm2, mlp.fc1 / fc2): the same computation, only the names (each table's
// for_each_tensor) and the MLP activation differ. Matrices are [out, in] as PyTorch stores them,
// in their stored dtype; the norms and biases are f32 (converted once at load: the forward pass
// reads them as f32 on every token).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "lav2/tensor/mat_ptr.hpp"
#include "lav2/tensor/tensor.hpp"

namespace lav2::vision {

/// \brief One block: x = x + proj(MHA(norm1(x))); x = x + fc2(act(fc1(norm2(x)))).
struct VitBlockWeights {
  TensorView<const float> norm1_weight, norm1_bias;  // (width)
  MatPtr qkv_weight;                                 // (3 width, width), rows q | k | v
  TensorView<const float> qkv_bias;                  // (3 width)
  MatPtr proj_weight;                                // (width, width)
  TensorView<const float> proj_bias;                 // (width)
  TensorView<const float> norm2_weight, norm2_bias;  // (width)
  MatPtr fc1_weight;                                 // (hidden_dim, width)
  TensorView<const float> fc1_bias;                  // (hidden_dim)
  MatPtr fc2_weight;                                 // (width, hidden_dim)
  TensorView<const float> fc2_bias;                  // (width)
};

/// \brief A block's twelve tensor names as one checkpoint spells them, after the block's prefix.
struct VitBlockNames {
  const char *norm1_weight, *norm1_bias, *qkv_weight, *qkv_bias, *proj_weight, *proj_bias;
  const char *norm2_weight, *norm2_bias, *fc1_weight, *fc1_bias, *fc2_weight, *fc2_bias;
};

/// \brief The rows of one block for a table's for_each_tensor: calls emit(name, shape, slot)
/// with name = prefix + the name in `n`, in the checkpoint's order.
template <class Emit>
void for_each_block_tensor(VitBlockWeights& b, const VitBlockNames& n, const std::string& prefix, std::int64_t width,
                           std::int64_t hidden, Emit&& emit) {
  const std::int64_t C = width, H = hidden;
  emit(prefix + n.norm1_weight, Shape{C}, b.norm1_weight);
  emit(prefix + n.norm1_bias, Shape{C}, b.norm1_bias);
  emit(prefix + n.qkv_weight, Shape{3 * C, C}, b.qkv_weight);
  emit(prefix + n.qkv_bias, Shape{3 * C}, b.qkv_bias);
  emit(prefix + n.proj_weight, Shape{C, C}, b.proj_weight);
  emit(prefix + n.proj_bias, Shape{C}, b.proj_bias);
  emit(prefix + n.norm2_weight, Shape{C}, b.norm2_weight);
  emit(prefix + n.norm2_bias, Shape{C}, b.norm2_bias);
  emit(prefix + n.fc1_weight, Shape{H, C}, b.fc1_weight);
  emit(prefix + n.fc1_bias, Shape{H}, b.fc1_bias);
  emit(prefix + n.fc2_weight, Shape{C, H}, b.fc2_weight);
  emit(prefix + n.fc2_bias, Shape{C}, b.fc2_bias);
}

/// \brief The rows of `n_blocks` blocks named `module` + i + "." + the names in `n` (resizing
/// `blocks`), for a table's for_each_tensor.
template <class Emit>
void for_each_blocks_tensor(std::vector<VitBlockWeights>& blocks, int n_blocks, const std::string& module,
                            const VitBlockNames& n, std::int64_t width, std::int64_t hidden, Emit&& emit) {
  blocks.resize(std::size_t(n_blocks));
  for (int i = 0; i < n_blocks; ++i)
    for_each_block_tensor(blocks[std::size_t(i)], n, module + std::to_string(i) + ".", width, hidden, emit);
}

}  // namespace lav2::vision
