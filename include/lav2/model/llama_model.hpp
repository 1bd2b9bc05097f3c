// The LLaMA / LLaMA-Adapter V2 forward pass with a KV cache (spec sections 1.3, 2.1, 3), in f32
// compute over frozen matrices kept in their stored dtype W (f16 for Meta's checkpoints, used in
// place from the mapped file). In the paper's notation, for layer l with input x:
//
//   h   = x + Wo(Attn(RMSNorm(x)))                      q, k rotated by interleaved RoPE
//   Attn per head h:  O_h = softmax(q K_h^T / sqrt(d) + M) V_h                      (causal)
//                         + g_l,h * softmax(q Pk_h^T / sqrt(d)) Pv_h                 (eq. 6-7)
//     with adaptation prompts P_l (+ the visual query, by the fusion policy), Pk = P Wk^T and
//     Pv = P Wv^T from the plain frozen weights, and g_l,h = tanh(gate) * new_gate (zero-init).
//   out = h + W2(silu(W1 h') * W3 h'),  h' = RMSNorm(h)
//   every W above is a tuned linear: W(s*x) + b, s*(Wx + b) or Wx + b + l2(l1(x)) (section 3)
//   logits = Output(RMSNorm(out_last))
#pragma once

#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

#include "lav2/core/error.hpp"
#include "lav2/core/thread_pool.hpp"
#include "lav2/kernels/dispatch.hpp"
#include "lav2/model/adapter_config.hpp"
#include "lav2/model/kv_cache.hpp"
#include "lav2/model/llama_config.hpp"
#include "lav2/model/llama_weights.hpp"
#include "lav2/model/policies.hpp"
#include "lav2/model/rope.hpp"

namespace lav2::model {

/// \brief A LLaMA model, optionally with LLaMA-Adapter V2's adapter, for one sequence at a time.
/// \tparam W dtype of the frozen matrices (f16_t, bf16_t or float)
/// \tparam Adapter policy::NoAdapter, GatedPrompt (V2) or GatedPromptV1
/// \tparam Tuning policy::Tuning<BiasSet, ScaleMode, lora>: extra tensors around each linear
/// \tparam Fusion policy::AllAdapterLayers, FirstK or PaperEarly: where the visual query goes
template <class W, class Adapter = policy::NoAdapter, class Tuning = policy::Frozen,
          class Fusion = policy::AllAdapterLayers>
class LlamaModel {
 public:
  using AdapterPolicy = Adapter;
  using TuningPolicy = Tuning;
  using FusionPolicy = Fusion;

  LlamaModel(const LlamaConfig& config, LlamaWeights<W> weights, const AdapterConfig& adapter = {})
      : c_(config), ac_(adapter), w_(std::move(weights)), rope_(config.head_dim, 2 * config.max_seq_len, config.rope_theta) {
    if constexpr (Adapter::kEnabled) {
      const std::size_t H = std::size_t(c_.n_heads);
      gates_.assign(std::size_t(c_.n_layers) * H, 0.0f);
      for (int l = 0; l < c_.n_layers; ++l) {
        const LayerWeights<W>& lw = w_.layers[std::size_t(l)];
        const float new_gate = lw.new_gate.empty() ? 1.0f : lw.new_gate.data()[0];
        for (std::size_t h = 0; h < H; ++h)
          gates_[std::size_t(l) * H + h] = Adapter::head_gate(lw.gate.data()[h], new_gate);
      }
    }
    prompts_k_.resize(std::size_t(c_.n_layers));
    prompts_v_.resize(std::size_t(c_.n_layers));
    n_prompts_.assign(std::size_t(c_.n_layers), 0);
  }

  const LlamaConfig& config() const { return c_; }
  const AdapterConfig& adapter_config() const { return ac_; }
  const LlamaWeights<W>& weights() const { return w_; }
  /// Keeps `handle` (e.g. a mapped file the weights point into) alive as long as this model.
  void keep_alive(std::shared_ptr<const void> handle) {
    if (handle) w_.owned.push_back(std::move(handle));
  }
  /// First layer that carries adaptation prompts (the adapter layers are the last query_layer).
  int first_adapter_layer() const { return c_.n_layers - ac_.query_layer; }

  /// A fresh, empty KV cache sized for config().max_seq_len.
  KvCache new_cache() const { return KvCache(c_.n_layers, c_.max_seq_len, c_.dim); }

