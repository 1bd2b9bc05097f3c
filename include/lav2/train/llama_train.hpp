// The training model of the LLM side: an f32 forward over a batch of sequences that keeps the
// activations its backward needs, the official loss (train/loss.hpp) and the full backward into
// the trainable tensors of one parameter group (train/param_groups.hpp).
//
// It is built over an inference model (model::LlamaModel) and shares its frozen matrices, which
// stay in their stored dtype in the mapped files and get no gradient. The tensors of the group
// are copied into writable f32 TrainableTensors (value + gradient), and the model's own table
// views are pointed at them, so every forward reads the optimiser's latest values (tanh(gate)
// included: nothing is cached across steps).
//
// Per sequence (positions 0..S-1, rows = positions), per layer, as the official forward (spec
// 1.3, 2.1) and lav2's inference model compute it:
//   xn1 = RMSNorm(x) w_attn;  q, k, v = tuned linears of xn1;  q, k = RoPE(q, k)
//   att = softmax(q k^T / sqrt(hd) + causal) v  +  G_h softmax(q ka^T / sqrt(hd)) va   (adapter layers)
//   h = x + wo(att);  xn2 = RMSNorm(h) w_ffn;  x' = h + w2(silu(w1 xn2) * w3 xn2)
//   logits = output(RMSNorm(x_L) w_norm)
// with the prompts P of layer l (adapter_query rows + the visual query, per the fusion mode),
// ka = wk P, va = wv P (plain frozen wk, wv). The backward runs the same steps in reverse through
// the ops of train/, and also returns d loss / d visual query (for the visual branch).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "lav2/core/aligned_alloc.hpp"
#include "lav2/core/error.hpp"
#include "lav2/core/thread_pool.hpp"
#include "lav2/kernels/dispatch.hpp"
#include "lav2/model/llama_model.hpp"
#include "lav2/model/rope.hpp"
#include "lav2/train/activation.hpp"
#include "lav2/train/adapter_attention.hpp"
#include "lav2/train/attention.hpp"
#include "lav2/train/linear.hpp"
#include "lav2/train/loss.hpp"
#include "lav2/train/norm.hpp"
#include "lav2/train/param_groups.hpp"
#include "lav2/train/rope.hpp"
#include "lav2/train/workspace.hpp"

namespace lav2::train {

/// \brief One batch: B sequences of S tokens with their labels (0 = no loss), and the visual
/// query of each sequence (V2 models).
struct TrainBatch {
  const std::int32_t* tokens = nullptr;     // (B, S); padding as the official datasets leave it (0)
  const std::int32_t* labels = nullptr;     // (B, S)
  const float* visual_query = nullptr;      // (B, n_visual, dim), or null
  std::int64_t B = 0, S = 0, n_visual = 0;  //
};

/// \brief The LLM's training forward and backward for one parameter group.
class LlamaTrainModel {
 public:
  /// `m` must outlive this model (its frozen matrices are used in place).
  LlamaTrainModel(const model::LlamaModel& m, ParamGroup group, bool train_lora = false)
      : LlamaTrainModel(m, std::vector<ParamGroup>{group}, train_lora) {}
  /// Trains the rows of any of `groups` (the joint schedule: visual and language).
  LlamaTrainModel(const model::LlamaModel& m, const std::vector<ParamGroup>& groups, bool train_lora = false)
      : c_(m.config()), s_(m.spec()), w_(m.weights()), rope_(c_.head_dim, c_.rope_theta) {
    if (s_.kind == model::AdapterKind::v1)
      LAV2_THROW(input_error, "training: LLaMA-Adapter V1's raw gate is an inference-only variant; train V2");
    const GroupOptions opt{s_, c_.n_layers, train_lora};
    const std::string prefix = "llama.";
    model::for_each_tensor(w_, c_, s_, [&](const io::TensorSpec& row, auto& slot) {
      io::TensorSpec key = row;
      if (row.group != io::Group::adapter_prompts) key.name = prefix + row.name;
      bool trained = false;
      for (ParamGroup g : groups) trained = trained || in_group(g, key, opt);
      if (!trained) return;
      if constexpr (std::is_same_v<std::decay_t<decltype(slot)>, TensorView<const float>>) {
        TrainableTensor& t = params_.emplace_back(key);
        std::copy(slot.data(), slot.data() + t.value.numel(), t.value.data());
        slot = TensorView<const float>(t.value.data(), row.shape);  // Tensor data never moves
      } else {
        LAV2_THROW(internal_error, "training: table row '", key.name, "' is a frozen matrix");
      }
    });
    for (std::size_t i = 0; i < params_.size(); ++i) index_[params_[i].value.data()] = i;
    read_.assign(params_.size(), false);
  }

