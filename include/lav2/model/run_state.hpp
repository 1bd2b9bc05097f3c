// The state of one request over a loaded model (llama2.c's RunState, llama.cpp's llama_context):
// everything that changes while it runs. The model itself is immutable and shared; any number of
// states may run over it at once, each with its own thread pool.
//
//   cache      keys and values of every position so far (grows with the sequence, f32 or f16)
//   prompts    per layer, the prompt keys Pk = P Wk^T and values Pv = P Wv^T (n_prompts, dim),
//              with P this request's adaptation prompts plus its visual query (fixed per request)
//   gates      per layer and head, the finished factor tanh(g) * new_gate (V1: g)
//   tokens     the ids in the cache, and `pending`: the last sampled id, not yet fed
//   scratch    activations of the rows being computed, reused across calls
#pragma once

#include <cstdint>
#include <vector>

#include "lav2/core/aligned_alloc.hpp"
#include "lav2/core/error.hpp"
#include "lav2/model/kv_cache.hpp"
#include "lav2/tensor/tensor.hpp"

namespace lav2::model {

/// \brief Per-request sizes: how long the sequence may grow and how the cache stores it.
struct StateOptions {
  std::int64_t max_seq_len = 512;  ///< prompt + generated tokens at most (the official 512)
  KvDType kv_dtype = KvDType::f32;
};

class LlamaModel;

/// \brief One request's state. Made by LlamaModel::new_state, advanced by LlamaModel::forward
/// and model::generate.
class RunState {
 public:
  /// Positions in the cache (the next token goes at this position).
  std::int64_t position() const { return cache_.length; }
  std::int64_t max_seq_len() const { return cache_.max_seq_len(); }
  /// The ids whose keys and values are in the cache, in order.
  const std::vector<int>& tokens() const { return tokens_; }
  /// The last id generate() sampled and did not feed (-1: none); the next generate() feeds it
  /// first, unless it is EOS.
  int pending = -1;
  const KvCache& cache() const { return cache_; }
  /// Allocates the cache for `positions` (<= max_seq_len) now rather than as the sequence grows,
  /// e.g. so that a benchmark or a latency-bound server does not allocate inside a forward pass.
  void reserve(std::int64_t positions) {
    if (positions < 0 || positions > max_seq_len())
      LAV2_THROW(input_error, "reserve: ", positions, " positions, expected 0..max_seq_len ", max_seq_len());
    cache_.reserve(positions);
  }
  /// Prompt rows of layer `l` (0 where the layer has no prompts).
  std::int64_t n_prompts(int l) const { return n_prompts_[std::size_t(l)]; }

 private:
  friend class LlamaModel;
  KvCache cache_;
  std::vector<int> tokens_;
  std::vector<Tensor<float>> prompts_k_, prompts_v_;  // per layer (n_prompts, dim)
  std::vector<std::int64_t> n_prompts_;               // per layer
  std::vector<float> gates_;                          // (n_layers, n_heads)
  // Scratch, (rows, dim) or (rows, hidden_dim): residual stream, normed input, q, k, v, attention
  // output, the FFN halves, the tuning's temporaries; RoPE cos / sin rows (rows, head_dim / 2).
  AlignedVector<float> x_, xb_, q_, k_, v_, att_, h1_, h3_, tmp_, scaled_, lora_mid_, lora_out_, rope_cos_, rope_sin_;
};

}  // namespace lav2::model
