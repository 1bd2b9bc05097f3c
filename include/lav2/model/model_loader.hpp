// Loads a model: Meta's LLaMA directory, optionally with an adapter checkpoint on top (spec 5.1-5.2).
//
// Adapter checkpoint layouts (read from data.pkl, never guessed from the file name):
//   V2 (official, and lav2's own): {'model': {name: tensor}, 'config': {...}}. LLaMA-side names
//     carry the prefix 'llama.' ('llama.layers.3.attention.wq.bias'); 'adapter_query.weight' and
//     the visual branch ('clip_proj.*', 'visual_query.weight', 'visual_blocks.*', 'visual_proj*')
//     have none. config: official keys w_bias (ignored, as officially: the finetune-phase model
//     always has biases), w_lora, lora_rank; lav2's keys adapter (v2|v1|none), bias_set
//     (official|all), scale_mode (none|input|output), fusion_mode (all_adapter_layers|first_k|
//     paper_early), fusion_depth, query_len, query_layer. A missing config means the official defaults.
//   V1: a plain dict {'adapter_query.weight', 'layers.{i}.attention.gate'}, no prefix, no config.
// As the official load(strict=False): adapter tensors override the base ones; missing optional
// tensors keep their initial values (biases, gates, LoRA 0; scales, new_gate 1); an unexpected
// key is an error that names it.
#pragma once

#include <memory>
#include <set>
#include <string>

#include "lav2/core/error.hpp"
#include "lav2/io/torch_checkpoint.hpp"
#include "lav2/model/llama_loader.hpp"
#include "lav2/model/model_variants.hpp"