  const model::LlamaConfig& config() const { return c_; }
  std::vector<TrainableTensor>& params() { return params_; }
  /// Whether the last forward read parameter i (torch leaves .grad None otherwise: layer 0's gate).
  const std::vector<bool>& has_grad() const { return read_; }
  void zero_grad() {
    for (TrainableTensor& t : params_) std::fill(t.grad.begin(), t.grad.end(), 0.0f);
  }

  /// \brief Forward and backward of one batch: returns the loss and adds the gradients into the
  /// parameters' grad buffers (so calls accumulate; zero_grad() between steps).
  /// `d_visual_query` (B, n_visual, dim) receives d loss / d visual query when not null.
  double forward_backward(ThreadPool& pool, const TrainBatch& b, float* d_visual_query = nullptr) {
    check_batch_(b);
    const std::int64_t S = b.S, V = c_.vocab_size, dim = c_.dim;
    std::fill(read_.begin(), read_.end(), false);
    for (const TrainableTensor& t : params_)
      if (t.spec.group != io::Group::gates) read_[index_of_(t.value.data())] = true;
    rope_cos_.resize(std::size_t(S * rope_.half()));
    rope_sin_.resize(rope_cos_.size());
    rope_.fill(0, S, rope_cos_.data(), rope_sin_.data());
    acts_.resize(std::size_t(b.B * c_.n_layers));
    finals_.resize(std::size_t(b.B));
    logits_.resize(std::size_t(b.B * S * V));
    for (std::int64_t s = 0; s < b.B; ++s) forward_sequence_(pool, b, s);
    dlogits_.resize(logits_.size());
    const double loss =
        cross_entropy_forward_backward(pool, dlogits_.data(), logits_.data(), b.labels, b.B, S, V, row_loss_);
    if (d_visual_query) std::fill(d_visual_query, d_visual_query + b.B * b.n_visual * dim, 0.0f);
    for (std::int64_t s = 0; s < b.B; ++s)
      backward_sequence_(pool, b, s, d_visual_query ? d_visual_query + s * b.n_visual * dim : nullptr);
    return loss;
  }

 private:
  using Buf = AlignedVector<float>;
  static float* sized(Buf& v, std::int64_t n) {
    v.resize(std::size_t(n));
    return v.data();
  }

  // The activations of one linear: u = W x + b before an output scale, mid = l1 x for LoRA.
  struct LinearActs {
    Buf u, mid;
  };
  // What one layer of one sequence keeps for the backward.
  struct LayerActs {
    Buf x, xn1, q, k, v, probs, att, h, xn2, a, g3, hm;
    LinearActs lin[7];
    Buf prompts, ka, va, probs_a;  // (np, dim) x 3, (H, S, np)
    std::int64_t n_prompts = 0;
  };
  struct FinalActs {
    Buf x, xf;  // x_L and RMSNorm(x_L) w_norm, (S, dim)
  };

  void check_batch_(const TrainBatch& b) const {
    if (b.B <= 0 || b.S < 2 || !b.tokens || !b.labels)
      LAV2_THROW(input_error, "training batch: ", b.B, " sequences of ", b.S,
                 " tokens; expected at least 1 sequence of at least 2 tokens, with labels");
    if (s_.takes_visual() && (!b.visual_query || b.n_visual <= 0))
      LAV2_THROW(input_error, "training batch: a LLaMA-Adapter V2 model needs a visual query per sequence");
    if (b.visual_query && s_.fusion != model::FusionMode::paper_early && b.n_visual != s_.query_len)
      LAV2_THROW(input_error, "training batch: visual query of ", b.n_visual, " rows; the prompts have ", s_.query_len);
  }

  std::size_t index_of_(const float* value) const { return index_.at(value); }
  // The gradient buffer of a trainable tensor's view, or null for a frozen or absent one.
  float* grad_of_(const TensorView<const float>& v) {
    if (v.empty()) return nullptr;
    const auto it = index_.find(v.data());
    return it == index_.end() ? nullptr : params_[it->second].grad.data();
  }
  void mark_read_(const TensorView<const float>& v) {
    if (const auto it = index_.find(v.data()); !v.empty() && it != index_.end()) read_[it->second] = true;
  }

