// The LLaMA / LLaMA-Adapter V2 forward pass (docs/model.md), in f32 compute over
// frozen matrices kept in their stored dtype (f16 for Meta's checkpoints, used in place from the
// mapped file). In the paper's notation, for layer l with input x:
//
//   h   = x + Wo(Attn(RMSNorm(x)))                      q, k rotated by interleaved RoPE
//   Attn per head h:  O_h = softmax(q K_h^T / sqrt(d) + M) V_h                      (causal)
//                         + g_l,h * softmax(q Pk_h^T / sqrt(d)) Pv_h   (V1 zero-init attention)
//     with adaptation prompts P_l (+ the visual query, by the fusion mode), Pk = P Wk^T and
//     Pv = P Wv^T from the plain frozen weights, and g_l,h = tanh(gate) * new_gate (zero-init).
//   out = h + W2(silu(W1 h') * W3 h'),  h' = RMSNorm(h)
//   every W above is a tuned linear: W(s*x) + b, s*(Wx + b) or Wx + b + l2(l1(x)) (V2 bias tuning)
//   logits = Output(RMSNorm(out_last))
//
// The model is immutable: forward() is const and writes only into the RunState it is given, so
// one loaded model serves any number of requests at once. The adapter's variant (AdapterSpec) is
// a run-time value, read once per linear or layer beside a matrix product (adapter_spec.hpp).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "lav2/core/error.hpp"
#include "lav2/core/memory.hpp"
#include "lav2/core/thread_pool.hpp"
#include "lav2/kernels/dispatch.hpp"
#include "lav2/model/adapter_spec.hpp"
#include "lav2/model/kv_cache.hpp"
#include "lav2/model/llama_config.hpp"
#include "lav2/model/llama_weights.hpp"
#include "lav2/model/rope.hpp"
#include "lav2/model/run_state.hpp"
#include "lav2/model/weights_repack.hpp"

namespace lav2::model {

/// \brief A LLaMA model, optionally with a LLaMA-Adapter (V2 or V1) or chat65b-style tuning.
class LlamaModel {
 public:
  /// Rows a forward call computes at once: a longer prompt is prefilled in chunks of this many
  /// positions, so activations stay bounded whatever the prompt length.
  static constexpr std::int64_t kMaxRowsPerCall = 512;

  /// Takes the weights as bound; q4_0 linears are repacked for the CPU kernels
  /// (model/weights_repack.hpp) unless LAV2_REPACK=0.
  LlamaModel(const LlamaConfig& config, const AdapterSpec& spec, LlamaWeights weights)
      : c_(config), s_(spec), w_(std::move(weights)), rope_(config.head_dim, config.rope_theta) {
    if (repack_enabled()) repack_for_cpu(w_);
  }

  const LlamaConfig& config() const { return c_; }
  const AdapterSpec& spec() const { return s_; }
  const LlamaWeights& weights() const { return w_; }
  /// First layer that carries adaptation prompts (the adapter layers are the last query_layer).
  int first_adapter_layer() const { return c_.n_layers - s_.query_layer; }

  /// \brief The most memory one request can reach at `opt.max_seq_len`: its full KV cache, the
  /// prompt keys and values, and the activations of the largest forward call.
  std::uint64_t state_bytes(const StateOptions& opt, std::int64_t n_visual, int threads) const {
    const std::uint64_t dim = std::uint64_t(c_.dim), hidden = std::uint64_t(c_.hidden_dim);
    const std::uint64_t rows = std::uint64_t(std::min(opt.max_seq_len, kMaxRowsPerCall));
    const std::uint64_t kv = KvCache::bytes_at(c_.n_layers, opt.max_seq_len, c_.dim, opt.kv_dtype);
    const std::uint64_t prompts = std::uint64_t(c_.n_layers) * std::uint64_t(s_.query_len + n_visual) * dim * 2 * 4;
    const std::uint64_t act = rows * (7 * dim + 3 * hidden + std::uint64_t(c_.head_dim)) * 4;
    const std::uint64_t scores = std::uint64_t(std::max(threads, 1)) * std::uint64_t(opt.max_seq_len) * 4;
    return kv + prompts + act + scores + std::uint64_t(c_.vocab_size) * 4;
  }