namespace lav2::model {

/// \brief A loaded model and the files its views point into.
struct LoadedModel {
  AnyModel model;
  AdapterSpec spec;
  std::string llama_checkpoint, adapter_checkpoint;
  io::TensorMap adapter_tensors;  ///< the adapter's tensors (the visual branch reads its own from here)
  std::shared_ptr<const void> adapter_keep_alive;
};

/// \brief True for the adapter keys that belong to the visual branch (spec 4.2).
inline bool is_visual_branch_key(const std::string& k) {
  for (const char* p : {"clip_proj.", "clip_proj_norm.", "visual_query.", "visual_blocks.", "visual_proj.", "visual_proj_norm."})
    if (k.rfind(p, 0) == 0) return true;
  return false;
}

namespace detail {
inline int config_int(const io::Value* cfg, const char* key, int fallback, int lo, int hi, const std::string& file) {
  const io::Value* v = cfg ? cfg->find(key) : nullptr;
  if (!v) return fallback;
  if (!v->is_int()) LAV2_THROW(load_error, "checkpoint '", file, "': config '", key, "' must be an int");
  if (v->as_int() < lo || v->as_int() > hi)
    LAV2_THROW(load_error, "checkpoint '", file, "': config '", key, "' is ", v->as_int(), ", expected ", lo, "..", hi);
  return int(v->as_int());
}
inline bool config_bool(const io::Value* cfg, const char* key, bool fallback, const std::string& file) {
  const io::Value* v = cfg ? cfg->find(key) : nullptr;
  if (!v) return fallback;
  if (v->is_bool()) return v->as_bool();
  if (v->is_int()) return v->as_int() != 0;
  LAV2_THROW(load_error, "checkpoint '", file, "': config '", key, "' must be a bool");
}
inline std::string config_str(const io::Value* cfg, const char* key, const std::string& fallback,
                              std::initializer_list<const char*> allowed, const std::string& file) {
  const io::Value* v = cfg ? cfg->find(key) : nullptr;
  if (!v) return fallback;
  if (!v->is_str()) LAV2_THROW(load_error, "checkpoint '", file, "': config '", key, "' must be a string");
  for (const char* a : allowed)
    if (v->as_str() == a) return v->as_str();
  std::string list;
  for (const char* a : allowed) list += std::string(list.empty() ? "" : ", ") + a;
  LAV2_THROW(load_error, "checkpoint '", file, "': config '", key, "' is '", v->as_str(), "', expected one of ", list);
}
}  // namespace detail

/// \brief Reads an adapter checkpoint's variant and sizes from its layout, config and tensors.
/// Fills `tensors` with the dict whose keys the weight table binds.
inline AdapterSpec read_adapter_spec(const io::TorchCheckpoint& ckpt, const LlamaConfig& c, io::TensorMap& tensors) {
  using namespace policy;
  const std::string& file = ckpt.path();
  const io::Value& root = ckpt.root();
  AdapterSpec s;
  if (const io::Value* m = root.find("model"); m && m->is_dict()) {
    tensors = ckpt.tensors("model");
    const io::Value* cfg = root.find("config");
    if (cfg && !cfg->is_dict()) LAV2_THROW(load_error, "checkpoint '", file, "': 'config' must be a dict");
    const std::string kind = detail::config_str(cfg, "adapter", "v2", {"v2", "v1", "none"}, file);
    s.kind = kind == "v2" ? AdapterSpec::Kind::v2 : kind == "v1" ? AdapterSpec::Kind::v1 : AdapterSpec::Kind::none;
    const std::string bias = detail::config_str(cfg, "bias_set", kind == "v1" ? "none" : "official", {"none", "official", "all"}, file);
    s.bias = bias == "official" ? BiasSet::official : bias == "all" ? BiasSet::all : BiasSet::none;
    const std::string scale = detail::config_str(cfg, "scale_mode", "none", {"none", "input", "output"}, file);
    s.scale = scale == "input" ? ScaleMode::input : scale == "output" ? ScaleMode::output : ScaleMode::none;
    s.lora = detail::config_bool(cfg, "w_lora", false, file);
    s.sizes.lora_rank = detail::config_int(cfg, "lora_rank", 16, 1, 1 << 16, file);
    const std::string fusion = detail::config_str(cfg, "fusion_mode", "all_adapter_layers",
                                                  {"all_adapter_layers", "first_k", "paper_early"}, file);
    s.fusion = fusion == "first_k" ? FusionMode::first_k : fusion == "paper_early" ? FusionMode::paper_early
                                                                                     : FusionMode::all_adapter_layers;
    s.sizes.fusion_depth = detail::config_int(cfg, "fusion_depth", 0, 0, 1 << 16, file);
    s.sizes.query_layer = detail::config_int(cfg, "query_layer", kind == "v1" ? c.n_layers - 2 : c.n_layers - 1, 0, c.n_layers, file);
    s.sizes.query_len = detail::config_int(cfg, "query_len", 10, 1, 1 << 16, file);
  } else if (root.find("adapter_query.weight")) {
    tensors = ckpt.tensors();
    s.kind = AdapterSpec::Kind::v1;
    s.sizes.query_layer = c.n_layers - 2;  // V1: the last 30 of 32 layers
    const auto it = tensors.find("adapter_query.weight");
    if (it == tensors.end())
      LAV2_THROW(load_error, "checkpoint '", file, "': 'adapter_query.weight' is not a tensor");
    const AnyTensorView& a = it->second;
    if (a.shape.rank != 2 || s.sizes.query_layer <= 0 || a.shape[0] % s.sizes.query_layer != 0)
      LAV2_THROW(load_error, "checkpoint '", file, "': tensor 'adapter_query.weight' has shape ", a.shape.to_string(),
                 ", expected (query_layer * query_len, ", c.dim, ") with query_layer ", s.sizes.query_layer);
    s.sizes.query_len = int(a.shape[0] / s.sizes.query_layer);
  } else {
    LAV2_THROW(load_error, "checkpoint '", file, "': not an adapter checkpoint: expected {'model': ..., 'config': ...} "
               "(LLaMA-Adapter V2) or a dict with 'adapter_query.weight' (V1)");
  }
  if (s.kind != AdapterSpec::Kind::none && s.sizes.query_layer < 1)
    LAV2_THROW(load_error, "checkpoint '", file, "': config 'query_layer' is 0, but the adapter needs at least one layer");
  if (s.fusion == FusionMode::first_k && (s.sizes.fusion_depth < 1 || s.sizes.fusion_depth > s.sizes.query_layer))
    LAV2_THROW(load_error, "checkpoint '", file, "': config 'fusion_depth' is ", s.sizes.fusion_depth,
               ", but first_k needs 1..", s.sizes.query_layer, " (the adapter layers this model holds)");
  if (s.fusion == FusionMode::paper_early && (s.sizes.fusion_depth < 1 || s.sizes.fusion_depth > c.n_layers))
    LAV2_THROW(load_error, "checkpoint '", file, "': config 'fusion_depth' is ", s.sizes.fusion_depth,
               ", but paper_early needs 1..", c.n_layers, " (the model's layers)");
  return s;
}

/// \brief Builds the model that `spec` describes from the opened base directory and the adapter's
/// tensors (empty for base LLaMA), checking every key. `adapter_file` names the adapter in messages.
/// The returned model's views point into `base` and `adapter_tensors`' storage: keep them alive
/// (load_model does).
inline AnyModel build_model(const LlamaDir& base, const AdapterSpec& spec, const io::TensorMap& adapter_tensors,
                            const std::string& adapter_file) {
  const LlamaConfig& c = base.config;
  const bool has_adapter = !adapter_file.empty();
  const std::string prefix = spec.kind == AdapterSpec::Kind::v1 ? "" : "llama.";
  const std::string file = has_adapter ? base.checkpoint_path + "' + '" + adapter_file : base.checkpoint_path;
  // Adapter tensors override base ones; remember which adapter keys the table consumed.
  std::set<std::string> used;
  const TensorLookup lookup = [&](const std::string& name) -> const AnyTensorView* {
    if (has_adapter) {
      const std::string key = name == "adapter_query.weight" ? name : prefix + name;
      if (auto it = adapter_tensors.find(key); it != adapter_tensors.end()) {
        used.insert(key);
        return &it->second;
      }
    }
    auto it = base.tensors.find(name);
    return it == base.tensors.end() ? nullptr : &it->second;
  };
  const auto wq = base.tensors.find("layers.0.attention.wq.weight");
  if (wq == base.tensors.end())
    LAV2_THROW(load_error, "checkpoint '", base.checkpoint_path, "': tensor 'layers.0.attention.wq.weight' is missing");
  const DType dtype = wq->second.dtype;
  std::set<std::string> table;
  AnyModel model = visit_variant(spec, dtype, file, [&](auto tag) -> AnyModel {
    using Model = typename decltype(tag)::type;
    using W = std::remove_const_t<std::remove_pointer_t<decltype(std::declval<Model>().weights().output.data())>>;
    for (auto& entry : tensor_table<typename Model::AdapterPolicy, typename Model::TuningPolicy>(c, spec.sizes))
      table.insert(entry.name);
    LlamaWeights<W> w = bind_llama_weights<W, typename Model::AdapterPolicy, typename Model::TuningPolicy>(
        c, lookup, file, spec.sizes);
    w.owned.push_back(base.checkpoint->keep_alive());
    return AnyModel(std::in_place_type<Model>, c, std::move(w), spec.sizes);
  });
  // Base keys outside the table: rope.freqs is ignored as officially; anything else is a wrong file.
  for (const auto& [name, view] : base.tensors)
    if (name != "rope.freqs" && !table.count(name))
      LAV2_THROW(load_error, "checkpoint '", base.checkpoint_path, "': unexpected tensor '", name, "' ", view.shape.to_string());
  for (const auto& [name, view] : adapter_tensors)
    if (!used.count(name) && !is_visual_branch_key(name))
      LAV2_THROW(load_error, "checkpoint '", adapter_file, "': unexpected tensor '", name, "' ", view.shape.to_string(),
                 " for ", spec.describe());
  return model;
}

/// \brief Loads Meta's LLaMA `llama_dir` and, when `adapter_path` is not empty, the adapter on top.
inline LoadedModel load_model(const std::string& llama_dir, int tokenizer_vocab, int max_seq_len = 512,
                              const std::string& adapter_path = "") {
  const LlamaDir base = open_llama_dir(llama_dir, tokenizer_vocab, max_seq_len);
  AdapterSpec spec;
  io::TensorMap adapter_tensors;
  std::shared_ptr<const void> keep;
  if (!adapter_path.empty()) {
    io::TorchCheckpoint adapter(adapter_path);
    spec = read_adapter_spec(adapter, base.config, adapter_tensors);
    keep = adapter.keep_alive();
  }
  AnyModel model = build_model(base, spec, adapter_tensors, adapter_path);
  // The adapter's mapping must outlive the model's views into it.
  std::visit([&](auto& m) { m.keep_alive(keep); }, model);
  return LoadedModel{std::move(model), spec, base.checkpoint_path, adapter_path, std::move(adapter_tensors), keep};
}

/// \brief Loads Meta's LLaMA directory alone.
inline LoadedModel load_llama(const std::string& dir, int tokenizer_vocab, int max_seq_len = 512) {
  return load_model(dir, tokenizer_vocab, max_seq_len);
}

}  // namespace lav2::model