  LinearParams<float> params_of_(const model::Linear& l) const {
    LinearParams<float> p;
    p.bias = l.bias.empty() ? nullptr : l.bias.data();
    p.scale = l.scale.empty() ? nullptr : l.scale.data();
    p.scale_mode = s_.scale;
    p.lora_l1 = l.lora_l1.empty() ? nullptr : l.lora_l1.data();
    p.lora_l2 = l.lora_l2.empty() ? nullptr : l.lora_l2.data();
    p.N = l.weight.rows, p.K = l.weight.cols, p.rank = l.lora_l1.empty() ? 0 : l.lora_l1.dim(0);
    return p;
  }
  LinearGrads<float> grads_of_(const model::Linear& l) {
    return {grad_of_(l.bias), grad_of_(l.scale), grad_of_(l.lora_l1), grad_of_(l.lora_l2)};
  }
  void linear_(ThreadPool& pool, float* y, const float* x, std::int64_t M, const model::Linear& l, LinearActs& a) {
    const LinearParams<float> p = params_of_(l);
    float* u = p.has_output_scale() ? sized(a.u, M * p.N) : nullptr;
    float* mid = p.has_lora() ? sized(a.mid, M * p.rank) : nullptr;
    linear_forward(pool, ws_, y, u, mid, x, M, l.weight, p);
  }
  void linear_back_(ThreadPool& pool, float* dx, const float* dy, const float* x, std::int64_t M,
                    const model::Linear& l, const LinearActs& a) {
    linear_backward(pool, ws_, dx, grads_of_(l), dy, x, a.u.data(), a.mid.data(), M, l.weight, params_of_(l));
  }
  void rmsnorm_rows_(float* y, const float* x, const float* w, std::int64_t S) const {
    for (std::int64_t i = 0; i < S; ++i) kernels::rmsnorm(y + i * c_.dim, x + i * c_.dim, w, c_.dim, c_.norm_eps);
  }

  // Prompt rows of layer l for sequence s, as LlamaModel::set_prompts_ builds them.
  void build_prompts_(const TrainBatch& b, std::int64_t s, int l, LayerActs& A) {
    const std::int64_t dim = c_.dim, L = s_.query_len;
    const float* vq = b.visual_query ? b.visual_query + s * b.n_visual * dim : nullptr;
    const int j = l - (c_.n_layers - s_.query_layer);
    A.n_prompts = 0;
    A.prompts.clear();
    if (s_.has_prompts() && j >= 0) {
      const float* q = w_.adapter_query.data() + std::int64_t(j) * L * dim;
      A.prompts.assign(q, q + L * dim);
      if (vq && s_.visual_added(j)) kernels::add(A.prompts.data(), vq, L * dim);
    }
    if (vq && s_.visual_prompts(l)) A.prompts.insert(A.prompts.end(), vq, vq + b.n_visual * dim);
    A.n_prompts = std::int64_t(A.prompts.size()) / dim;
  }

