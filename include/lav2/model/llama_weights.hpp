// The weight table of LLaMA and LLaMA-Adapter V2: every tensor with its name, shape and what a
// missing one becomes, bound by name from any tensor source (Meta's .pth, the adapter's 'model'
// dict, safetensors). One for_each_tensor() lists them; loading, validation, parameter counts and
// tests all reuse it (spec sections 1.2, 2.1, 3.1, 3.2, 5.2).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "lav2/core/error.hpp"
#include "lav2/model/adapter_config.hpp"
#include "lav2/model/llama_config.hpp"
#include "lav2/model/policies.hpp"
#include "lav2/tensor/tensor.hpp"

namespace lav2::model {

/// \brief What a tensor that the sources lack becomes, as the official load(strict=False)
/// leaves it: an error, zeros (biases, gates, LoRA: no effect) or ones (scales, new_gate).
enum class Missing { error, zeros, ones };

/// \brief Which parameter group a tensor belongs to (for `lav2 info` and the tests).
enum class Group { base, adapter_prompts, gates, biases, norms, scales, lora, visual };

/// \brief A linear layer and its tuning tensors; which of them exist is the TuningPolicy's call.
template <class W>
struct Linear {
  TensorView<const W> weight;       // (out, in), frozen
  TensorView<const float> bias;     // (out)
  TensorView<const float> scale;    // (in) for ScaleMode::input, (out) for ScaleMode::output
  TensorView<const float> lora_l1;  // (rank, in)
  TensorView<const float> lora_l2;  // (out, rank)
};

/// \brief One block's weights.
template <class W>
struct LayerWeights {
  Linear<W> wq, wk, wv, wo;                 // (dim, dim)
  Linear<W> w1, w3;                         // (hidden_dim, dim)
  Linear<W> w2;                             // (dim, hidden_dim)
  TensorView<const float> attention_norm;   // (dim)
  TensorView<const float> ffn_norm;         // (dim)
  TensorView<const float> gate;             // (1, n_heads, 1, 1), adapter models only
  TensorView<const float> new_gate;         // (1, 1, 1, 1), LoRA adapter models only
  Linear<W>& linear(policy::LinearId id) {
    switch (id) {
      case policy::LinearId::wq: return wq;
      case policy::LinearId::wk: return wk;
      case policy::LinearId::wv: return wv;
      case policy::LinearId::wo: return wo;
      case policy::LinearId::w1: return w1;
      case policy::LinearId::w2: return w2;
      case policy::LinearId::w3: return w3;
    }
    return wq;
  }
};

/// \brief All weights of a model. Views point into the mapped checkpoints where the stored
/// dtype and layout allow, otherwise into converted copies kept in `owned`.
template <class W>
struct LlamaWeights {
  TensorView<const W> tok_embeddings;       // (vocab_size, dim)
  std::vector<LayerWeights<W>> layers;      // n_layers
  TensorView<const float> norm;             // (dim)
  TensorView<const W> output;               // (vocab_size, dim), not tied to the embeddings
  TensorView<const float> adapter_query;    // (query_layer * query_len, dim), adapter models only
  std::vector<std::shared_ptr<const void>> owned;  // converted tensors and the files views point into
};

/// \brief One table entry as for_each_tensor reports it.
struct TensorSpec {
  std::string name;  // Meta's name for LLaMA tensors ("layers.0.attention.wq.weight"); the
                     // official adapter dict prefixes these with "llama." (V1: no prefix)
  Shape shape;
  Missing missing;
  Group group;
};

namespace detail {
inline const char* linear_name(policy::LinearId id) {
  static constexpr const char* kNames[] = {"wq", "wk", "wv", "wo", "w1", "w2", "w3"};
  return kNames[int(id)];
}
inline const char* linear_module(policy::LinearId id) {
  return int(id) <= int(policy::LinearId::wo) ? "attention." : "feed_forward.";
}
}  // namespace detail

/// \brief Calls fn(spec, slot) for every tensor of the table of a model with policies
/// Adapter/Tuning, where slot is a TensorView<const W>& (a frozen matrix kept in the weight dtype)
/// or a TensorView<const float>& (a small tensor converted to f32).
template <class Adapter, class Tuning, class W, class Fn>
void for_each_tensor(LlamaWeights<W>& w, const LlamaConfig& c, const AdapterConfig& ac, Fn&& fn) {
  using policy::LinearId;
  const std::int64_t dim = c.dim, hidden = c.hidden_dim, vocab = c.vocab_size, r = ac.lora_rank;
  auto emit = [&](std::string name, Shape shape, Missing missing, Group group, auto& slot) {
    fn(TensorSpec{std::move(name), shape, missing, group}, slot);
  };
  emit("tok_embeddings.weight", Shape{vocab, dim}, Missing::error, Group::base, w.tok_embeddings);
  w.layers.resize(std::size_t(c.n_layers));
  for (int i = 0; i < c.n_layers; ++i) {
    const std::string p = "layers." + std::to_string(i) + ".";
    LayerWeights<W>& l = w.layers[std::size_t(i)];
    for (LinearId id : policy::kAllLinears) {
      const std::string m = p + detail::linear_module(id), n = detail::linear_name(id);
      const bool ffn_in = id == LinearId::w1 || id == LinearId::w3, ffn_out = id == LinearId::w2;
      const std::int64_t out = ffn_in ? hidden : dim, in = ffn_out ? hidden : dim;
      Linear<W>& lin = l.linear(id);
      emit(m + n + ".weight", Shape{out, in}, Missing::error, Group::base, lin.weight);
      if constexpr (Tuning::kBias == policy::BiasSet::official) {
        if (Tuning::has_bias(id)) emit(m + n + ".bias", Shape{out}, Missing::zeros, Group::biases, lin.bias);
      } else if constexpr (Tuning::kBias == policy::BiasSet::all) {
        emit(m + n + "_bias", Shape{out}, Missing::zeros, Group::biases, lin.bias);
      }
      if constexpr (Tuning::kScale == policy::ScaleMode::input)
        emit(m + n + "_scale", Shape{in}, Missing::ones, Group::scales, lin.scale);
      if constexpr (Tuning::kScale == policy::ScaleMode::output)
        emit(m + n + "_scale", Shape{out}, Missing::ones, Group::scales, lin.scale);
      if constexpr (Tuning::kLora) {
        emit(m + "lora_" + n + "_l1.weight", Shape{r, in}, Missing::zeros, Group::lora, lin.lora_l1);
        emit(m + "lora_" + n + "_l2.weight", Shape{out, r}, Missing::zeros, Group::lora, lin.lora_l2);
      }
    }
    emit(p + "attention_norm.weight", Shape{dim}, Missing::error, Group::norms, l.attention_norm);
    emit(p + "ffn_norm.weight", Shape{dim}, Missing::error, Group::norms, l.ffn_norm);
    if constexpr (Adapter::kEnabled) {
      emit(p + "attention.gate", Shape{1, c.n_heads, 1, 1}, Missing::zeros, Group::gates, l.gate);
      if constexpr (Tuning::kLora)
        emit(p + "attention.new_gate", Shape{1, 1, 1, 1}, Missing::ones, Group::gates, l.new_gate);
    }
  }
  emit("norm.weight", Shape{dim}, Missing::error, Group::norms, w.norm);
  emit("output.weight", Shape{vocab, dim}, Missing::error, Group::base, w.output);
  if constexpr (Adapter::kEnabled)
    emit("adapter_query.weight", Shape{std::int64_t(ac.query_layer) * ac.query_len, dim}, Missing::error,
         Group::adapter_prompts, w.adapter_query);
}

/// \brief Looks a tensor up by its table name; returns nullptr when no source has it.
using TensorLookup = std::function<const AnyTensorView*(const std::string& name)>;

namespace detail {
/// Converts any float tensor (f32/f16/bf16, any strides) to a contiguous Tensor<T>.
template <class T>
std::shared_ptr<Tensor<T>> convert_tensor(const AnyTensorView& src, const std::string& file, const std::string& name) {
  auto out = std::make_shared<Tensor<T>>(src.shape);
  const std::int64_t n = src.numel();
  std::array<std::int64_t, kMaxRank> idx{};  // walks the source in C order with its strides
  for (std::int64_t flat = 0; flat < n; ++flat) {
    std::int64_t off = 0;
    for (int d = 0; d < src.shape.rank; ++d) off += idx[std::size_t(d)] * src.strides[std::size_t(d)];
    float v = 0.0f;
    switch (src.dtype) {
      case DType::f32: v = static_cast<const float*>(src.data)[off]; break;
      case DType::f16: v = f16_to_f32(static_cast<const std::uint16_t*>(src.data)[off]); break;
      case DType::bf16: v = bf16_to_f32(static_cast<const std::uint16_t*>(src.data)[off]); break;
      default:
        LAV2_THROW(load_error, "checkpoint '", file, "': tensor '", name, "' has dtype ", dtype_name(src.dtype),
                   ", expected a floating-point type (f32, f16, bf16)");
    }
    (*out)[flat] = from_f32<T>(v);
    for (int d = src.shape.rank - 1; d >= 0; --d) {
      if (++idx[std::size_t(d)] < src.shape[d]) break;
      idx[std::size_t(d)] = 0;
    }
  }
  return out;
}

/// Binds `slot` to `src`: in place when dtype and layout allow, else through a converted copy.
template <class T>
void bind_tensor(TensorView<const T>& slot, const AnyTensorView& src, const std::string& file, const std::string& name,
                 std::vector<std::shared_ptr<const void>>& owned) {
  const bool in_place = src.dtype == dtype_of_v<T> &&
                        TensorView<const T>(static_cast<const T*>(src.data), src.shape, src.strides).is_contiguous();
  if (in_place) {
    slot = TensorView<const T>(static_cast<const T*>(src.data), src.shape);
    return;
  }
  auto copy = convert_tensor<T>(src, file, name);
  slot = TensorView<const T>(copy->data(), copy->shape());
  owned.push_back(std::move(copy));
}

/// Binds `slot` to a new tensor of `shape` filled with `value` (a missing optional tensor).
template <class T>
void bind_constant(TensorView<const T>& slot, const Shape& shape, float value, std::vector<std::shared_ptr<const void>>& owned) {
  auto t = std::make_shared<Tensor<T>>(shape);
  for (auto& x : *t) x = from_f32<T>(value);
  slot = TensorView<const T>(t->data(), t->shape());
  owned.push_back(std::move(t));
}
}  // namespace detail

/// \brief Binds every tensor of the table from `lookup`, checking presence and shape. `file`
/// names the source in messages (the lookup may merge several files).
template <class W, class Adapter = policy::NoAdapter, class Tuning = policy::Frozen>
LlamaWeights<W> bind_llama_weights(const LlamaConfig& c, const TensorLookup& lookup, const std::string& file,
                                   const AdapterConfig& ac = {}) {
  LlamaWeights<W> w;
  for_each_tensor<Adapter, Tuning>(w, c, ac, [&](const TensorSpec& spec, auto& slot) {
    const AnyTensorView* t = lookup(spec.name);
    if (!t) {
      if (spec.missing == Missing::error)
        LAV2_THROW(load_error, "checkpoint '", file, "': tensor '", spec.name, "' is missing (expected shape ",
                   spec.shape.to_string(), ")");
      detail::bind_constant(slot, spec.shape, spec.missing == Missing::ones ? 1.0f : 0.0f, w.owned);
      return;
    }
    if (t->shape != spec.shape)
      LAV2_THROW(load_error, "checkpoint '", file, "': tensor '", spec.name, "' has shape ", t->shape.to_string(),
                 ", expected ", spec.shape.to_string());
    detail::bind_tensor(slot, *t, file, spec.name, w.owned);
  });
  return w;
}

/// \brief The table of a model with the given policies, in order.
template <class Adapter = policy::NoAdapter, class Tuning = policy::Frozen>
std::vector<TensorSpec> tensor_table(const LlamaConfig& c, const AdapterConfig& ac = {}) {
  std::vector<TensorSpec> out;
  LlamaWeights<float> w;
  for_each_tensor<Adapter, Tuning>(w, c, ac, [&](const TensorSpec& spec, auto&) { out.push_back(spec); });
  return out;
}

}  // namespace lav2::model