  /// \brief Sets the visual query [n_visual, dim] (row-major; null for none) and computes every
  /// layer's prompt keys and values once, for all the decode steps that follow. Adapter models
  /// must call it before forward(); without a visual query the prompts are the adaptation
  /// prompts alone (V1, or a caller that skips the visual branch).
  void set_visual_query(ThreadPool& pool, const float* visual_query, std::int64_t n_visual) {
    if constexpr (!Adapter::kEnabled) {
      if (visual_query) LAV2_THROW(input_error, "this model has no adapter: it takes no visual query");
    } else {
      const std::int64_t dim = c_.dim, L = ac_.query_len;
      if (visual_query && Fusion::kMode != policy::FusionMode::paper_early && n_visual != L)
        LAV2_THROW(input_error, "visual query has ", n_visual, " tokens, but fusion mode ",
                   policy::fusion_mode_name(Fusion::kMode), " adds it to prompts of ", L, " tokens");
      std::vector<float> prompts;
      for (int l = 0; l < c_.n_layers; ++l) {
        // Prompt rows of layer l: its adaptation prompts (+ the visual query, when added), then
        // the visual tokens as prompts of their own (paper_early).
        prompts.clear();
        const int j = l - first_adapter_layer();
        if (j >= 0) {
          const float* a = w_.adapter_query.data() + std::int64_t(j) * L * dim;
          prompts.assign(a, a + L * dim);
          if (visual_query && Fusion::visual_added(j, ac_.fusion_depth)) kernels::add(prompts.data(), visual_query, L * dim);
        }
        if (visual_query && Fusion::visual_prompts(l, ac_.fusion_depth))
          prompts.insert(prompts.end(), visual_query, visual_query + n_visual * dim);
        const std::int64_t n = std::int64_t(prompts.size()) / dim;
        n_prompts_[std::size_t(l)] = n;
        if (n == 0) continue;
        // Pk = P Wk^T, Pv = P Wv^T with the plain frozen weights: no bias, scale, LoRA or RoPE.
        const LayerWeights<W>& lw = w_.layers[std::size_t(l)];
        prompts_k_[std::size_t(l)] = Tensor<float>(Shape{n, dim});
        prompts_v_[std::size_t(l)] = Tensor<float>(Shape{n, dim});
        kernels::matmul(pool, prompts_k_[std::size_t(l)].data(), prompts.data(), lw.wk.weight.data(), n, dim, dim);
        kernels::matmul(pool, prompts_v_[std::size_t(l)].data(), prompts.data(), lw.wv.weight.data(), n, dim, dim);
      }
    }
    prompts_ready_ = true;
  }

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
    if (Adapter::kEnabled && !prompts_ready_) set_visual_query(pool, nullptr, 0);
    resize_scratch_(n);
    if (hidden) hidden->assign(std::size_t(c_.n_layers) * std::size_t(dim), 0.0f);