  void forward_sequence_(ThreadPool& pool, const TrainBatch& b, std::int64_t s) {
    const std::int64_t S = b.S, dim = c_.dim, hidden = c_.hidden_dim, H = c_.n_heads, hd = c_.head_dim;
    const std::int32_t* tokens = b.tokens + s * S;
    Buf& x = x_;  // the residual stream
    x.resize(std::size_t(S * dim));
    for (std::int64_t i = 0; i < S; ++i) {
      if (tokens[i] < 0 || tokens[i] >= c_.vocab_size)
        LAV2_THROW(input_error, "training batch: sequence ", s, " token ", i, " is ", tokens[i], ", expected 0..",
                   c_.vocab_size - 1);
      mat_row_to_f32(w_.tok_embeddings, tokens[i], x.data() + i * dim);
    }
    for (int l = 0; l < c_.n_layers; ++l) {
      const model::LayerWeights& lw = w_.layers[std::size_t(l)];
      LayerActs& A = acts_[std::size_t(s * c_.n_layers + l)];
      A.x = x;
      rmsnorm_rows_(sized(A.xn1, S * dim), A.x.data(), lw.attention_norm.data(), S);
      linear_(pool, sized(A.q, S * dim), A.xn1.data(), S, lw.wq, A.lin[0]);
      linear_(pool, sized(A.k, S * dim), A.xn1.data(), S, lw.wk, A.lin[1]);
      linear_(pool, sized(A.v, S * dim), A.xn1.data(), S, lw.wv, A.lin[2]);
      rope_forward(A.q.data(), rope_cos_.data(), rope_sin_.data(), S, H, hd);
      rope_forward(A.k.data(), rope_cos_.data(), rope_sin_.data(), S, H, hd);
      attention_forward(pool, sized(A.att, S * dim), sized(A.probs, H * S * S), A.q.data(), A.k.data(), A.v.data(), S,
                        H, hd);
      build_prompts_(b, s, l, A);
      if (A.n_prompts) {
        const std::int64_t np = A.n_prompts;
        kernels::matmul(pool, sized(A.ka, np * dim), A.prompts.data(), lw.wk.weight, np);
        kernels::matmul(pool, sized(A.va, np * dim), A.prompts.data(), lw.wv.weight, np);
        mark_read_(lw.gate);
        mark_read_(lw.new_gate);
        adapter_attention_forward(pool, A.att.data(), sized(A.probs_a, H * S * np), A.q.data(), prompts_of_(lw, A), S,
                                  H, hd);
      }
      linear_(pool, sized(A.h, S * dim), A.att.data(), S, lw.wo, A.lin[3]);
      kernels::add(A.h.data(), A.x.data(), S * dim);
      rmsnorm_rows_(sized(A.xn2, S * dim), A.h.data(), lw.ffn_norm.data(), S);
      linear_(pool, sized(A.a, S * hidden), A.xn2.data(), S, lw.w1, A.lin[4]);
      linear_(pool, sized(A.g3, S * hidden), A.xn2.data(), S, lw.w3, A.lin[6]);
      kernels::swiglu(sized(A.hm, S * hidden), A.a.data(), A.g3.data(), S * hidden);
      linear_(pool, x.data(), A.hm.data(), S, lw.w2, A.lin[5]);
      kernels::add(x.data(), A.h.data(), S * dim);
    }
    FinalActs& F = finals_[std::size_t(s)];
    F.x = x;
    rmsnorm_rows_(sized(F.xf, S * dim), F.x.data(), w_.norm.data(), S);
    kernels::matmul(pool, logits_.data() + s * S * c_.vocab_size, F.xf.data(), w_.output, S);
  }

  AdapterPrompts<float> prompts_of_(const model::LayerWeights& lw, const LayerActs& A) const {
    return {A.ka.data(), A.va.data(), lw.gate.data(), lw.new_gate.empty() ? nullptr : lw.new_gate.data(), A.n_prompts};
  }

  void backward_sequence_(ThreadPool& pool, const TrainBatch& b, std::int64_t s, float* d_vq) {
    const std::int64_t S = b.S, dim = c_.dim, hidden = c_.hidden_dim, H = c_.n_heads, hd = c_.head_dim;
    const FinalActs& F = finals_[std::size_t(s)];
    float* dx = sized(dx_, S * dim);
    float* dt = sized(dt_, S * dim);  // a gradient on its way into dx
    // logits = output(xf): the frozen output matrix, no parameters.
    LinearParams<float> out;
    out.N = c_.vocab_size, out.K = dim;
    linear_backward(pool, ws_, dt, {}, dlogits_.data() + s * S * c_.vocab_size, F.xf.data(), nullptr, nullptr, S,
                    w_.output, out);
    rmsnorm_backward(dx, grad_of_(w_.norm), dt, F.x.data(), w_.norm.data(), S, dim, c_.norm_eps);
    for (int l = c_.n_layers - 1; l >= 0; --l) {
      const model::LayerWeights& lw = w_.layers[std::size_t(l)];
      const LayerActs& A = acts_[std::size_t(s * c_.n_layers + l)];
      // x' = h + w2(hm): dh = dx' + the FFN's part.
      float* dhm = sized(dhm_, S * hidden);
      float* da = sized(da_, S * hidden);
      float* dg3 = sized(dg3_, S * hidden);
      linear_back_(pool, dhm, dx, A.hm.data(), S, lw.w2, A.lin[5]);
      swiglu_backward(da, dg3, dhm, A.a.data(), A.g3.data(), S * hidden);
      float* dxn = sized(dxn_, S * dim);
      linear_back_(pool, dxn, da, A.xn2.data(), S, lw.w1, A.lin[4]);
      linear_back_(pool, dt, dg3, A.xn2.data(), S, lw.w3, A.lin[6]);
      kernels::add(dxn, dt, S * dim);
      rmsnorm_backward(dt, grad_of_(lw.ffn_norm), dxn, A.h.data(), lw.ffn_norm.data(), S, dim, c_.norm_eps);
      kernels::add(dx, dt, S * dim);  // dx now holds dh
      // h = x + wo(att)
      float* datt = sized(datt_, S * dim);
      linear_back_(pool, datt, dx, A.att.data(), S, lw.wo, A.lin[3]);
      float* dq = sized(dq_, S * dim);
      float* dk = sized(dk_, S * dim);
      float* dv = sized(dv_, S * dim);
      attention_backward(pool, ws_, dq, dk, dv, datt, A.q.data(), A.k.data(), A.v.data(), A.probs.data(), S, H, hd);
      if (A.n_prompts) prompt_backward_(pool, b, l, lw, A, datt, dq, d_vq);
      rope_backward(dq, rope_cos_.data(), rope_sin_.data(), S, H, hd);
      rope_backward(dk, rope_cos_.data(), rope_sin_.data(), S, H, hd);
      linear_back_(pool, dxn, dq, A.xn1.data(), S, lw.wq, A.lin[0]);
      linear_back_(pool, dt, dk, A.xn1.data(), S, lw.wk, A.lin[1]);
      kernels::add(dxn, dt, S * dim);
      linear_back_(pool, dt, dv, A.xn1.data(), S, lw.wv, A.lin[2]);
      kernels::add(dxn, dt, S * dim);
      rmsnorm_backward(dt, grad_of_(lw.attention_norm), dxn, A.x.data(), lw.attention_norm.data(), S, dim, c_.norm_eps);
      kernels::add(dx, dt, S * dim);  // dx now holds d(layer input)
    }
  }

