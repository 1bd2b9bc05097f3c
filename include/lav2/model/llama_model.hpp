// The LLaMA-1 forward pass with a KV cache (spec section 1.3), in f32 compute over weights kept
// in their stored dtype W (f16 for Meta's checkpoints, used in place from the mapped file).
//
//   h   = x + Attn(RMSNorm(x))             Attn: q,k rotated by interleaved RoPE; causal softmax
//   out = h + W2(silu(W1 h') * W3 h')      h' = RMSNorm(h)
//   logits = Output(RMSNorm(out_last))
#pragma once

#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

#include "lav2/core/error.hpp"
#include "lav2/core/thread_pool.hpp"
#include "lav2/kernels/dispatch.hpp"
#include "lav2/model/kv_cache.hpp"
#include "lav2/model/llama_config.hpp"
#include "lav2/model/llama_weights.hpp"
#include "lav2/model/rope.hpp"

namespace lav2::model {

/// \brief A LLaMA model: configuration, weights and scratch space for one sequence at a time.
/// \tparam W the dtype of the large matrices (f16_t, bf16_t or float).
template <class W>
class LlamaModel {
 public:
  LlamaModel(const LlamaConfig& config, LlamaWeights<W> weights)
      : c_(config), w_(std::move(weights)), rope_(config.head_dim, 2 * config.max_seq_len, config.rope_theta) {}

  const LlamaConfig& config() const { return c_; }
  const LlamaWeights<W>& weights() const { return w_; }

  /// A fresh, empty KV cache sized for config().max_seq_len.
  KvCache new_cache() const { return KvCache(c_.n_layers, c_.max_seq_len, c_.dim); }

  /// \brief Runs `n` tokens at positions [cache.length, cache.length + n) and appends their keys
  /// and values to `cache`. Writes the logits of the last position to `logits` (vocab_size).
  /// The first call (cache.length == 0) is the prefill of the whole prompt, as officially.
  /// \param hidden optional: receives each layer's output at the last position, (n_layers, dim).
  void forward(ThreadPool& pool, const int* tokens, std::int64_t n, KvCache& cache, float* logits,
               std::vector<float>* hidden = nullptr) {
    const std::int64_t pos = cache.length, dim = c_.dim;
    if (n <= 0) LAV2_THROW(input_error, "forward: no tokens");
    if (pos + n > cache.max_seq_len())
      LAV2_THROW(input_error, "sequence of ", pos + n, " tokens exceeds max_seq_len ", cache.max_seq_len());
    for (std::int64_t i = 0; i < n; ++i)
      if (tokens[i] < 0 || tokens[i] >= c_.vocab_size)
        LAV2_THROW(input_error, "token id ", tokens[i], " at index ", i, " is outside the vocabulary [0, ", c_.vocab_size, ")");
    resize_scratch_(n);
    if (hidden) hidden->assign(std::size_t(c_.n_layers) * std::size_t(dim), 0.0f);

    // Token embeddings: x[i] = tok_embeddings[tokens[i]], widened to f32.
    for (std::int64_t i = 0; i < n; ++i) {
      const W* row = w_.tok_embeddings.row(tokens[i]);
      for (std::int64_t d = 0; d < dim; ++d) x_[i * dim + d] = to_f32(row[d]);
    }
    for (int l = 0; l < c_.n_layers; ++l) {
      block_(pool, l, pos, n, cache);
      if (hidden) std::copy_n(x_.data() + (n - 1) * dim, dim, hidden->data() + std::size_t(l) * std::size_t(dim));
    }
    cache.length = pos + n;

    // Final norm and output projection, for the last position only (inference).
    kernels::rmsnorm(xb_.data(), x_.data() + (n - 1) * dim, w_.norm.data(), dim, c_.norm_eps);
    kernels::matmul(pool, logits, xb_.data(), w_.output.data(), 1, c_.vocab_size, dim);
  }