    // Token embeddings: x[i] = tok_embeddings[tokens[i]], widened to f32.
    for (std::int64_t i = 0; i < n; ++i) {
      const W* row = w_.tok_embeddings.row(tokens[i]);
      for (std::int64_t d = 0; d < dim; ++d) x_[std::size_t(i * dim + d)] = to_f32(row[d]);
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
  // out[M, N] = the tuned linear `lin` (id) applied to x[M, K]: W(s*x)+b | s*(Wx+b) | Wx+b+l2(l1 x).
  void linear_(ThreadPool& pool, float* out, const float* x, std::int64_t M, const Linear<W>& lin, policy::LinearId id,
               std::int64_t N, std::int64_t K) {
    const float* in = x;
    if constexpr (Tuning::kScale == policy::ScaleMode::input) {
      scaled_.resize(std::size_t(M * K));
      for (std::int64_t m = 0; m < M; ++m)
        for (std::int64_t k = 0; k < K; ++k) scaled_[std::size_t(m * K + k)] = x[m * K + k] * lin.scale.data()[k];
      in = scaled_.data();
    }
    kernels::matmul(pool, out, in, lin.weight.data(), M, N, K);
    if constexpr (Tuning::kBias != policy::BiasSet::none) {
      if (Tuning::has_bias(id))
        for (std::int64_t m = 0; m < M; ++m) kernels::add(out + m * N, lin.bias.data(), N);
    }
    if constexpr (Tuning::kScale == policy::ScaleMode::output) {
      for (std::int64_t m = 0; m < M; ++m)
        for (std::int64_t j = 0; j < N; ++j) out[m * N + j] *= lin.scale.data()[j];
    }
    if constexpr (Tuning::kLora) {
      const std::int64_t r = lin.lora_l1.dim(0);
      lora_mid_.resize(std::size_t(M * r));
      lora_out_.resize(std::size_t(M * N));
      kernels::matmul(pool, lora_mid_.data(), x, lin.lora_l1.data(), M, r, K);
      kernels::matmul(pool, lora_out_.data(), lora_mid_.data(), lin.lora_l2.data(), M, N, r);
      kernels::add(out, lora_out_.data(), M * N);
    }
  }

  // One transformer block over rows x_[0..n) at absolute positions pos..pos+n-1.
  void block_(ThreadPool& pool, int l, std::int64_t pos, std::int64_t n, KvCache& cache) {
    using policy::LinearId;
    const LayerWeights<W>& lw = w_.layers[std::size_t(l)];
    const std::int64_t dim = c_.dim, hd = c_.head_dim, n_heads = c_.n_heads, hidden = c_.hidden_dim;

    // Attention input: xb = RMSNorm(x) * attention_norm.
    for (std::int64_t i = 0; i < n; ++i)
      kernels::rmsnorm(xb_.data() + i * dim, x_.data() + i * dim, lw.attention_norm.data(), dim, c_.norm_eps);
    // q = wq(xb); k, v go straight into the cache rows of their positions.
    float* k_rows = cache.key_row(l, pos);
    float* v_rows = cache.value_row(l, pos);
    linear_(pool, q_.data(), xb_.data(), n, lw.wq, LinearId::wq, dim, dim);
    linear_(pool, k_rows, xb_.data(), n, lw.wk, LinearId::wk, dim, dim);
    linear_(pool, v_rows, xb_.data(), n, lw.wv, LinearId::wv, dim, dim);
    // RoPE on q and k, per head, at each row's absolute position.
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t h = 0; h < n_heads; ++h) {
        kernels::rope_interleaved(q_.data() + i * dim + h * hd, hd, rope_.cos_row(pos + i), rope_.sin_row(pos + i));
        kernels::rope_interleaved(k_rows + i * dim + h * hd, hd, rope_.cos_row(pos + i), rope_.sin_row(pos + i));
      }
    // Causal attention: row i (position pos+i) attends to keys 0..pos+i, then (adapter layers)
    // the gated prompt branch with its own softmax. One task per (row, head).
    const float scale = 1.0f / std::sqrt(float(hd));
    const float* keys = cache.key_row(l, 0);
    const float* values = cache.value_row(l, 0);
    const std::int64_t n_prompts = n_prompts_[std::size_t(l)];
    const float* pk = n_prompts ? prompts_k_[std::size_t(l)].data() : nullptr;
    const float* pv = n_prompts ? prompts_v_[std::size_t(l)].data() : nullptr;
    const float* gates = Adapter::kEnabled ? gates_.data() + std::size_t(l) * std::size_t(n_heads) : nullptr;
    pool.parallel_for(n * n_heads, [&](std::int64_t begin, std::int64_t end) {
      std::vector<float> scores(std::size_t(std::max(pos + n, n_prompts)));
      for (std::int64_t task = begin; task < end; ++task) {
        const std::int64_t i = task / n_heads, h = task % n_heads;
        float* out = att_.data() + i * dim + h * hd;
        const float* q = q_.data() + i * dim + h * hd;
        kernels::attention_head(out, q, keys + h * hd, values + h * hd, pos + i + 1, hd, dim, scale, scores.data());
        if (n_prompts)
          kernels::adapter_attention_head(out, q, pk + h * hd, pv + h * hd, n_prompts, hd, dim, scale, gates[h], scores.data());
      }
    });
    // x += wo(att)
    linear_(pool, q_.data(), att_.data(), n, lw.wo, LinearId::wo, dim, dim);
    kernels::add(x_.data(), q_.data(), n * dim);

    // Feed-forward: x += w2(silu(w1 xb) * w3 xb), xb = RMSNorm(x) * ffn_norm.
    for (std::int64_t i = 0; i < n; ++i)
      kernels::rmsnorm(xb_.data() + i * dim, x_.data() + i * dim, lw.ffn_norm.data(), dim, c_.norm_eps);
    linear_(pool, h1_.data(), xb_.data(), n, lw.w1, LinearId::w1, hidden, dim);
    linear_(pool, h3_.data(), xb_.data(), n, lw.w3, LinearId::w3, hidden, dim);
    kernels::swiglu(h1_.data(), h1_.data(), h3_.data(), n * hidden);
    linear_(pool, q_.data(), h1_.data(), n, lw.w2, LinearId::w2, dim, hidden);
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
  AdapterConfig ac_;
  LlamaWeights<W> w_;
  RopeTables rope_;
  // Adapter state, fixed per request: per layer the prompt keys/values (n_prompts, dim) and the
  // finished per-head gates (n_layers, n_heads).
  std::vector<Tensor<float>> prompts_k_, prompts_v_;
  std::vector<std::int64_t> n_prompts_;
  std::vector<float> gates_;
  bool prompts_ready_ = false;
  // Scratch, (n, dim) or (n, hidden_dim): residual stream, normed input, q / projection output,
  // attention output, the two FFN halves; and the tuning's temporaries.
  std::vector<float> x_, xb_, q_, att_, h1_, h3_, scaled_, lora_mid_, lora_out_;
};

}  // namespace lav2::model
