// The model a training phase starts from, loaded as the official code builds it (spec 3.1, 5.1, 8).
//
// The official LLaMA_adapter constructor sets w_bias = (phase == "finetune"): the pretrain-phase
// model has no LLaMA biases at all, so the bias tensors of a starting checkpoint are not loaded
// there. lav2 keeps the table's bias slots (the adapter's spec is unchanged) and leaves them at
// their initial value, 0, which computes what a linear without a bias computes; the keys left out
// are returned so that the caller can say so (the CLI prints them on stderr; the library prints
// nothing). finetune and joint load every tensor, as officially (finetune loads the pretrain
// checkpoint with strict=False).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "lav2/core/error.hpp"
#include "lav2/model/model_loader.hpp"

namespace lav2::train {

/// \brief The training phases of `lav2 train --phase`.
enum class Phase { pretrain, finetune, joint };

inline const char* phase_name(Phase p) {
  static constexpr const char* kNames[] = {"pretrain", "finetune", "joint"};
  return kNames[int(p)];
}
/// \brief The phase named `name`; throws input_error naming the choices otherwise.
inline Phase parse_phase(std::string_view name) {
  for (Phase p : {Phase::pretrain, Phase::finetune, Phase::joint})
    if (name == phase_name(p)) return p;
  LAV2_THROW(input_error, "phase '", name, "'; expected pretrain, finetune or joint");
}

/// \brief Whether `key` (a checkpoint key) is a LLaMA bias, which the official pretrain-phase
/// model does not have: "llama.<...>.bias" (the multimodal nn.Linear biases) or chat65b's
/// "llama.<...>_bias".
inline bool is_llama_bias(std::string_view key) {
  auto ends = [&](std::string_view s) { return key.size() >= s.size() && key.substr(key.size() - s.size()) == s; };
  return key.substr(0, 6) == "llama." && (ends(".bias") || ends("_bias"));
}

/// \brief Removes what the official model of `phase` does not load from `adapter` and returns
/// the keys removed, sorted (pretrain: the LLaMA biases; otherwise none).
inline std::vector<std::string> drop_unloaded_tensors(model::AdapterFile& adapter, Phase phase) {
  std::vector<std::string> dropped;
  if (phase != Phase::pretrain) return dropped;
  for (auto it = adapter.tensors.begin(); it != adapter.tensors.end();) {
    if (is_llama_bias(it->first)) {
      dropped.push_back(it->first);
      it = adapter.tensors.erase(it);
    } else {
      ++it;
    }
  }
  return dropped;
}

/// \brief A model loaded for a phase, and the checkpoint keys it did not load.
struct PhaseModel {
  model::LoadedModel loaded;
  std::vector<std::string> not_loaded;
};

/// \brief Loads `adapter_path` over `base` as the official model of `phase` builds it.
inline PhaseModel load_for_phase(const std::shared_ptr<const model::LlamaDir>& base, const std::string& adapter_path,
                                 Phase phase) {
  if (adapter_path.empty()) LAV2_THROW(input_error, "training needs an adapter checkpoint to start from");
  model::AdapterFile adapter = model::open_adapter(adapter_path, base->config);
  std::vector<std::string> not_loaded = drop_unloaded_tensors(adapter, phase);
  model::LlamaModel m = model::build_model(base, &adapter);
  return PhaseModel{model::LoadedModel{base, std::move(m), std::move(adapter)}, std::move(not_loaded)};
}

}  // namespace lav2::train
