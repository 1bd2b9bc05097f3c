// A LLaMA model with random weights and real shapes (e.g. LLaMA-7B's, with fewer layers), built in
// memory, for benchmarks: `lav2 bench --random-model 7b`. Values are small uniform random numbers,
// so activations stay finite; the timings depend only on the shapes and the dtype.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "lav2/core/error.hpp"
#include "lav2/core/thread_pool.hpp"
#include "lav2/model/llama_config.hpp"
#include "lav2/model/llama_model.hpp"
#include "lav2/model/llama_weights.hpp"
#include "lav2/tensor/random_fill.hpp"

namespace lav2::model {

/// \brief The named presets: "7b" (LLaMA-1 7B) and "tiny" (a 64-wide test size).
inline LlamaConfig preset_config(const std::string& name) {
  LlamaConfig c;
  if (name == "7b") {
    c.dim = 4096, c.n_layers = 32, c.n_heads = 32, c.vocab_size = 32000, c.multiple_of = 256, c.norm_eps = 1e-6f;
  } else if (name == "tiny") {
    c.dim = 64, c.n_layers = 3, c.n_heads = 4, c.vocab_size = 512, c.multiple_of = 32, c.norm_eps = 1e-6f;
  } else {
    LAV2_THROW(input_error, "--random-model '", name, "' is not a known preset (7b, tiny)");
  }
  c.head_dim = c.dim / c.n_heads;
  c.hidden_dim = ffn_hidden_dim(c.dim, c.multiple_of);
  return c;
}

namespace detail {
/// Fills a new tensor of `shape` with uniform [-scale, scale) values (or 1 for norms), see
/// tensor/random_fill.hpp: the same values for any thread count.
template <class T>
void fill_random(TensorView<const T>& slot, const Shape& shape, std::uint64_t salt, float scale, ThreadPool& pool,
                 std::vector<std::shared_ptr<const void>>& owned) {
  auto t = std::make_shared<Tensor<T>>(shape);
  if (shape.rank == 1) {
    std::fill(t->begin(), t->end(), from_f32<T>(1.0f));
  } else {
    fill_hash_uniform(t->data(), t->numel(), salt, scale, pool);
  }
  slot = TensorView<const T>(t->data(), t->shape());
  owned.push_back(std::move(t));
}
}  // namespace detail

/// \brief Builds a model of config `c` whose matrices are uniform in [-scale, scale) and whose
/// norms are 1, filled in parallel by `pool`; the same seed gives the same weights.
template <class W>
LlamaModel<W> random_llama(const LlamaConfig& c, ThreadPool& pool, std::uint64_t seed = 1, float scale = 0.02f) {
  LlamaWeights<W> w;
  std::uint64_t tensor_index = 0;
  for_each_tensor<policy::NoAdapter, policy::Frozen>(w, c, AdapterConfig{}, [&](const TensorSpec& spec, auto& slot) {
    detail::fill_random(slot, spec.shape, tensor_salt(seed, ++tensor_index), scale, pool, w.owned);
  });
  return LlamaModel<W>(c, std::move(w));
}

/// \brief Bytes of weights one decode step reads: every block matrix, the output matrix and the
/// norms (one embedding row is negligible and not counted).
inline std::int64_t decode_weight_bytes(const LlamaConfig& c, std::int64_t bytes_per_weight) {
  const std::int64_t d = c.dim, h = c.hidden_dim;
  const std::int64_t per_layer = (4 * d * d + 3 * d * h) * bytes_per_weight + 2 * d * 4;
  return c.n_layers * per_layer + std::int64_t(c.vocab_size) * d * bytes_per_weight + d * 4;
}

}  // namespace lav2::model