  /// \brief A fresh request: an empty cache for `opt`, and (adapter models) every layer's prompt
  /// keys and values computed once from the adaptation prompts and `visual_query` [n_visual, dim]
  /// (row-major). A V2 model needs a visual query; the official text-only path uses the one of
  /// the all-zero image (vision::VisualEncoder::encode_zero_image). Refuses, before allocating,
  /// a request whose memory at max_seq_len exceeds what the process may allocate (core/memory.hpp).
  RunState new_state(ThreadPool& pool, const StateOptions& opt, const float* visual_query = nullptr,
                     std::int64_t n_visual = 0) const {
    if (opt.max_seq_len < 2)
      LAV2_THROW(input_error, "max_seq_len ", opt.max_seq_len,
                 " must be at least 2 (a prompt token and one to generate)");
    if (s_.takes_visual() && !visual_query)
      LAV2_THROW(input_error,
                 "a LLaMA-Adapter V2 request needs a visual query: encode an image, or the all-zero "
                 "image as the official text-only path does (VisualEncoder::encode_zero_image)");
    if (!s_.takes_visual() && visual_query)
      LAV2_THROW(input_error, "this model (", s_.describe(), ") takes no visual query");
    if (visual_query && s_.fusion != FusionMode::paper_early && n_visual != s_.query_len)
      LAV2_THROW(input_error, "the visual query has ", n_visual, " tokens, but fusion mode ",
                 fusion_mode_name(s_.fusion), " adds it to prompts of ", s_.query_len, " tokens");
    require_memory(state_bytes(opt, n_visual, pool.size()),
                   "a request at max_seq_len " + std::to_string(opt.max_seq_len) + " with a " +
                       (opt.kv_dtype == KvDType::f16 ? "f16" : "f32") + " KV cache (" +
                       std::to_string(KvCache::bytes_at(c_.n_layers, opt.max_seq_len, c_.dim, opt.kv_dtype)) +
                       " bytes at full length)");
    RunState st;
    st.cache_ = KvCache(c_.n_layers, opt.max_seq_len, c_.dim, opt.kv_dtype);
    st.prompts_k_.resize(std::size_t(c_.n_layers));
    st.prompts_v_.resize(std::size_t(c_.n_layers));
    st.n_prompts_.assign(std::size_t(c_.n_layers), 0);
    if (s_.has_prompts()) set_prompts_(pool, st, visual_query, n_visual);
    return st;
  }

  /// \brief Runs `n` tokens at positions [state.position(), + n), appends their keys and values
  /// to the state's cache and writes the logits of the last position to `logits` (vocab_size).
  /// \param hidden optional: receives each layer's output at the last position, (n_layers, dim).
  void forward(ThreadPool& pool, RunState& st, const int* tokens, std::int64_t n, float* logits,
               std::vector<float>* hidden = nullptr) const {
    const std::int64_t pos = st.position();
    if (n <= 0) LAV2_THROW(input_error, "forward: no tokens");
    if (pos + n > st.max_seq_len())
      LAV2_THROW(input_error, "sequence of ", pos + n, " tokens exceeds max_seq_len ", st.max_seq_len());
    for (std::int64_t i = 0; i < n; ++i)
      if (tokens[i] < 0 || tokens[i] >= c_.vocab_size)
        LAV2_THROW(input_error, "token id ", tokens[i], " at index ", i, " is outside the vocabulary [0, ",
                   c_.vocab_size, ")");
    st.cache_.reserve(pos + n);
    for (std::int64_t done = 0; done < n;) {
      const std::int64_t rows = std::min(n - done, kMaxRowsPerCall);
      const bool last = done + rows == n;
      forward_rows_(pool, st, tokens + done, rows, last ? logits : nullptr, last ? hidden : nullptr);
      done += rows;
    }
  }

 private:
  // Prompt rows of layer l: its adaptation prompts (+ the visual query, when added), then the
  // visual tokens as prompts of their own (paper_early); their keys and values with the plain
  // frozen wk / wv (no bias, scale, LoRA or RoPE); and the finished per-head gates.
  void set_prompts_(ThreadPool& pool, RunState& st, const float* vq, std::int64_t n_visual) const {
    const std::int64_t dim = c_.dim, L = s_.query_len, H = c_.n_heads;
    std::vector<float> prompts;
    for (int l = 0; l < c_.n_layers; ++l) {
      prompts.clear();
      const int j = l - first_adapter_layer();
      if (j >= 0) {
        const float* a = w_.adapter_query.data() + std::int64_t(j) * L * dim;
        prompts.assign(a, a + L * dim);
        if (vq && s_.visual_added(j)) kernels::add(prompts.data(), vq, L * dim);
      }
      if (vq && s_.visual_prompts(l)) prompts.insert(prompts.end(), vq, vq + n_visual * dim);
      const std::int64_t np = std::int64_t(prompts.size()) / dim;
      st.n_prompts_[std::size_t(l)] = np;
      if (np == 0) continue;
      const LayerWeights& lw = w_.layers[std::size_t(l)];
      st.prompts_k_[std::size_t(l)] = Tensor<float>(Shape{np, dim});
      st.prompts_v_[std::size_t(l)] = Tensor<float>(Shape{np, dim});
      kernels::matmul(pool, st.prompts_k_[std::size_t(l)].data(), prompts.data(), lw.wk.weight, np);
      kernels::matmul(pool, st.prompts_v_[std::size_t(l)].data(), prompts.data(), lw.wv.weight, np);
    }
    st.gates_.assign(std::size_t(c_.n_layers * H), 0.0f);
    for (int l = 0; l < c_.n_layers; ++l) {
      const LayerWeights& lw = w_.layers[std::size_t(l)];
      const float new_gate = lw.new_gate.empty() ? 1.0f : lw.new_gate.data()[0];
      for (std::int64_t h = 0; h < H; ++h)
        st.gates_[std::size_t(l * H + h)] = s_.head_gate(lw.gate.data()[h], new_gate);
    }
  }

