// A LLaMA model with random weights and real shapes (e.g. LLaMA-7B's, with fewer layers), built in
// memory, for benchmarks: `lav2 bench --random-model 7b`. Values are small uniform random numbers,
// so activations stay finite; the timings depend only on the shapes and the dtype.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "lav2/core/error.hpp"
#include "lav2/core/thread_pool.hpp"
#include "lav2/model/llama_config.hpp"
#include "lav2/model/llama_model.hpp"
#include "lav2/model/llama_weights.hpp"
#include "lav2/tensor/quant.hpp"
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
/// A new tensor of `shape` in dtype T with uniform [offset - scale, offset + scale) values
/// (tensor/random_fill.hpp: the same values for any thread count), kept in `owned`.
template <class T>
const T* random_tensor(const Shape& shape, std::uint64_t salt, float scale, float offset, ThreadPool& pool,
                       std::vector<std::shared_ptr<const void>>& owned) {
  auto t = std::make_shared<Tensor<T>>(shape);
  fill_hash_uniform(t->data(), t->numel(), salt, scale, pool, offset);
  const T* p = t->data();
  owned.push_back(std::move(t));
  return p;
}

/// A new (rows, cols) matrix of q8_0 / q4_0 / q4_k / q6_k blocks: the f32 values random_tensor<float> would
/// make, quantised row by row (tensor/quant.hpp) as `lav2 convert` would; kept in `owned`.
template <class Block>
const Block* random_quantized(const Shape& shape, std::uint64_t salt, float scale, ThreadPool& pool,
                              std::vector<std::shared_ptr<const void>>& owned) {
  const std::int64_t rows = shape[0], cols = shape[1], nb = cols / quant_block_values_v<Block>;
  auto blocks = std::shared_ptr<Block[]>(new Block[std::size_t(rows * nb)]);
  pool.parallel_for(rows, [&](std::int64_t b, std::int64_t e) {
    std::vector<float> row(static_cast<std::size_t>(cols));
    for (std::int64_t r = b; r < e; ++r) {
      for (std::int64_t i = 0; i < cols; ++i)
        row[std::size_t(i)] = (2.0f * hash_uniform(salt, std::uint64_t(r * cols + i)) - 1.0f) * scale;
      quantize_row(row.data(), blocks.get() + r * nb, cols);
    }
  });
  owned.push_back(blocks);
  return blocks.get();
}
}  // namespace detail

/// \brief A random V2 BIAS adapter for `c`, the released layout at its sizes: prompts in the
/// last n_layers - 1 layers, 10 per layer, biases on wq wo w1 w2 w3, fusion into every adapter
/// layer. `lav2 bench --adapter` times it.
inline AdapterSpec random_adapter_spec(const LlamaConfig& c) {
  AdapterSpec s;
  s.kind = AdapterKind::v2;
  s.bias = BiasSet::official;
  s.query_len = 10;
  s.query_layer = std::max(1, c.n_layers - 1);
  return s;
}

/// \brief Builds a model of config `c` and variant `spec` with random weights: frozen matrices in
/// `dtype` (f32, f16, bf16, or q8_0 / q4_0 / q4_k / q6_k: the f32 values quantised, the K-quants by
/// lav2's reference quantisers), uniform in [-scale, scale); norms, scales and new_gate 1; biases,
/// LoRA and prompts small uniform values; gates uniform in [-1, 1), so the prompt branch is live.
/// Filled in parallel by `pool`; the same seed gives the same weights.
inline LlamaModel random_llama(const LlamaConfig& c, DType dtype, ThreadPool& pool, std::uint64_t seed = 1,
                               float scale = 0.02f, const AdapterSpec& spec = {}) {
  if (!is_matmul_dtype(dtype)) LAV2_THROW(input_error, "random model: dtype ", dtype_name(dtype), " has no kernels");
  check_supported(spec, "random model");
  LlamaWeights w;
  std::uint64_t index = 0;
  for_each_tensor(w, c, spec, [&](const TensorSpec& t, auto& slot) {
    const std::uint64_t salt = tensor_salt(seed, ++index);
    if constexpr (std::is_same_v<std::decay_t<decltype(slot)>, MatPtr>) {
      const std::int64_t rows = t.shape[0], cols = t.shape[1];
      if (cols % dtype_block_size(dtype) != 0)
        LAV2_THROW(input_error, "random model: tensor '", t.name, "' has ", cols, " columns, not a multiple of ",
                   dtype_block_size(dtype), " as ", dtype_name(dtype), " needs");
      const void* p =
          dtype == DType::q8_0
              ? static_cast<const void*>(detail::random_quantized<BlockQ8_0>(t.shape, salt, scale, pool, w.owned))
          : dtype == DType::q4_0
              ? static_cast<const void*>(detail::random_quantized<BlockQ4_0>(t.shape, salt, scale, pool, w.owned))
          : dtype == DType::q4_k
              ? static_cast<const void*>(detail::random_quantized<BlockQ4_K>(t.shape, salt, scale, pool, w.owned))
          : dtype == DType::q6_k
              ? static_cast<const void*>(detail::random_quantized<BlockQ6_K>(t.shape, salt, scale, pool, w.owned))
          : dtype == DType::f16
              ? static_cast<const void*>(detail::random_tensor<f16_t>(t.shape, salt, scale, 0, pool, w.owned))
          : dtype == DType::bf16
              ? static_cast<const void*>(detail::random_tensor<bf16_t>(t.shape, salt, scale, 0, pool, w.owned))
              : static_cast<const void*>(detail::random_tensor<float>(t.shape, salt, scale, 0, pool, w.owned));
      slot = MatPtr(dtype, p, rows, cols, cols);
    } else {
      const bool one = t.group == Group::norms || t.group == Group::scales || t.missing == Missing::ones;
      const float s = one ? 0.0f : t.group == Group::gates ? 1.0f : t.group == Group::adapter_prompts ? 1.0f : scale;
      slot = TensorView<const float>(detail::random_tensor<float>(t.shape, salt, s, one ? 1.0f : 0.0f, pool, w.owned),
                                     t.shape);
    }
  });
  return LlamaModel(c, spec, std::move(w));
}

/// \brief Bytes of weights one decode step reads: every block matrix, the output matrix (all in
/// `dtype`) and the norms (one embedding row is negligible and not counted).
inline std::int64_t decode_weight_bytes(const LlamaConfig& c, DType dtype) {
  const std::int64_t d = c.dim, h = c.hidden_dim;
  const auto bytes = [dtype](std::int64_t rows, std::int64_t cols) {
    return rows * std::int64_t(dtype_row_bytes(dtype, cols));
  };
  const std::int64_t per_layer = 4 * bytes(d, d) + 2 * bytes(h, d) + bytes(d, h) + 2 * d * 4;
  return c.n_layers * per_layer + bytes(c.vocab_size, d) + d * 4;
}

}  // namespace lav2::model