 private:
  // One transformer block over rows x_[0..n) at absolute positions pos..pos+n-1.
  void block_(ThreadPool& pool, int l, std::int64_t pos, std::int64_t n, KvCache& cache) {
    const LayerWeights<W>& lw = w_.layers[std::size_t(l)];
    const std::int64_t dim = c_.dim, hd = c_.head_dim, n_heads = c_.n_heads, hidden = c_.hidden_dim;

    // Attention input: xb = RMSNorm(x) * attention_norm.
    for (std::int64_t i = 0; i < n; ++i)
      kernels::rmsnorm(xb_.data() + i * dim, x_.data() + i * dim, lw.attention_norm.data(), dim, c_.norm_eps);
    // q = xb Wq^T; k, v go straight into the cache rows of their positions.
    float* k_rows = cache.key_row(l, pos);
    float* v_rows = cache.value_row(l, pos);
    kernels::matmul(pool, q_.data(), xb_.data(), lw.wq.data(), n, dim, dim);
    kernels::matmul(pool, k_rows, xb_.data(), lw.wk.data(), n, dim, dim);
    kernels::matmul(pool, v_rows, xb_.data(), lw.wv.data(), n, dim, dim);
    // RoPE on q and k, per head, at each row's absolute position.
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t h = 0; h < n_heads; ++h) {
        kernels::rope_interleaved(q_.data() + i * dim + h * hd, hd, rope_.cos_row(pos + i), rope_.sin_row(pos + i));
        kernels::rope_interleaved(k_rows + i * dim + h * hd, hd, rope_.cos_row(pos + i), rope_.sin_row(pos + i));
      }
    // Causal attention: row i (position pos+i) attends to keys 0..pos+i; one task per (row, head).
    const float scale = 1.0f / std::sqrt(float(hd));
    const float* keys = cache.key_row(l, 0);
    const float* values = cache.value_row(l, 0);
    pool.parallel_for(n * n_heads, [&](std::int64_t begin, std::int64_t end) {
      std::vector<float> scores(std::size_t(pos + n));
      for (std::int64_t task = begin; task < end; ++task) {
        const std::int64_t i = task / n_heads, h = task % n_heads;
        kernels::attention_head(att_.data() + i * dim + h * hd, q_.data() + i * dim + h * hd, keys + h * hd,
                                values + h * hd, pos + i + 1, hd, dim, scale, scores.data());
      }
    });
    // x += att Wo^T
    kernels::matmul(pool, q_.data(), att_.data(), lw.wo.data(), n, dim, dim);
    kernels::add(x_.data(), q_.data(), n * dim);

    // Feed-forward: x += W2(silu(W1 xb) * W3 xb), xb = RMSNorm(x) * ffn_norm.
    for (std::int64_t i = 0; i < n; ++i)
      kernels::rmsnorm(xb_.data() + i * dim, x_.data() + i * dim, lw.ffn_norm.data(), dim, c_.norm_eps);
    kernels::matmul(pool, h1_.data(), xb_.data(), lw.w1.data(), n, hidden, dim);
    kernels::matmul(pool, h3_.data(), xb_.data(), lw.w3.data(), n, hidden, dim);
    kernels::swiglu(h1_.data(), h1_.data(), h3_.data(), n * hidden);
    kernels::matmul(pool, q_.data(), h1_.data(), lw.w2.data(), n, dim, hidden);
    kernels::add(x_.data(), q_.data(), n * dim);
  }

  void resize_scratch_(std::int64_t n) {
    const std::size_t rows = std::size_t(n), dim = std::size_t(c_.dim), hidden = std::size_t(c_.hidden_dim);
    if (x_.size() >= rows * dim) return;
    x_.assign(rows * dim, 0.0f);
    xb_.assign(rows * dim, 0.0f);
    q_.assign(rows * dim, 0.0f);
    att_.assign(rows * dim, 0.0f);
    h1_.assign(rows * hidden, 0.0f);
    h3_.assign(rows * hidden, 0.0f);
  }

  LlamaConfig c_;
  LlamaWeights<W> w_;
  RopeTables rope_;
  // Scratch, (n, dim) or (n, hidden_dim): residual stream, normed input, q / projection output,
  // attention output, and the two FFN halves.
  std::vector<float> x_, xb_, q_, att_, h1_, h3_;
};

}  // namespace lav2::model
