// Parameter groups as named sets of weight-table rows, derived from the tables' Group column
// (io/weight_table.hpp), never from a second list of names.
//
// The official stages (spec 3.3, LLaMA_adapter.get_trainable_params):
//   pretrain   every row whose group the official pretrain filter selects: the gates
//              (gate, new_gate), adapter_query and the visual branch (clip_proj(+norm),
//              visual_query, visual_blocks, visual_proj(+norm)). The official filter is a
//              substring test on the names; tests/train/test_param_groups.cpp checks that it
//              selects exactly these rows of the BIAS and LORA-BIAS tables.
//   finetune   the llama.* biases and RMSNorm weights (and chat65b's scales, a table the
//              multimodal filter never sees).
// LoRA is never trained officially; GroupOptions::train_lora (lav2's --train-lora) adds it to
// finetune and to language.
//
// The paper's joint training splits the same rows into two disjoint groups, each with
// its own optimiser state:
//   visual     the visual branch; under the paper's early fusion (FusionMode::paper_early) also
//              the gates of the early layers that hold only visual prompts (layers below
//              fusion_depth that are not adapter layers).
//   language   adapter_query, the other gates, the biases, scales and norms (and LoRA).
// Under the released all-adapter-layers fusion the visual query is added into the adaptation
// prompts and one gate per head scales both, so a gate cannot belong to both groups: the gates
// go to the language group, as in the paper (their prompts are the adaptation prompts). The same
// holds for any paper_early layer that holds both kinds of prompts: lav2's inference model
// (model/llama_model.hpp, set_prompts_) puts them under one softmax and one gate there.
#pragma once

#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "lav2/core/error.hpp"
#include "lav2/io/weight_table.hpp"
#include "lav2/model/adapter_spec.hpp"
#include "lav2/model/llama_config.hpp"
#include "lav2/model/llama_weights.hpp"
#include "lav2/tensor/tensor.hpp"
#include "lav2/train/adamw.hpp"
#include "lav2/vision/projector_weights.hpp"

namespace lav2::train {

/// \brief A named set of trainable rows.
enum class ParamGroup { pretrain, finetune, visual, language };

inline const char* param_group_name(ParamGroup g) {
  static constexpr const char* kNames[] = {"pretrain", "finetune", "visual", "language"};
  return kNames[int(g)];
}
/// \brief The group named `name`; throws input_error naming the choices otherwise.
inline ParamGroup parse_param_group(std::string_view name) {
  for (ParamGroup g : {ParamGroup::pretrain, ParamGroup::finetune, ParamGroup::visual, ParamGroup::language})
    if (name == param_group_name(g)) return g;
  LAV2_THROW(input_error, "parameter group '", name, "'; expected pretrain, finetune, visual or language");
}

/// \brief What decides membership beyond a row's Group: the model's fusion and layers, and
/// whether LoRA is trained.
struct GroupOptions {
  model::AdapterSpec spec;
  int n_layers = 0;
  bool train_lora = false;
};

/// \brief Every row of a V2 model under its official key: the LLaMA table with the "llama."
/// prefix (none for V1) except adapter_query.weight, a top-level module of LLaMA_adapter (the
/// loader's rule, model_loader-inl.hpp), then the projector's rows when `projector` is given.
inline std::vector<io::TensorSpec> official_rows(const model::LlamaConfig& c, const model::AdapterSpec& s,
                                                 const vision::VisualProjectorConfig* projector = nullptr) {
  std::vector<io::TensorSpec> rows = model::tensor_table(c, s);
  const std::string prefix = s.kind == model::AdapterKind::v1 ? "" : "llama.";
  for (io::TensorSpec& r : rows)
    if (r.group != io::Group::adapter_prompts) r.name = prefix + r.name;
  if (projector)
    for (io::TensorSpec& r : vision::projector_table(*projector)) rows.push_back(std::move(r));
  return rows;
}

namespace detail {
/// The layer index of a "…layers.N.…" row, or -1.
inline int row_layer(const std::string& name) {
  const std::size_t at = name.find("layers.");
  return at == std::string::npos ? -1 : std::atoi(name.c_str() + at + 7);
}
/// A gate of an early layer that holds only visual prompts (paper_early, below the adapter layers).
inline bool visual_only_gate(const io::TensorSpec& row, const GroupOptions& o) {
  if (row.group != io::Group::gates || o.spec.fusion != model::FusionMode::paper_early) return false;
  const int layer = row_layer(row.name), first_adapter = o.n_layers - o.spec.query_layer;
  return layer >= 0 && o.spec.visual_prompts(layer) && layer < first_adapter;
}
}  // namespace detail

/// \brief Whether row `row` (an official key and its table Group) is in group `g`.
inline bool in_group(ParamGroup g, const io::TensorSpec& row, const GroupOptions& o) {
  const io::OfficialPhase phase = io::official_phase(row.group);
  const bool lora = o.train_lora && row.group == io::Group::lora;
  switch (g) {
    case ParamGroup::pretrain: return phase == io::OfficialPhase::pretrain;
    case ParamGroup::finetune: return phase == io::OfficialPhase::finetune || lora;
    case ParamGroup::visual: return row.group == io::Group::visual || detail::visual_only_gate(row, o);
    case ParamGroup::language:
      return row.group == io::Group::adapter_prompts ||
             (row.group == io::Group::gates && !detail::visual_only_gate(row, o)) ||
             phase == io::OfficialPhase::finetune || lora;
  }
  return false;
}

/// \brief The rows of `rows` in group `g`, in table order.
inline std::vector<io::TensorSpec> group_rows(ParamGroup g, const std::vector<io::TensorSpec>& rows,
                                              const GroupOptions& o) {
  std::vector<io::TensorSpec> out;
  for (const io::TensorSpec& r : rows)
    if (in_group(g, r, o)) out.push_back(r);
  return out;
}

/// \brief A trainable tensor allocated from its table row: f32 value and gradient (zeros).
struct TrainableTensor {
  io::TensorSpec spec;
  Tensor<float> value, grad;
  explicit TrainableTensor(io::TensorSpec s) : spec(std::move(s)), value(spec.shape), grad(spec.shape) {}
};

/// \brief Allocates value and gradient for each of `rows` (frozen rows get none: pass only the
/// trainable ones).
inline std::vector<TrainableTensor> allocate_trainable(const std::vector<io::TensorSpec>& rows) {
  std::vector<TrainableTensor> out;
  out.reserve(rows.size());
  for (const io::TensorSpec& r : rows) out.emplace_back(r);
  return out;
}

/// \brief The optimiser's view of the tensors of `tensors` that are in group `g`, with the
/// official weight-decay rule.
inline std::vector<ParamRef> group_params(ParamGroup g, std::vector<TrainableTensor>& tensors, const GroupOptions& o) {
  std::vector<ParamRef> out;
  for (TrainableTensor& t : tensors)
    if (in_group(g, t.spec, o))
      out.push_back(ParamRef{t.spec.name, t.value.data(), t.grad.data(), t.value.numel(),
                             official_weight_decay(t.spec.name, t.spec.shape)});
  return out;
}

}  // namespace lav2::train
