// Parameter counts per group, computed from the weight tables (spec section 10), never by hand.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "lav2/model/llama_weights.hpp"
#include "lav2/model/model_variants.hpp"

namespace lav2::model {

/// \brief Parameters per Group (base, adapter_prompts, gates, biases, norms, scales, lora, visual).
struct ParamCounts {
  std::array<std::int64_t, 8> by_group{};
  std::int64_t& operator[](Group g) { return by_group[std::size_t(g)]; }
  std::int64_t operator[](Group g) const { return by_group[std::size_t(g)]; }
  /// Everything but the frozen base matrices: what the adapter adds or tunes.
  std::int64_t trainable() const {
    std::int64_t n = 0;
    for (std::size_t i = 1; i < by_group.size(); ++i) n += by_group[i];
    return n;
  }
  /// The LLaMA model itself: frozen matrices plus its norm weights (7B: 6,738,415,616).
  std::int64_t llama() const { return (*this)[Group::base] + (*this)[Group::norms]; }
};

inline const char* group_name(Group g) {
  static constexpr const char* kNames[] = {"base", "adapter_prompts", "gates", "biases", "norms", "scales", "lora", "visual"};
  return kNames[int(g)];
}

/// \brief Counts the table of a model with policies Adapter / Tuning.
template <class Adapter, class Tuning>
ParamCounts count_table(const LlamaConfig& c, const AdapterConfig& ac = {}) {
  ParamCounts out;
  for (const TensorSpec& t : tensor_table<Adapter, Tuning>(c, ac)) out[t.group] += t.shape.numel();
  return out;
}

/// \brief Counts the LLaMA-side table of the instantiation that `spec` selects.
inline ParamCounts count_llama_params(const LlamaConfig& c, const AdapterSpec& spec) {
  return visit_variant(spec, DType::f32, "(preset)", [&](auto tag) {
    using Model = typename decltype(tag)::type;
    return count_table<typename Model::AdapterPolicy, typename Model::TuningPolicy>(c, spec.sizes);
  });
}

}  // namespace lav2::model
