// `lav2 info`: parameter counts per group for a named preset or a real checkpoint, computed from the
// weight tables (docs/model.md).
//   lav2 info --preset 7b-bias | 7b-lora-bias | 7b-v1 | 65b-chat | 65b-paper-scale [--json]
//   lav2 info --llama-dir DIR [--adapter FILE] [--json]
#include <algorithm>
#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

#include <lav2/core/error.hpp>
#include <lav2/model/model_loader.hpp>
#include <lav2/model/param_count.hpp>
#include <lav2/model/random_llama.hpp>
#include <lav2/vision/visual_projector.hpp>

#include "command.hpp"

namespace {

using namespace lav2;
using model::Group;

struct InfoArgs {
  std::string preset, llama_dir, adapter;
  bool json = false;
};

std::int64_t projector_params(const vision::VisualProjectorConfig& v) {
  std::int64_t n = 0;
  for (const io::TensorSpec& spec : vision::projector_table(v)) n += spec.shape.numel();
  return n;
}

struct Described {
  std::string title;
  model::ParamCounts counts;
};

Described from_preset(const std::string& name) {
  using namespace model;
  model::AdapterSpec spec;
  model::LlamaConfig c;
  bool visual = false;
  if (name == "7b-bias" || name == "7b-lora-bias") {
    c = model::preset_config("7b");
    spec.kind = AdapterKind::v2;
    spec.bias = BiasSet::official;
    spec.lora = name == "7b-lora-bias";
    spec.query_len = 10, spec.query_layer = 31, spec.lora_rank = 16;
    visual = true;
  } else if (name == "7b-v1") {
    c = model::preset_config("7b");
    spec.kind = AdapterKind::v1;
    spec.query_len = 10, spec.query_layer = 30;
  } else if (name == "65b-chat" || name == "65b-paper-scale") {
    c.dim = 8192, c.n_layers = 80, c.n_heads = 64, c.vocab_size = 32000, c.multiple_of = 256;
    c.head_dim = 128, c.hidden_dim = model::ffn_hidden_dim(c.dim, c.multiple_of);
    spec.bias = BiasSet::all;
    spec.scale = name == "65b-chat" ? ScaleMode::input : ScaleMode::output;
    if (spec.scale == ScaleMode::output)  // the paper's s*(Wx+b): a table only, no released model
      return {name + ": LLaMA, bias (all 7 linears), output scales (the paper's s*(Wx+b))",
              model::count_llama_params(c, spec)};
  } else {
    LAV2_THROW(input_error, "--preset '", name,
               "' is not one of 7b-bias, 7b-lora-bias, 7b-v1, 65b-chat, 65b-paper-scale");
  }
  model::ParamCounts counts = model::count_llama_params(c, spec);
  // The official visual branch of the multimodal 7B (docs/vision.md): 768 wide, 8 blocks, mlp 3072, Q 10.
  if (visual) {
    vision::VisualProjectorConfig v = vision::projector_7b_config();
    v.dim = c.dim;
    counts[Group::visual] = projector_params(v);
  }
  return {name + ": " + spec.describe(), counts};
}

Described from_checkpoint(const InfoArgs& a) {
  const auto loaded = model::load_model(a.llama_dir, 0, a.adapter);
  const model::AdapterSpec& spec = loaded.model.spec();
  model::ParamCounts counts = model::count_llama_params(loaded.model.config(), spec);
  const auto& t = loaded.adapter.tensors;
  if (spec.takes_visual() &&
      std::any_of(t.begin(), t.end(), [](const auto& kv) { return vision::is_projector_key(kv.first); })) {
    const auto projector = vision::VisualProjector::infer_config(loaded.adapter.tensors, a.adapter);
    counts[Group::visual] = projector_params(projector);
  }
  return {spec.describe() + " (" + a.llama_dir + (a.adapter.empty() ? "" : " + " + a.adapter) + ")", counts};
}

int run_info(const InfoArgs& a) {
  if (a.preset.empty() == a.llama_dir.empty()) LAV2_THROW(input_error, "give exactly one of --preset or --llama-dir");
  if (!a.adapter.empty() && a.llama_dir.empty()) LAV2_THROW(input_error, "--adapter needs --llama-dir");
  const Described d = a.preset.empty() ? from_checkpoint(a) : from_preset(a.preset);
  const model::ParamCounts& n = d.counts;
  // The official phases' disjoint groups (docs/model.md): pre-train trains prompts, gates and the
  // visual branch; fine-tune trains biases and norms.
  std::int64_t pretrain = 0, finetune = 0;
  for (int g = 0; g < io::kGroupCount; ++g) {
    const io::OfficialPhase phase = io::official_phase(Group(g));
    if (phase == io::OfficialPhase::pretrain) pretrain += n.by_group[std::size_t(g)];
    if (phase == io::OfficialPhase::finetune) finetune += n.by_group[std::size_t(g)];
  }
  const double fraction = double(n.trainable()) / double(n.llama());
  if (a.json) {
    nlohmann::json j;
    j["model"] = d.title;
    for (int g = 0; g < int(Group::clip); ++g) j["groups"][model::group_name(Group(g))] = n.by_group[std::size_t(g)];
    j["llama_params"] = n.llama();
    j["trainable"] = n.trainable();
    j["trainable_fraction_of_llama"] = fraction;
    j["pretrain_group"] = pretrain;
    j["finetune_group"] = finetune;
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  std::printf("%s\n", d.title.c_str());
  for (int g = 0; g < int(Group::clip); ++g)
    std::printf("  %-16s %15lld%s\n", model::group_name(Group(g)), static_cast<long long>(n.by_group[std::size_t(g)]),
                g == 0 ? "  (frozen)" : "");
  std::printf("  %-16s %15lld\n", "llama (w/ norms)", static_cast<long long>(n.llama()));
  std::printf("  %-16s %15lld  = %.4f%% of LLaMA\n", "trainable", static_cast<long long>(n.trainable()),
              100.0 * fraction);
  std::printf("  %-16s %15lld  (prompts + gates + visual branch)\n", "pre-train group",
              static_cast<long long>(pretrain));
  std::printf("  %-16s %15lld  (biases + norms + scales)\n", "fine-tune group", static_cast<long long>(finetune));
  return 0;
}

const lav2::cli::CommandRegistrar kRegister{
    "info", "Parameter counts per group for a preset or a checkpoint", [](lav2::cli::Options& sub) {
      auto a = std::make_shared<InfoArgs>();
      sub.add("--preset", a->preset, "7b-bias | 7b-lora-bias | 7b-v1 | 65b-chat | 65b-paper-scale");
      sub.add("--llama-dir", a->llama_dir, "Meta LLaMA dir: params.json + consolidated.00.pth (or one *.safetensors)");
      sub.add("--adapter", a->adapter, "adapter checkpoint (.pth)");
      sub.flag("--json", a->json, "print one JSON object");
      return [a] { return run_info(*a); };
    }};

}  // namespace
