// The LLaMA weight table: every tensor of Meta's consolidated.*.pth with its shape, bound by name
// from any tensor source (a .pth, safetensors, ...). One for_each_tensor() lists them; loading,
// validation, parameter counts and tests all reuse it (spec section 1.2).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "lav2/core/error.hpp"
#include "lav2/model/llama_config.hpp"
#include "lav2/tensor/tensor.hpp"

namespace lav2::model {

/// \brief One transformer block's weights. Matrices are [out, in] as PyTorch stores them.
template <class W>
struct LayerWeights {
  TensorView<const W> wq, wk, wv, wo;         // (dim, dim)
  TensorView<const W> w1, w3;                 // (hidden_dim, dim)
  TensorView<const W> w2;                     // (dim, hidden_dim)
  TensorView<const float> attention_norm;     // (dim)
  TensorView<const float> ffn_norm;           // (dim)
};

/// \brief All weights of a LLaMA model. Views point into the mapped checkpoint where the stored
/// dtype and layout allow, otherwise into converted copies kept in `owned`.
template <class W>
struct LlamaWeights {
  TensorView<const W> tok_embeddings;         // (vocab_size, dim)
  std::vector<LayerWeights<W>> layers;        // n_layers
  TensorView<const float> norm;               // (dim)
  TensorView<const W> output;                 // (vocab_size, dim), not tied to the embeddings
  std::vector<std::shared_ptr<const void>> owned;  // converted tensors and the files views point into
};

/// \brief Calls fn(name, shape, slot) for every tensor of the table, where slot is a
/// TensorView<const W>& (a matrix kept in the weight dtype) or a TensorView<const float>&
/// (a small vector converted to f32).
template <class W, class Fn>
void for_each_tensor(LlamaWeights<W>& w, const LlamaConfig& c, Fn&& fn) {
  const std::int64_t dim = c.dim, hidden = c.hidden_dim, vocab = c.vocab_size;
  fn(std::string("tok_embeddings.weight"), Shape{vocab, dim}, w.tok_embeddings);
  w.layers.resize(std::size_t(c.n_layers));
  for (int i = 0; i < c.n_layers; ++i) {
    const std::string p = "layers." + std::to_string(i) + ".";
    LayerWeights<W>& l = w.layers[std::size_t(i)];
    fn(p + "attention.wq.weight", Shape{dim, dim}, l.wq);
    fn(p + "attention.wk.weight", Shape{dim, dim}, l.wk);
    fn(p + "attention.wv.weight", Shape{dim, dim}, l.wv);
    fn(p + "attention.wo.weight", Shape{dim, dim}, l.wo);
    fn(p + "feed_forward.w1.weight", Shape{hidden, dim}, l.w1);
    fn(p + "feed_forward.w2.weight", Shape{dim, hidden}, l.w2);
    fn(p + "feed_forward.w3.weight", Shape{hidden, dim}, l.w3);
    fn(p + "attention_norm.weight", Shape{dim}, l.attention_norm);
    fn(p + "ffn_norm.weight", Shape{dim}, l.ffn_norm);
  }
  fn(std::string("norm.weight"), Shape{dim}, w.norm);
  fn(std::string("output.weight"), Shape{vocab, dim}, w.output);
}

/// \brief Looks a tensor up by name; returns nullptr when absent.
using TensorLookup = std::function<const AnyTensorView*(const std::string& name)>;

namespace detail {
/// Converts any float tensor (f32/f16/bf16, any strides) to a contiguous Tensor<T>.
template <class T>
std::shared_ptr<Tensor<T>> convert_tensor(const AnyTensorView& src, const std::string& file, const std::string& name) {
  auto out = std::make_shared<Tensor<T>>(src.shape);
  const std::int64_t n = src.numel();
  // Walk the source in C order with its strides (rank <= kMaxRank).
  std::array<std::int64_t, kMaxRank> idx{};
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
}  // namespace detail

/// \brief Binds every tensor of the table from `lookup`, checking presence and shape.
/// `file` names the checkpoint in messages. Keys the table does not list are returned in
/// `unused` (the caller decides: the base loader ignores only `rope.freqs`).
template <class W>
LlamaWeights<W> bind_llama_weights(const LlamaConfig& c, const TensorLookup& lookup, const std::string& file) {
  LlamaWeights<W> w;
  for_each_tensor(w, c, [&](const std::string& name, const Shape& shape, auto& slot) {
    const AnyTensorView* t = lookup(name);
    if (!t) LAV2_THROW(load_error, "checkpoint '", file, "': tensor '", name, "' is missing (expected shape ", shape.to_string(), ")");
    if (t->shape != shape)
      LAV2_THROW(load_error, "checkpoint '", file, "': tensor '", name, "' has shape ", t->shape.to_string(), ", expected ",
                 shape.to_string());
    detail::bind_tensor(slot, *t, file, name, w.owned);
  });
  return w;
}

/// \brief The table's names, in order (for unexpected-key checks and parameter counts).
inline std::vector<std::pair<std::string, Shape>> llama_tensor_list(const LlamaConfig& c) {
  std::vector<std::pair<std::string, Shape>> out;
  LlamaWeights<float> w;
  for_each_tensor(w, c, [&](const std::string& name, const Shape& shape, auto&) { out.emplace_back(name, shape); });
  return out;
}

}  // namespace lav2::model