  static void grow(AlignedVector<float>& v, std::size_t n) {
    if (v.size() < n) v.resize(n);
  }

  void forward_rows_(ThreadPool& pool, RunState& st, const int* tokens, std::int64_t n, float* logits,
                     std::vector<float>* hidden) const {
    const std::int64_t pos = st.position(), dim = c_.dim, hd = c_.head_dim;
    const std::size_t rows = std::size_t(n), d = std::size_t(dim), hid = std::size_t(c_.hidden_dim);
    for (auto* v : {&st.x_, &st.xb_, &st.q_, &st.k_, &st.v_, &st.att_}) grow(*v, rows * d);
    for (auto* v : {&st.h1_, &st.h3_}) grow(*v, rows * hid);
    grow(st.rope_cos_, rows * std::size_t(hd / 2));
    grow(st.rope_sin_, rows * std::size_t(hd / 2));
    rope_.fill(pos, n, st.rope_cos_.data(), st.rope_sin_.data());
    if (hidden) hidden->assign(std::size_t(c_.n_layers) * d, 0.0f);

    // Token embeddings: x[i] = tok_embeddings[tokens[i]], widened to f32.
    for (std::int64_t i = 0; i < n; ++i) mat_row_to_f32(w_.tok_embeddings, tokens[i], st.x_.data() + i * dim);
    for (int l = 0; l < c_.n_layers; ++l) {
      block_(pool, st, l, pos, n);
      if (hidden) std::copy_n(st.x_.data() + (n - 1) * dim, dim, hidden->data() + std::size_t(l) * d);
    }
    st.cache_.length = pos + n;
    st.tokens_.insert(st.tokens_.end(), tokens, tokens + n);

    // Final norm and output projection, for the last position only (inference).
    if (!logits) return;
    kernels::rmsnorm(st.xb_.data(), st.x_.data() + (n - 1) * dim, w_.norm.data(), dim, c_.norm_eps);
    kernels::matmul(pool, logits, st.xb_.data(), w_.output, 1);
  }

  // out[M, N] (+)= the tuned linear `lin` applied to x[M, K]: W(s*x)+b | s*(Wx+b) | Wx+b+l2(l1 x).
  // With `accumulate` the result is added into out (a residual), fused into the matmul's store
  // when the linear has no output scale or LoRA (the same bits as a separate add).
  void linear_(ThreadPool& pool, RunState& st, float* out, const float* x, std::int64_t M, const Linear& lin,
               bool accumulate) const {
    const std::int64_t N = lin.weight.rows, K = lin.weight.cols;
    const float* bias = lin.bias.empty() ? nullptr : lin.bias.data();
    const float* in = x;
    if (s_.scale == ScaleMode::input) {
      grow(st.scaled_, std::size_t(M * K));
      for (std::int64_t m = 0; m < M; ++m)
        for (std::int64_t k = 0; k < K; ++k) st.scaled_[std::size_t(m * K + k)] = x[m * K + k] * lin.scale.data()[k];
      in = st.scaled_.data();
    }
    if (s_.scale != ScaleMode::output && !s_.lora) {
      kernels::matmul(pool, out, in, lin.weight, M, kernels::Epilogue{bias, accumulate});
      return;
    }
    float* y = out;
    if (accumulate) {
      grow(st.tmp_, std::size_t(M * N));
      y = st.tmp_.data();
    }
    kernels::matmul(pool, y, in, lin.weight, M, kernels::Epilogue{bias, false});
    if (s_.scale == ScaleMode::output)
      for (std::int64_t m = 0; m < M; ++m)
        for (std::int64_t j = 0; j < N; ++j) y[m * N + j] *= lin.scale.data()[j];
    if (s_.lora) {
      const std::int64_t r = lin.lora_l1.dim(0);
      grow(st.lora_mid_, std::size_t(M * r));
      grow(st.lora_out_, std::size_t(M * N));
      kernels::matmul(pool, st.lora_mid_.data(), x, MatPtr::of(lin.lora_l1.data(), r, K), M);
      kernels::matmul(pool, st.lora_out_.data(), st.lora_mid_.data(), MatPtr::of(lin.lora_l2.data(), N, r), M);
      kernels::add(y, st.lora_out_.data(), M * N);
    }
    if (accumulate) kernels::add(out, y, M * N);
  }

