// The weight table of LLaMA and LLaMA-Adapter V2: every tensor with its name, shape, what a
// missing one becomes and its parameter group, bound by name from any tensor source (Meta's .pth,
// the adapter's 'model' dict, safetensors). One for_each_tensor() lists them; loading,
// validation, parameter counts and tests all reuse it (docs/model.md, section 6).
//
// Dtypes, decided here and nowhere else:
// - frozen matrices (the seven linears, tok_embeddings, output) are MatPtr handles used in the
//   dtype the checkpoint stored them in, in place in the mapped file;
// - everything else (norms, biases, scales, gates, LoRA, adapter_query) is small and is converted
//   once to f32 at load: the official code computes these in f32 (they are the fp32 trainable
//   parameters of get_trainable_params), and the forward pass reads them as f32.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "lav2/core/error.hpp"
#include "lav2/io/weight_bind.hpp"
#include "lav2/io/weight_table.hpp"
#include "lav2/model/adapter_spec.hpp"
#include "lav2/model/llama_config.hpp"
#include "lav2/tensor/mat_ptr.hpp"
#include "lav2/tensor/tensor.hpp"

namespace lav2::model {

using io::Group;
using io::Missing;
using io::TensorSpec;

/// \brief A linear layer and its tuning tensors; which of them exist is the AdapterSpec's call.
struct Linear {
  MatPtr weight;                    // (out, in), frozen, stored dtype
  TensorView<const float> bias;     // (out)
  TensorView<const float> scale;    // (in) for ScaleMode::input, (out) for ScaleMode::output
  TensorView<const float> lora_l1;  // (rank, in)
  TensorView<const float> lora_l2;  // (out, rank)
};

/// \brief One block's weights.
struct LayerWeights {
  Linear wq, wk, wv, wo;                   // (dim, dim)
  Linear w1, w3;                           // (hidden_dim, dim)
  Linear w2;                               // (dim, hidden_dim)
  TensorView<const float> attention_norm;  // (dim)
  TensorView<const float> ffn_norm;        // (dim)
  TensorView<const float> gate;            // (1, n_heads, 1, 1), adapter models only
  TensorView<const float> new_gate;        // (1, 1, 1, 1), LoRA adapter models only
  Linear& linear(LinearId id) {
    switch (id) {
      case LinearId::wq: return wq;
      case LinearId::wk: return wk;
      case LinearId::wv: return wv;
      case LinearId::wo: return wo;
      case LinearId::w1: return w1;
      case LinearId::w2: return w2;
      case LinearId::w3: return w3;
    }
    return wq;
  }
  const Linear& linear(LinearId id) const { return const_cast<LayerWeights*>(this)->linear(id); }
};

/// \brief All weights of a model. Views point into the mapped checkpoints where the stored
/// dtype and layout allow, otherwise into converted copies kept in `owned`.
struct LlamaWeights {
  MatPtr tok_embeddings;                           // (vocab_size, dim)
  std::vector<LayerWeights> layers;                // n_layers
  TensorView<const float> norm;                    // (dim)
  MatPtr output;                                   // (vocab_size, dim), not tied to the embeddings
  TensorView<const float> adapter_query;           // (query_layer * query_len, dim), adapter models only
  std::vector<std::shared_ptr<const void>> owned;  // converted tensors and the files views point into
};

namespace detail {
inline const char* linear_name(LinearId id) {
  static constexpr const char* kNames[] = {"wq", "wk", "wv", "wo", "w1", "w2", "w3"};
  return kNames[int(id)];
}
inline const char* linear_module(LinearId id) { return int(id) <= int(LinearId::wo) ? "attention." : "feed_forward."; }
}  // namespace detail

/// \brief Calls fn(spec, slot) for every tensor of the table of a model described by `s`, where
/// slot is a MatPtr& (a frozen matrix kept in its stored dtype) or a TensorView<const float>& (a
/// small tensor converted to f32). Names are Meta's ("layers.0.attention.wq.weight"); the official
/// adapter dict prefixes the LLaMA ones with "llama." (V1: no prefix).
template <class Fn>
void for_each_tensor(LlamaWeights& w, const LlamaConfig& c, const AdapterSpec& s, Fn&& fn) {
  const std::int64_t dim = c.dim, hidden = c.hidden_dim, vocab = c.vocab_size, r = s.lora_rank;
  auto emit = [&](std::string name, Shape shape, Missing missing, Group group, auto& slot) {
    fn(TensorSpec{std::move(name), shape, missing, group}, slot);
  };
  emit("tok_embeddings.weight", Shape{vocab, dim}, Missing::error, Group::base, w.tok_embeddings);
  w.layers.resize(std::size_t(c.n_layers));
  for (int i = 0; i < c.n_layers; ++i) {
    const std::string p = "layers." + std::to_string(i) + ".";
    LayerWeights& l = w.layers[std::size_t(i)];
    for (LinearId id : kAllLinears) {
      const std::string m = p + detail::linear_module(id), n = detail::linear_name(id);
      const bool ffn_in = id == LinearId::w1 || id == LinearId::w3, ffn_out = id == LinearId::w2;
      const std::int64_t out = ffn_in ? hidden : dim, in = ffn_out ? hidden : dim;
      Linear& lin = l.linear(id);
      emit(m + n + ".weight", Shape{out, in}, Missing::error, Group::base, lin.weight);
      if (s.bias == BiasSet::official && s.has_bias(id))
        emit(m + n + ".bias", Shape{out}, Missing::zeros, Group::biases, lin.bias);
      if (s.bias == BiasSet::all) emit(m + n + "_bias", Shape{out}, Missing::zeros, Group::biases, lin.bias);
      if (s.scale == ScaleMode::input) emit(m + n + "_scale", Shape{in}, Missing::ones, Group::scales, lin.scale);
      if (s.scale == ScaleMode::output) emit(m + n + "_scale", Shape{out}, Missing::ones, Group::scales, lin.scale);
      if (s.lora) {
        emit(m + "lora_" + n + "_l1.weight", Shape{r, in}, Missing::zeros, Group::lora, lin.lora_l1);
        emit(m + "lora_" + n + "_l2.weight", Shape{out, r}, Missing::zeros, Group::lora, lin.lora_l2);
      }
    }
    emit(p + "attention_norm.weight", Shape{dim}, Missing::error, Group::norms, l.attention_norm);
    emit(p + "ffn_norm.weight", Shape{dim}, Missing::error, Group::norms, l.ffn_norm);
    if (s.has_prompts()) {
      emit(p + "attention.gate", Shape{1, c.n_heads, 1, 1}, Missing::zeros, Group::gates, l.gate);
      if (s.lora) emit(p + "attention.new_gate", Shape{1, 1, 1, 1}, Missing::ones, Group::gates, l.new_gate);
    }
  }
  emit("norm.weight", Shape{dim}, Missing::error, Group::norms, w.norm);
  emit("output.weight", Shape{vocab, dim}, Missing::error, Group::base, w.output);
  if (s.has_prompts())
    emit("adapter_query.weight", Shape{std::int64_t(s.query_layer) * s.query_len, dim}, Missing::error,
         Group::adapter_prompts, w.adapter_query);
}

/// \brief The table of a model described by `s`, in order.
inline std::vector<TensorSpec> tensor_table(const LlamaConfig& c, const AdapterSpec& s = {}) {
  return io::table_rows<LlamaWeights>(c, s);
}

/// \brief Looks a tensor up by its table name; returns nullptr when no source has it.
using TensorLookup = std::function<const AnyTensorView*(const std::string& name)>;

/// \brief Binds every tensor of the table from `lookup`, checking presence, shape and dtype.
/// `file` names the source in messages (the lookup may merge several files).
inline LlamaWeights bind_llama_weights(const LlamaConfig& c, const AdapterSpec& s, const TensorLookup& lookup,
                                       const std::string& file) {
  LlamaWeights w;
  for_each_tensor(w, c, s, [&](const TensorSpec& spec, auto& slot) {
    io::bind_row(slot, spec, spec.name, lookup(spec.name), file, w.owned);
  });
  return w;
}

}  // namespace lav2::model
