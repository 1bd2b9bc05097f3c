// One row format for every weight table (LLaMA, the adapter, the visual projector, the CLIP
// tower): the checkpoint name, the expected shape, what a missing tensor becomes, and the
// parameter group, which carries the official trainable sets (docs/model.md). Loading,
// validation, parameter counts, `lav2 info` and training all read these rows; no list of names
// is typed twice.
#pragma once

#include <string>
#include <vector>

#include "lav2/tensor/shape.hpp"

namespace lav2::io {

/// \brief What a tensor that the sources lack becomes, as the official load(strict=False)
/// leaves it: an error, zeros (biases, gates, LoRA: no effect) or ones (scales, new_gate).
enum class Missing { error, zeros, ones };

/// \brief Which parameter group a tensor belongs to.
enum class Group {
  base,             ///< frozen LLaMA matrices and embeddings
  adapter_prompts,  ///< adapter_query.weight
  gates,            ///< attention.gate, attention.new_gate
  biases,           ///< the tuned linears' biases
  norms,            ///< RMSNorm weights (LLaMA's, tuned in finetune)
  scales,           ///< the tuned linears' scales
  lora,             ///< LoRA l1 / l2
  visual,           ///< the adapter's visual branch: clip_proj(+norm), visual_query, visual_blocks, visual_proj(+norm)
  clip,             ///< the frozen CLIP vision tower
};
inline constexpr int kGroupCount = 9;

inline const char* group_name(Group g) {
  static constexpr const char* kNames[] = {"base", "adapter_prompts", "gates", "biases", "norms", "scales",
                                           "lora", "visual",          "clip"};
  return kNames[int(g)];
}

/// \brief The official training stage that updates a group (get_trainable_params, spec 3.3):
/// `pretrain` takes every name containing gate, clip_proj, clip_proj_norm, visual_query,
/// visual_blocks, visual_proj, visual_proj_norm or adapter_query; `finetune` takes the llama.*
/// names containing norm or bias (chat65b also tunes its scales there). LoRA is never selected
/// by the official filters; the base and CLIP are frozen.
enum class OfficialPhase { frozen, pretrain, finetune };

inline OfficialPhase official_phase(Group g) {
  switch (g) {
    case Group::adapter_prompts:
    case Group::gates:
    case Group::visual: return OfficialPhase::pretrain;
    case Group::biases:
    case Group::norms:
    case Group::scales: return OfficialPhase::finetune;
    case Group::base:
    case Group::lora:
    case Group::clip: return OfficialPhase::frozen;
  }
  return OfficialPhase::frozen;
}

/// \brief One row of a weight table.
struct TensorSpec {
  std::string name;  ///< the key in the checkpoint, relative to its table's prefix
  Shape shape;
  Missing missing = Missing::error;
  Group group = Group::base;
};

/// \brief The rows of a weights struct's table, in order: calls its for_each_tensor(w, args...,
/// fn) (found by argument-dependent lookup in the struct's namespace) on a scratch struct.
template <class Weights, class... Args>
std::vector<TensorSpec> table_rows(const Args&... args) {
  std::vector<TensorSpec> out;
  Weights w;
  for_each_tensor(w, args..., [&](const TensorSpec& spec, auto&) { out.push_back(spec); });
  return out;
}

}  // namespace lav2::io