  // Causal attention of rows i (position pos+i) over keys 0..pos+i, then (adapter layers) the
  // gated prompt branch with its own softmax. One task per (row, head).
  template <class KV>
  void attend_(ThreadPool& pool, RunState& st, int l, std::int64_t pos, std::int64_t n) const {
    const std::int64_t dim = c_.dim, hd = c_.head_dim, n_heads = c_.n_heads;
    const float scale = 1.0f / std::sqrt(float(hd));
    const KV* keys = st.cache_.key_row<KV>(l, 0);
    const KV* values = st.cache_.value_row<KV>(l, 0);
    const std::int64_t n_prompts = st.n_prompts_[std::size_t(l)];
    const float* pk = n_prompts ? st.prompts_k_[std::size_t(l)].data() : nullptr;
    const float* pv = n_prompts ? st.prompts_v_[std::size_t(l)].data() : nullptr;
    const float* gates = n_prompts ? st.gates_.data() + std::size_t(l) * std::size_t(n_heads) : nullptr;
    const float* q_all = st.q_.data();
    float* att = st.att_.data();
    pool.parallel_for(n * n_heads, [&](std::int64_t begin, std::int64_t end) {
      std::vector<float> scores(std::size_t(std::max(pos + n, n_prompts)));
      for (std::int64_t task = begin; task < end; ++task) {
        const std::int64_t i = task / n_heads, h = task % n_heads;
        float* out = att + i * dim + h * hd;
        const float* q = q_all + i * dim + h * hd;
        kernels::attention_head(out, q, keys + h * hd, values + h * hd, pos + i + 1, hd, dim, scale, scores.data());
        if (n_prompts)
          kernels::adapter_attention_head(out, q, pk + h * hd, pv + h * hd, n_prompts, hd, dim, scale, gates[h],
                                          scores.data());
      }
    });
  }

  // One transformer block over rows x[0..n) at absolute positions pos..pos+n-1.
  void block_(ThreadPool& pool, RunState& st, int l, std::int64_t pos, std::int64_t n) const {
    const LayerWeights& lw = w_.layers[std::size_t(l)];
    const std::int64_t dim = c_.dim, hd = c_.head_dim, n_heads = c_.n_heads, half = hd / 2;
    float* x = st.x_.data();
    float* xb = st.xb_.data();

    // Attention input: xb = RMSNorm(x) * attention_norm.
    for (std::int64_t i = 0; i < n; ++i)
      kernels::rmsnorm(xb + i * dim, x + i * dim, lw.attention_norm.data(), dim, c_.norm_eps);
    // q, k, v; RoPE on q and k per head at each row's absolute position; k, v into the cache.
    linear_(pool, st, st.q_.data(), xb, n, lw.wq, false);
    linear_(pool, st, st.k_.data(), xb, n, lw.wk, false);
    linear_(pool, st, st.v_.data(), xb, n, lw.wv, false);
    for (std::int64_t i = 0; i < n; ++i) {
      const float* cs = st.rope_cos_.data() + i * half;
      const float* sn = st.rope_sin_.data() + i * half;
      for (std::int64_t h = 0; h < n_heads; ++h) {
        kernels::rope_interleaved(st.q_.data() + i * dim + h * hd, hd, cs, sn);
        kernels::rope_interleaved(st.k_.data() + i * dim + h * hd, hd, cs, sn);
      }
    }
    st.cache_.store(l, pos, n, st.k_.data(), st.v_.data());
    if (st.cache_.dtype() == KvDType::f16) attend_<f16_t>(pool, st, l, pos, n);
    else attend_<float>(pool, st, l, pos, n);
    // x += wo(att)
    linear_(pool, st, x, st.att_.data(), n, lw.wo, true);

    // Feed-forward: x += w2(silu(w1 xb) * w3 xb), xb = RMSNorm(x) * ffn_norm.
    for (std::int64_t i = 0; i < n; ++i)
      kernels::rmsnorm(xb + i * dim, x + i * dim, lw.ffn_norm.data(), dim, c_.norm_eps);
    linear_(pool, st, st.h1_.data(), xb, n, lw.w1, false);
    linear_(pool, st, st.h3_.data(), xb, n, lw.w3, false);
    kernels::swiglu(st.h1_.data(), st.h1_.data(), st.h3_.data(), n * c_.hidden_dim);
    linear_(pool, st, x, st.h1_.data(), n, lw.w2, true);
  }

  LlamaConfig c_;
  AdapterSpec s_;
  LlamaWeights w_;
  RopeFrequencies rope_;
};

}  // namespace lav2::model
