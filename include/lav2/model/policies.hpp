// Compile-time policies of the LLaMA-Adapter V2 block (spec sections 2, 3, 4.2 and 11). Templates
// decide which code exists; every count and size (prompt length, adapted layers, fusion depth,
// LoRA rank) is a run-time value from the checkpoint.
//
// Concept AdapterPolicy: static constexpr bool kEnabled; static float head_gate(g, new_gate)
//   gives the factor on the prompt branch of head h: V2 tanh(g_h) * new_gate, V1 inference raw g_h.
// Concept TuningPolicy: kBias (which linears carry a bias), kScale (none / on the input
//   W(s*x)+b, chat65b / on the output s*(Wx+b), the paper), kLora (W x + b + l2(l1(x)), no alpha).
//   Features compose: LORA-BIAS is bias + LoRA. "Frozen" is the empty combination.
// Concept FusionPolicy: where the visual query [Q, dim] goes, with depth K read at run time.
//   visual_added(j, K): added to the prompts of adapter layer j (released code: every j);
//   visual_prompts(l, K): its own gated prompts in layer l (the paper's early fusion).
#pragma once

#include <cmath>
#include <string_view>

namespace lav2::policy {

// ---- AdapterPolicy ------------------------------------------------------------------------------
/// No prompts at all (base LLaMA, chat65b's released bias+scale+norm model).
struct NoAdapter {
  static constexpr bool kEnabled = false;
  static constexpr std::string_view kName = "none";
  static float head_gate(float, float) { return 0.0f; }
};
/// V2: zero-init gated prompts, gate tanh(g_h), times new_gate in LoRA checkpoints (section 2.1).
struct GatedPrompt {
  static constexpr bool kEnabled = true;
  static constexpr std::string_view kName = "v2";
  static float head_gate(float g, float new_gate) { return std::tanh(g) * new_gate; }
};
/// V1 as its inference code runs it: the raw gate, no tanh (section 2.2, discrepancy 6).
struct GatedPromptV1 {
  static constexpr bool kEnabled = true;
  static constexpr std::string_view kName = "v1";
  static float head_gate(float g, float new_gate) { return g * new_gate; }
};

// ---- TuningPolicy -------------------------------------------------------------------------------
/// The seven linears of a block, in the order lav2 lists them.
enum class LinearId { wq, wk, wv, wo, w1, w2, w3 };
inline constexpr LinearId kAllLinears[] = {LinearId::wq, LinearId::wk, LinearId::wv, LinearId::wo,
                                           LinearId::w1, LinearId::w2, LinearId::w3};
/// Which linears carry a bias: none; the official multimodal set wq, wo, w1, w2, w3 (`.bias`);
/// or all seven (chat65b's `*_bias`).
enum class BiasSet { none, official, all };
/// Scale per linear: none; on the input channels W(s*x)+b (chat65b); on the output s*(Wx+b) (paper).
enum class ScaleMode { none, input, output };

template <BiasSet B, ScaleMode S, bool L>
struct Tuning {
  static constexpr BiasSet kBias = B;
  static constexpr ScaleMode kScale = S;
  static constexpr bool kLora = L;
  static constexpr bool has_bias(LinearId id) {
    return B == BiasSet::all || (B == BiasSet::official && id != LinearId::wk && id != LinearId::wv);
  }
};
using Frozen = Tuning<BiasSet::none, ScaleMode::none, false>;
using Bias = Tuning<BiasSet::official, ScaleMode::none, false>;          // BIAS-7B
using BiasLora = Tuning<BiasSet::official, ScaleMode::none, true>;       // LORA-BIAS-7B
using BiasScaleIn = Tuning<BiasSet::all, ScaleMode::input, false>;       // chat65b code
using BiasScaleOut = Tuning<BiasSet::all, ScaleMode::output, false>;     // the paper's s*(Wx+b)

// ---- FusionPolicy -------------------------------------------------------------------------------
enum class FusionMode { all_adapter_layers, first_k, paper_early };
/// The released code: the visual query is added to the prompts of every adapter layer.
struct AllAdapterLayers {
  static constexpr FusionMode kMode = FusionMode::all_adapter_layers;
  static bool visual_added(int /*adapter_index*/, int /*k*/) { return true; }
  static bool visual_prompts(int /*layer*/, int /*k*/) { return false; }
};
/// Only the first K adapter layers receive it (added to their prompts).
struct FirstK {
  static constexpr FusionMode kMode = FusionMode::first_k;
  static bool visual_added(int adapter_index, int k) { return adapter_index < k; }
  static bool visual_prompts(int /*layer*/, int /*k*/) { return false; }
};
/// The paper: the visual tokens are prompts of their own in layers 0..K-1; the adaptation
/// prompts stay in the last layers, without visual content.
struct PaperEarly {
  static constexpr FusionMode kMode = FusionMode::paper_early;
  static bool visual_added(int /*adapter_index*/, int /*k*/) { return false; }
  static bool visual_prompts(int layer, int k) { return layer < k; }
};

inline std::string_view fusion_mode_name(FusionMode m) {
  switch (m) {
    case FusionMode::all_adapter_layers: return "all_adapter_layers";
    case FusionMode::first_k: return "first_k";
    case FusionMode::paper_early: return "paper_early";
  }
  return "?";
}

}  // namespace lav2::policy
