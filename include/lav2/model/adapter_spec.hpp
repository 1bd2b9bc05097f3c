// What a checkpoint asks of the model, as run-time values (docs/model.md, sections 1 and 3-5): the
// adapter kind, which linears are tuned and how, where the visual query goes, and the sizes.
//
// None of these is a template parameter. Each is read once per linear or per layer, next to a
// matrix product of millions of multiply-adds, so a branch costs nothing measurable; making them
// types multiplied the instantiations (23 of them) and the compile time, for no speed.
// check_supported() is the one closed switch that maps a checkpoint to a supported model and
// refuses the rest at load.
#pragma once

#include <cmath>
#include <string>
#include <string_view>

#include "lav2/core/error.hpp"

namespace lav2::model {

/// \brief The prompt mechanism: none (base LLaMA, chat65b's bias+scale+norm model); V2's
/// zero-init gated prompts with tanh(gate) (x new_gate in LoRA checkpoints); V1 as its inference
/// code runs it, with the raw gate (its training code used tanh).
enum class AdapterKind { none, v2, v1 };
/// \brief Which linears carry a bias: none; the official multimodal set wq, wo, w1, w2, w3
/// (`.bias`); or all seven (chat65b's `*_bias`).
enum class BiasSet { none, official, all };
/// \brief Scale per linear: none; on the input channels W(s*x)+b (chat65b); on the output
/// s*(Wx+b) (the paper).
enum class ScaleMode { none, input, output };
/// \brief Where the visual query [Q, dim] goes: added to the prompts of every adapter layer (the
/// released code); added only to the first K adapter layers; or (the paper) as prompts of its own
/// in layers 0..K-1, with the adaptation prompts left without visual content.
enum class FusionMode { all_adapter_layers, first_k, paper_early };

/// \brief The seven linears of a block, in the order lav2 lists them.
enum class LinearId { wq, wk, wv, wo, w1, w2, w3 };
inline constexpr LinearId kAllLinears[] = {LinearId::wq, LinearId::wk, LinearId::wv, LinearId::wo,
                                           LinearId::w1, LinearId::w2, LinearId::w3};

inline std::string_view fusion_mode_name(FusionMode m) {
  switch (m) {
    case FusionMode::all_adapter_layers: return "all_adapter_layers";
    case FusionMode::first_k: return "first_k";
    case FusionMode::paper_early: return "paper_early";
  }
  return "?";
}

/// \brief A checkpoint's variant and sizes. Sizes come from the tensors' shapes (see
/// model_loader.hpp); a config value may only confirm them.
struct AdapterSpec {
  AdapterKind kind = AdapterKind::none;
  BiasSet bias = BiasSet::none;
  ScaleMode scale = ScaleMode::none;
  bool lora = false;
  FusionMode fusion = FusionMode::all_adapter_layers;
  int query_len = 0;     ///< prompts per adapter layer (official 10)
  int query_layer = 0;   ///< adapter layers, the last ones (official 31 of 32; V1 30)
  int lora_rank = 0;     ///< LoRA rank r (official 16)
  int fusion_depth = 0;  ///< K for first_k / paper_early

  bool has_prompts() const { return kind != AdapterKind::none; }
  /// True when the model takes a visual query (V2); such a request never runs without one.
  bool takes_visual() const { return kind == AdapterKind::v2; }
  bool has_bias(LinearId id) const {
    return bias == BiasSet::all || (bias == BiasSet::official && id != LinearId::wk && id != LinearId::wv);
  }
  /// The factor on the prompt branch of a head: V2 tanh(g) * new_gate, V1 the raw g.
  float head_gate(float g, float new_gate) const {
    return kind == AdapterKind::v1 ? g * new_gate : std::tanh(g) * new_gate;
  }
  /// Adapter layer j (0 = the first adapted layer) has the visual query added to its prompts.
  bool visual_added(int j) const {
    return fusion == FusionMode::all_adapter_layers || (fusion == FusionMode::first_k && j < fusion_depth);
  }
  /// Layer l holds the visual tokens as prompts of their own (the paper's early fusion).
  bool visual_prompts(int layer) const { return fusion == FusionMode::paper_early && layer < fusion_depth; }

  std::string describe() const {
    std::string s = kind == AdapterKind::v2   ? "LLaMA-Adapter V2"
                    : kind == AdapterKind::v1 ? "LLaMA-Adapter V1"
                                              : "LLaMA";
    if (bias == BiasSet::official) s += ", bias (wq wo w1 w2 w3)";
    if (bias == BiasSet::all) s += ", bias (all 7 linears)";
    if (scale == ScaleMode::input) s += ", input scales";
    if (scale == ScaleMode::output) s += ", output scales";
    if (lora) s += ", LoRA r=" + std::to_string(lora_rank);
    if (has_prompts())
      s += ", " + std::to_string(query_layer) + " adapter layers x " + std::to_string(query_len) + " prompts";
    if (takes_visual()) s += ", fusion " + std::string(fusion_mode_name(fusion));
    return s;
  }
};

/// \brief The closed list of supported combinations; anything else is a load_error naming `file`:
///   base LLaMA; chat65b (bias on all 7 linears + input scales, no prompts); V1 (prompts only);
///   V2 with the official biases, optionally LoRA, any fusion mode; V2 with all biases and
///   output scales (the paper's s*(Wx+b)), fusion all_adapter_layers or paper_early.
inline void check_supported(const AdapterSpec& s, const std::string& file) {
  const bool base = s.kind == AdapterKind::none && s.bias == BiasSet::none && s.scale == ScaleMode::none && !s.lora;
  const bool chat65b = s.kind == AdapterKind::none && s.bias == BiasSet::all && s.scale == ScaleMode::input && !s.lora;
  const bool v1 = s.kind == AdapterKind::v1 && s.bias == BiasSet::none && s.scale == ScaleMode::none && !s.lora &&
                  s.fusion == FusionMode::all_adapter_layers;
  const bool v2 = s.kind == AdapterKind::v2 && s.bias == BiasSet::official && s.scale == ScaleMode::none;
  const bool v2_paper_scale = s.kind == AdapterKind::v2 && s.bias == BiasSet::all && s.scale == ScaleMode::output &&
                              !s.lora && s.fusion != FusionMode::first_k;
  if (base || chat65b || v1 || v2 || v2_paper_scale) return;
  LAV2_THROW(load_error, "checkpoint '", file, "': unsupported combination (", s.describe(),
             "); supported: base LLaMA; V2 with bias or bias+LoRA and fusion all_adapter_layers/first_k/paper_early; "
             "V2 with output scales (all_adapter_layers/paper_early); chat65b bias+input scales; V1");
}

}  // namespace lav2::model
