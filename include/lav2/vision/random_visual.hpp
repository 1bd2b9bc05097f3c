// A CLIP vision tower and a visual projector with random weights and real shapes (ViT-L/14 and
// the 7B adapter's projector by default), built in memory for benchmarks: `lav2 bench --image`
// and benchmarks/bench_clip.cpp. The tensor table is the loaders' own (for_each_tensor), the
// values small uniform random numbers (see RandomTensors::add) so activations stay finite;
// timings depend only on the shapes.
#pragma once

#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "lav2/core/thread_pool.hpp"
#include "lav2/io/tensor_map.hpp"
#include "lav2/tensor/random_fill.hpp"
#include "lav2/tensor/tensor.hpp"
#include "lav2/vision/clip_vit.hpp"
#include "lav2/vision/visual_projector.hpp"

namespace lav2::vision {

/// \brief A test-size tower at the real image geometry (224 px, patch 14, 257 tokens): width
/// 64 (one head), 2 resblocks, MLP 256, out 32. `lav2 bench --random-model tiny --image`.
inline ClipVisionConfig clip_tiny_config() {
  ClipVisionConfig c = clip_vit_l14_config();
  c.width = 64, c.n_layers = 2, c.n_heads = 1, c.hidden_dim = 256, c.out_dim = 32;
  return c;
}

/// \brief A test-size projector for clip_tiny_config()'s features: 32 wide, 2 blocks, 2 heads,
/// MLP 64, Q = 10, LLaMA dim `dim`.
inline VisualProjectorConfig projector_tiny_config(int dim) {
  VisualProjectorConfig c = projector_7b_config();
  c.clip_dim = 32, c.width = 32, c.n_blocks = 2, c.hidden_dim = 64, c.n_heads = 2, c.dim = dim;
  return c;
}

/// \brief Named random tensors and the storage behind them.
struct RandomTensors {
  io::TensorMap map;
  std::vector<std::shared_ptr<const void>> owned;
  std::uint64_t seed = 1, count = 0;

  /// Adds `name` of `shape` in dtype T: norm scales (`ln_*` / `*norm*` 1-D weights) 1 +- 0.1,
  /// other 1-D tensors +- 0.1, matrices and embeddings +- 1/sqrt(fan_in) (fan_in = all but the
  /// first dimension), so activations keep their size through the layers.
  template <class T>
  void add(ThreadPool& pool, const std::string& name, const Shape& shape) {
    float scale = 0.1f, offset = 0.0f;
    if (shape.rank == 1) {
      const bool norm = name.find("ln_") != std::string::npos || name.find("norm") != std::string::npos;
      if (norm && name.size() >= 6 && name.compare(name.size() - 6, 6, "weight") == 0) offset = 1.0f;
    } else {
      scale = 1.0f / std::sqrt(float(shape.numel() / shape[0]));
    }
    auto t = std::make_shared<Tensor<T>>(shape);
    fill_hash_uniform(t->data(), t->numel(), tensor_salt(seed, ++count), scale, pool, offset);
    map.emplace(name, AnyTensorView{dtype_of_v<T>, t->data(), shape, contiguous_strides(shape)});
    owned.push_back(std::move(t));
  }

  /// Adds `name` in a run-time dtype (f32, f16 or bf16).
  void add(ThreadPool& pool, const std::string& name, const Shape& shape, DType dtype) {
    if (dtype == DType::f16) add<f16_t>(pool, name, shape);
    else if (dtype == DType::bf16) add<bf16_t>(pool, name, shape);
    else add<float>(pool, name, shape);
  }

  /// Adds every row of a weights struct's table (`for_each` is the loader's own for_each_tensor,
  /// so the names always match): matrices (MatPtr slots) in `matrix_dtype`, the small tensors
  /// (f32 slots) in f32, as the loader keeps them.
  template <class ForEach>
  void add_all(ThreadPool& pool, const std::string& prefix, DType matrix_dtype, ForEach&& for_each) {
    for_each([&](const io::TensorSpec& spec, auto& slot) {
      constexpr bool matrix = std::is_same_v<std::decay_t<decltype(slot)>, MatPtr>;
      add(pool, prefix + spec.name, spec.shape, matrix ? matrix_dtype : DType::f32);
    });
  }
};

/// \brief A tower of config `c` whose matrices are `matrix_dtype` (f16 as in OpenAI's archive,
/// bf16 or f32); the embeddings, norms and biases are f32, as the loader keeps them.
inline ClipVisionModel random_clip_vision(const ClipVisionConfig& c, DType matrix_dtype, ThreadPool& pool,
                                          std::uint64_t seed = 1) {
  auto r = std::make_shared<RandomTensors>();
  r->seed = seed;
  ClipVisionWeights layout;  // only enumerated: names, shapes, slot kinds
  r->add_all(pool, "visual.", matrix_dtype, [&](auto&& fn) { for_each_tensor(layout, c, fn); });
  const io::TensorMap& map = r->map;
  return ClipVisionModel::from_tensors(map, "random CLIP vision tower", r);
}

/// \brief A projector of config `c` (f32, as in the adapter checkpoints).
inline VisualProjector random_visual_projector(const VisualProjectorConfig& c, ThreadPool& pool,
                                               std::uint64_t seed = 2) {
  auto r = std::make_shared<RandomTensors>();
  r->seed = seed;
  VisualProjectorWeights layout;
  r->add_all(pool, "", DType::f32, [&](auto&& fn) { for_each_tensor(layout, c, fn); });
  const io::TensorMap& map = r->map;
  return VisualProjector::from_tensors(map, "random visual projector", c.n_heads, r);
}

}  // namespace lav2::vision
