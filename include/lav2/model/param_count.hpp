// Parameter counts per group, computed from the weight tables (docs/model.md, section 9), never by hand.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "lav2/io/weight_table.hpp"
#include "lav2/model/llama_weights.hpp"

namespace lav2::model {

/// \brief Parameters per io::Group.
struct ParamCounts {
  std::array<std::int64_t, io::kGroupCount> by_group{};
  std::int64_t& operator[](Group g) { return by_group[std::size_t(g)]; }
  std::int64_t operator[](Group g) const { return by_group[std::size_t(g)]; }
  /// Everything but the frozen matrices (base LLaMA, CLIP): what the adapter adds or tunes.
  std::int64_t trainable() const {
    std::int64_t n = 0;
    for (std::size_t i = 0; i < by_group.size(); ++i)
      if (Group(i) != Group::base && Group(i) != Group::clip) n += by_group[i];
    return n;
  }
  /// The LLaMA model itself: frozen matrices plus its norm weights (7B: 6,738,415,616).
  std::int64_t llama() const { return (*this)[Group::base] + (*this)[Group::norms]; }
  void add(const std::vector<TensorSpec>& table) {
    for (const TensorSpec& t : table) (*this)[t.group] += t.shape.numel();
  }
};

using io::group_name;

/// \brief Counts the LLaMA-side table of the model `spec` describes.
inline ParamCounts count_llama_params(const LlamaConfig& c, const AdapterSpec& spec) {
  ParamCounts out;
  out.add(tensor_table(c, spec));
  return out;
}

}  // namespace lav2::model
