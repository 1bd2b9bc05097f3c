// The closed list of supported model instantiations, and the one switch that maps a checkpoint's
// description to one of them (STYLE.md section 2). Anything else is rejected at load.
#pragma once

#include <string>
#include <variant>

#include "lav2/core/error.hpp"
#include "lav2/model/llama_model.hpp"
#include "lav2/model/policies.hpp"

namespace lav2::model {

/// \brief A checkpoint's adapter variant, as read from its layout and config.
struct AdapterSpec {
  enum class Kind { none, v2, v1 } kind = Kind::none;  ///< none: base LLaMA or chat65b-style tuning
  policy::BiasSet bias = policy::BiasSet::none;
  policy::ScaleMode scale = policy::ScaleMode::none;
  bool lora = false;
  policy::FusionMode fusion = policy::FusionMode::all_adapter_layers;
  AdapterConfig sizes;
  std::string describe() const {
    std::string s = kind == Kind::v2 ? "LLaMA-Adapter V2" : kind == Kind::v1 ? "LLaMA-Adapter V1" : "LLaMA";
    if (bias == policy::BiasSet::official) s += ", bias (wq wo w1 w2 w3)";
    if (bias == policy::BiasSet::all) s += ", bias (all 7 linears)";
    if (scale == policy::ScaleMode::input) s += ", input scales";
    if (scale == policy::ScaleMode::output) s += ", output scales";
    if (lora) s += ", LoRA r=" + std::to_string(sizes.lora_rank);
    if (kind != Kind::none) s += ", fusion " + std::string(policy::fusion_mode_name(fusion));
    return s;
  }
};

/// \brief Carries a type through a value: the switch calls fn(type_tag<Model>{}).
template <class T>
struct type_tag {
  using type = T;
};

namespace variants {
using namespace policy;
template <class W> using Base = LlamaModel<W>;
template <class W, class F> using V2Bias = LlamaModel<W, GatedPrompt, Bias, F>;
template <class W, class F> using V2BiasLora = LlamaModel<W, GatedPrompt, BiasLora, F>;
template <class W, class F> using V2BiasScaleOut = LlamaModel<W, GatedPrompt, BiasScaleOut, F>;
template <class W> using Chat65bTuning = LlamaModel<W, NoAdapter, BiasScaleIn>;
template <class W> using V1 = LlamaModel<W, GatedPromptV1, Frozen>;
}  // namespace variants

/// \brief Every supported instantiation. Base LLaMA in f16/bf16/f32; adapter models over f16
/// (Meta's release) or f32 base weights.
using AnyModel = std::variant<
    variants::Base<f16_t>, variants::Base<bf16_t>, variants::Base<float>,
    variants::V2Bias<f16_t, policy::AllAdapterLayers>, variants::V2Bias<f16_t, policy::FirstK>,
    variants::V2Bias<f16_t, policy::PaperEarly>, variants::V2BiasLora<f16_t, policy::AllAdapterLayers>,
    variants::V2BiasLora<f16_t, policy::FirstK>, variants::V2BiasLora<f16_t, policy::PaperEarly>,
    variants::V2BiasScaleOut<f16_t, policy::AllAdapterLayers>, variants::V2BiasScaleOut<f16_t, policy::PaperEarly>,
    variants::Chat65bTuning<f16_t>, variants::V1<f16_t>,
    variants::V2Bias<float, policy::AllAdapterLayers>, variants::V2Bias<float, policy::FirstK>,
    variants::V2Bias<float, policy::PaperEarly>, variants::V2BiasLora<float, policy::AllAdapterLayers>,
    variants::V2BiasLora<float, policy::FirstK>, variants::V2BiasLora<float, policy::PaperEarly>,
    variants::V2BiasScaleOut<float, policy::AllAdapterLayers>, variants::V2BiasScaleOut<float, policy::PaperEarly>,
    variants::Chat65bTuning<float>, variants::V1<float>>;

/// \brief The closed switch: calls fn(type_tag<Model>) for the instantiation that serves `spec`
/// over weights of dtype `dtype`, or throws load_error naming `file` and what is unsupported.
template <class Fn>
decltype(auto) visit_variant(const AdapterSpec& spec, DType dtype, const std::string& file, Fn&& fn) {
  using namespace policy;
  using K = AdapterSpec::Kind;
  auto unsupported = [&]() -> void {
    LAV2_THROW(load_error, "checkpoint '", file, "': unsupported combination (", spec.describe(), ") over ",
               dtype_name(dtype), " weights; supported: base LLaMA (f16/bf16/f32); V2 with bias or bias+LoRA and "
               "fusion all_adapter_layers/first_k/paper_early; V2 with output scales (all_adapter_layers/paper_early); "
               "chat65b bias+input scales; V1 (adapter models over f16 or f32 weights)");
  };
  auto with_fusion = [&](auto w_tag, auto make) -> decltype(auto) {
    switch (spec.fusion) {
      case FusionMode::all_adapter_layers: return make(w_tag, AllAdapterLayers{});
      case FusionMode::first_k: return make(w_tag, FirstK{});
      case FusionMode::paper_early: return make(w_tag, PaperEarly{});
    }
    return make(w_tag, AllAdapterLayers{});
  };
  auto over_weights = [&](auto w_tag) -> decltype(auto) {
    using W = decltype(w_tag);
    if (spec.kind == K::none && spec.bias == BiasSet::none && spec.scale == ScaleMode::none && !spec.lora)
      return fn(type_tag<variants::Base<W>>{});
    if constexpr (std::is_same_v<W, bf16_t>) {
      unsupported();
    } else {
      if (spec.kind == K::none && spec.bias == BiasSet::all && spec.scale == ScaleMode::input && !spec.lora)
        return fn(type_tag<variants::Chat65bTuning<W>>{});
      if (spec.kind == K::v1 && spec.bias == BiasSet::none && spec.scale == ScaleMode::none && !spec.lora &&
          spec.fusion == FusionMode::all_adapter_layers)
        return fn(type_tag<variants::V1<W>>{});
      if (spec.kind == K::v2 && spec.bias == BiasSet::official && spec.scale == ScaleMode::none)
        return with_fusion(W{}, [&](auto, auto f) -> decltype(auto) {
          using F = decltype(f);
          if (spec.lora) return fn(type_tag<variants::V2BiasLora<W, F>>{});
          return fn(type_tag<variants::V2Bias<W, F>>{});
        });
      if (spec.kind == K::v2 && spec.bias == BiasSet::all && spec.scale == ScaleMode::output && !spec.lora) {
        if (spec.fusion == FusionMode::all_adapter_layers)
          return fn(type_tag<variants::V2BiasScaleOut<W, AllAdapterLayers>>{});
        if (spec.fusion == FusionMode::paper_early)
          return fn(type_tag<variants::V2BiasScaleOut<W, PaperEarly>>{});
      }
    }
    unsupported();
    return fn(type_tag<variants::Base<W>>{});  // not reached
  };
  switch (dtype) {
    case DType::f16: return over_weights(f16_t{});
    case DType::bf16: return over_weights(bf16_t{});
    case DType::f32: return over_weights(float{});
    default: break;
  }
  LAV2_THROW(load_error, "checkpoint '", file, "': weights of dtype ", dtype_name(dtype), " are not supported (f16, bf16, f32)");
}

}  // namespace lav2::model