  // The gated prompt branch: dq += its part; the gates', adapter_query's and the visual query's
  // gradients through ka = wk P, va = wv P.
  void prompt_backward_(ThreadPool& pool, const TrainBatch& b, int l, const model::LayerWeights& lw, const LayerActs& A,
                        const float* datt, float* dq, float* d_vq) {
    const std::int64_t S = b.S, dim = c_.dim, np = A.n_prompts, L = s_.query_len;
    float* dka = sized(dka_, np * dim);
    float* dva = sized(dva_, np * dim);
    const AdapterPromptGrads<float> g{dka, dva, grad_of_(lw.gate), grad_of_(lw.new_gate)};
    adapter_attention_backward(pool, ws_, dq, g, datt, A.q.data(), prompts_of_(lw, A), A.probs_a.data(), S, c_.n_heads,
                               c_.head_dim);
    LinearParams<float> plain;  // wk, wv on the prompts: frozen, nothing else
    plain.N = dim, plain.K = dim;
    float* dP = sized(dp_, np * dim);
    float* dP2 = sized(dp2_, np * dim);
    linear_backward(pool, ws_, dP, {}, dka, A.prompts.data(), nullptr, nullptr, np, lw.wk.weight, plain);
    linear_backward(pool, ws_, dP2, {}, dva, A.prompts.data(), nullptr, nullptr, np, lw.wv.weight, plain);
    kernels::add(dP, dP2, np * dim);
    // Rows 0..L-1: the adaptation prompts (+ the visual query where added); then visual prompts.
    const int j = l - (c_.n_layers - s_.query_layer);
    std::int64_t row = 0;
    if (j >= 0) {
      if (float* dq_rows = grad_of_(w_.adapter_query)) kernels::add(dq_rows + std::int64_t(j) * L * dim, dP, L * dim);
      if (d_vq && b.visual_query && s_.visual_added(j)) kernels::add(d_vq, dP, L * dim);
      row = L;
    }
    if (d_vq && np > row) kernels::add(d_vq, dP + row * dim, (np - row) * dim);
  }

  model::LlamaConfig c_;
  model::AdapterSpec s_;
  model::LlamaWeights w_;  // a copy of the model's table: trainable views point into params_
  model::RopeFrequencies rope_;
  std::vector<TrainableTensor> params_;
  std::unordered_map<const float*, std::size_t> index_;
  std::vector<bool> read_;
  std::vector<float> rope_cos_, rope_sin_;
  std::vector<LayerActs> acts_;
  std::vector<FinalActs> finals_;
  Buf logits_, dlogits_;
  std::vector<double> row_loss_;
  Buf x_, dx_, dt_, dhm_, da_, dg3_, dxn_, datt_, dq_, dk_, dv_, dka_, dva_, dp_, dp2_;
  Workspace ws_;
};

}  // namespace lav2::train
