// Definitions of model_loader.hpp's entry points (see lav2/core/api.hpp for why they are apart).
#pragma once

#include "lav2/core/api.hpp"
#if !LAV2_DEFINE_API
#error "an -inl.hpp is included by its header only (lav2/core/api.hpp)"
#endif

#include <memory>
#include <set>
#include <string>

#include "lav2/core/error.hpp"
#include "lav2/io/torch_checkpoint.hpp"
#include "lav2/model/adapter_spec.hpp"
#include "lav2/model/llama_loader.hpp"
#include "lav2/model/llama_model.hpp"
#include "lav2/model/model_loader.hpp"
#include "lav2/vision/projector_weights.hpp"  // the projector's keys: a leaf header (core, tensor, io only)

namespace lav2::model {

namespace detail {
inline const io::Value* config_value(const io::Value* cfg, const char* key) { return cfg ? cfg->find(key) : nullptr; }
inline int config_int(const io::Value* cfg, const char* key, int fallback, int lo, int hi, const std::string& file) {
  const io::Value* v = config_value(cfg, key);
  if (!v) return fallback;
  if (!v->is_int()) LAV2_THROW(load_error, "checkpoint '", file, "': config '", key, "' must be an int");
  if (v->as_int() < lo || v->as_int() > hi)
    LAV2_THROW(load_error, "checkpoint '", file, "': config '", key, "' is ", v->as_int(), ", expected ", lo, "..", hi);
  return int(v->as_int());
}
inline bool config_bool(const io::Value* cfg, const char* key, bool fallback, const std::string& file) {
  const io::Value* v = config_value(cfg, key);
  if (!v) return fallback;
  if (v->is_bool()) return v->as_bool();
  if (v->is_int()) return v->as_int() != 0;
  LAV2_THROW(load_error, "checkpoint '", file, "': config '", key, "' must be a bool");
}
inline std::string config_str(const io::Value* cfg, const char* key, const std::string& fallback,
                              std::initializer_list<const char*> allowed, const std::string& file) {
  const io::Value* v = config_value(cfg, key);
  if (!v) return fallback;
  if (!v->is_str()) LAV2_THROW(load_error, "checkpoint '", file, "': config '", key, "' must be a string");
  for (const char* a : allowed)
    if (v->as_str() == a) return v->as_str();
  std::string list;
  for (const char* a : allowed) list += std::string(list.empty() ? "" : ", ") + a;
  LAV2_THROW(load_error, "checkpoint '", file, "': config '", key, "' is '", v->as_str(), "', expected one of ", list);
}

/// A size read from a shape, confirmed by the config where it names it.
inline int confirm_with_config(const io::Value* cfg, const char* key, int from_shape, const std::string& shape_source,
                               const std::string& file) {
  const int v = config_int(cfg, key, from_shape, 1, 1 << 20, file);
  if (v != from_shape)
    LAV2_THROW(load_error, "checkpoint '", file, "': config '", key, "' is ", v, ", but ", shape_source, " gives ",
               from_shape);
  return v;
}

/// query_len, query_layer and lora_rank from the tensors (see the file comment).
inline void read_sizes(AdapterSpec& s, const io::TensorMap& t, const io::Value* cfg, const LlamaConfig& c,
                       const std::string& file, const std::string& prefix) {
  if (auto vq = t.find("visual_query.weight"); vq != t.end() && vq->second.shape.rank == 2) {
    const int q = int(vq->second.shape[0]);
    s.query_len = confirm_with_config(
        cfg, "query_len", q, "tensor 'visual_query.weight' " + vq->second.shape.to_string() + " (its rows)", file);
  } else {
    s.query_len = config_int(cfg, "query_len", 10, 1, 1 << 16, file);
  }
  if (auto aq = t.find("adapter_query.weight"); s.has_prompts() && aq != t.end()) {
    const Shape& a = aq->second.shape;
    const std::string via = t.count("visual_query.weight") ? " (the rows of 'visual_query.weight')" : "";
    if (a.rank != 2 || a[1] != c.dim)
      LAV2_THROW(load_error, "checkpoint '", file, "': tensor 'adapter_query.weight' has shape ", a.to_string(),
                 ", expected (query_layer * query_len, ", c.dim, ")");
    if (a[0] % s.query_len != 0)
      LAV2_THROW(load_error, "checkpoint '", file, "': tensor 'adapter_query.weight' has ", a[0],
                 " rows, which is not a multiple of query_len ", s.query_len, via);
    const std::int64_t layers = a[0] / s.query_len;
    if (layers < 1 || layers > c.n_layers)
      LAV2_THROW(load_error, "checkpoint '", file, "': tensor 'adapter_query.weight' has ", a[0], " rows = ", layers,
                 " adapter layers x query_len ", s.query_len, via, ", but the LLaMA model has ", c.n_layers, " layers");
    s.query_layer =
        confirm_with_config(cfg, "query_layer", int(layers),
                            "tensor 'adapter_query.weight' rows / query_len " + std::to_string(s.query_len), file);
  } else if (s.has_prompts()) {
    s.query_layer =
        config_int(cfg, "query_layer", c.n_layers - 1, 1, c.n_layers, file);  // the table reports it missing
  }
  // LoRA: every lora_*_l1 must agree on the rank.
  std::string first;
  int rank = 0;
  for (const auto& [name, view] : t) {
    if (name.rfind(prefix, 0) != 0 || name.find(".lora_") == std::string::npos) continue;
    if (name.size() < 10 || name.compare(name.size() - 10, 10, "_l1.weight") != 0 || view.shape.rank != 2) continue;
    if (first.empty()) {
      first = name;
      rank = int(view.shape[0]);
    } else if (view.shape[0] != rank) {
      LAV2_THROW(load_error, "checkpoint '", file, "': LoRA ranks disagree: tensor '", first, "' has rank ", rank,
                 " but '", name, "' has rank ", view.shape[0]);
    }
  }
  if (!first.empty())
    s.lora_rank = confirm_with_config(cfg, "lora_rank", rank, "tensor '" + first + "' (its rows)", file);
  else s.lora_rank = config_int(cfg, "lora_rank", 16, 1, 1 << 16, file);
}

/// v_depth as the projector reads it: the number of consecutive 'visual_blocks.<i>.attn.qkv.weight'
/// from i = 0. A block tensor past that count would be dropped without a word (a gap in the
/// numbering, or a block without its qkv), so it is an error naming the tensor and the missing one.
inline void check_visual_blocks(const io::TensorMap& t, const std::string& file) {
  const std::string prefix = "visual_blocks.";
  int depth = 0;
  while (t.count(prefix + std::to_string(depth) + ".attn.qkv.weight")) ++depth;
  for (auto it = t.lower_bound(prefix); it != t.end() && it->first.rfind(prefix, 0) == 0; ++it) {
    const std::string& name = it->first;
    const std::size_t dot = name.find('.', prefix.size());
    const std::string index =
        name.substr(prefix.size(), dot == std::string::npos ? std::string::npos : dot - prefix.size());
    const bool numeric =
        !index.empty() && index.size() < 7 && index.find_first_not_of("0123456789") == std::string::npos;
    // The projector binds 'visual_blocks.<i>.' with i as std::to_string writes it ("1", not "01").
    if (numeric && std::stoi(index) < depth && std::to_string(std::stoi(index)) == index) continue;
    LAV2_THROW(load_error, "checkpoint '", file, "': tensor '", name, "' lies beyond v_depth ", depth,
               ": the visual blocks must be numbered from 0 without a gap, and '", prefix, depth,
               ".attn.qkv.weight' is missing");
  }
}
}  // namespace detail

namespace detail {
/// The variant and sizes of a V2-layout adapter (official keys, or lav2's with config 'adapter'
/// v1/none) from its tensors and its config dict (may be null).
inline void read_v2_spec(AdapterFile& f, const io::Value* cfg, const LlamaConfig& c) {
  const std::string& path = f.path;
  AdapterSpec& s = f.spec;
  const std::string kind = detail::config_str(cfg, "adapter", "v2", {"v2", "v1", "none"}, path);
  s.kind = kind == "v2" ? AdapterKind::v2 : kind == "v1" ? AdapterKind::v1 : AdapterKind::none;
  const std::string bias =
      detail::config_str(cfg, "bias_set", kind == "v1" ? "none" : "official", {"none", "official", "all"}, path);
  s.bias = bias == "official" ? BiasSet::official : bias == "all" ? BiasSet::all : BiasSet::none;
  const std::string scale = detail::config_str(cfg, "scale_mode", "none", {"none", "input", "output"}, path);
  s.scale = scale == "input" ? ScaleMode::input : scale == "output" ? ScaleMode::output : ScaleMode::none;
  s.lora = detail::config_bool(cfg, "w_lora", false, path);
  const std::string fusion = detail::config_str(cfg, "fusion_mode", "all_adapter_layers",
                                                {"all_adapter_layers", "first_k", "paper_early"}, path);
  s.fusion = fusion == "first_k"       ? FusionMode::first_k
             : fusion == "paper_early" ? FusionMode::paper_early
                                       : FusionMode::all_adapter_layers;
  s.fusion_depth = detail::config_int(cfg, "fusion_depth", 0, 0, 1 << 16, path);
  detail::read_sizes(s, f.tensors, cfg, c, path, kind == "v1" ? "" : "llama.");
  if (s.takes_visual()) detail::check_visual_blocks(f.tensors, path);
}

/// The checks every adapter passes once its spec is read.
inline void check_adapter_spec(AdapterSpec& s, const LlamaConfig& c, const std::string& path) {
  if (!s.has_prompts()) s.query_layer = 0;
  if (s.has_prompts() && s.query_layer < 1)
    LAV2_THROW(load_error, "checkpoint '", path,
               "': config 'query_layer' is 0, but the adapter needs at least one layer");
  if (s.fusion == FusionMode::first_k && (s.fusion_depth < 1 || s.fusion_depth > s.query_layer))
    LAV2_THROW(load_error, "checkpoint '", path, "': config 'fusion_depth' is ", s.fusion_depth,
               ", but first_k needs 1..", s.query_layer, " (the adapter layers this model holds)");
  if (s.fusion == FusionMode::paper_early && (s.fusion_depth < 1 || s.fusion_depth > c.n_layers))
    LAV2_THROW(load_error, "checkpoint '", path, "': config 'fusion_depth' is ", s.fusion_depth,
               ", but paper_early needs 1..", c.n_layers, " (the model's layers)");
  check_supported(s, path);
}
}  // namespace detail

LAV2_API AdapterFile open_adapter_tensors(io::TensorMap tensors, const io::Value* config, const std::string& path,
                                          std::shared_ptr<const void> keep_alive, const LlamaConfig& c) {
  if (config && !config->is_dict()) LAV2_THROW(load_error, "checkpoint '", path, "': 'config' must be a dict");
  AdapterFile f;
  f.path = path;
  f.keep_alive = std::move(keep_alive);
  f.tensors = std::move(tensors);
  detail::read_v2_spec(f, config, c);
  detail::check_adapter_spec(f.spec, c, path);
  return f;
}

LAV2_API AdapterFile open_adapter(const io::TorchCheckpoint& ckpt, const LlamaConfig& c) {
  const std::string& path = ckpt.path();
  const io::Value& root = ckpt.root();
  if (const io::Value* m = root.find("model"); m && m->is_dict())
    return open_adapter_tensors(ckpt.tensors("model"), root.find("config"), path, ckpt.keep_alive(), c);
  AdapterFile f;
  f.path = path;
  f.keep_alive = ckpt.keep_alive();
  AdapterSpec& s = f.spec;
  if (root.find("adapter_query.weight")) {
    f.tensors = ckpt.tensors();
    s.kind = AdapterKind::v1;
    s.query_layer = c.n_layers - 2;  // V1: the last 30 of 32 layers
    const auto it = f.tensors.find("adapter_query.weight");
    if (it == f.tensors.end())
      LAV2_THROW(load_error, "checkpoint '", path, "': 'adapter_query.weight' is not a tensor");
    const AnyTensorView& a = it->second;
    if (a.shape.rank != 2 || s.query_layer <= 0 || a.shape[0] % s.query_layer != 0)
      LAV2_THROW(load_error, "checkpoint '", path, "': tensor 'adapter_query.weight' has shape ", a.shape.to_string(),
                 ", expected (query_layer * query_len, ", c.dim, ") with query_layer ", s.query_layer);
    s.query_len = int(a.shape[0] / s.query_layer);
  } else {
    LAV2_THROW(load_error, "checkpoint '", path,
               "': not an adapter checkpoint: expected {'model': ..., 'config': ...} "
               "(LLaMA-Adapter V2) or a dict with 'adapter_query.weight' (V1)");
  }
  detail::check_adapter_spec(s, c, path);
  return f;
}

LAV2_API AdapterFile open_adapter(const std::string& path, const LlamaConfig& c) {
  return open_adapter(io::TorchCheckpoint(path), c);
}

LAV2_API LlamaModel build_model(const std::shared_ptr<const LlamaDir>& base, const AdapterFile* adapter) {
  const LlamaConfig& c = base->config;
  const AdapterSpec spec = adapter ? adapter->spec : AdapterSpec{};
  const std::string prefix = spec.kind == AdapterKind::v1 ? "" : "llama.";
  const std::string file = adapter ? base->checkpoint_path + "' + '" + adapter->path : base->checkpoint_path;
  // Adapter tensors override base ones; remember which adapter keys the table consumed.
  std::set<std::string> used, table;
  const TensorLookup lookup = [&](const std::string& name) -> const AnyTensorView* {
    table.insert(name);
    if (adapter) {
      const std::string key = name == "adapter_query.weight" ? name : prefix + name;
      if (auto it = adapter->tensors.find(key); it != adapter->tensors.end()) {
        used.insert(key);
        return &it->second;
      }
    }
    auto it = base->tensors.find(name);
    return it == base->tensors.end() ? nullptr : &it->second;
  };
  LlamaWeights w = bind_llama_weights(c, spec, lookup, file);
  // Base keys outside the table: rope.freqs is ignored as officially; anything else is a wrong file.
  for (const auto& [name, view] : base->tensors)
    if (name != "rope.freqs" && !table.count(name))
      LAV2_THROW(load_error, "checkpoint '", base->checkpoint_path, "': unexpected tensor '", name, "' ",
                 view.shape.to_string());
  if (adapter)
    for (const auto& [name, view] : adapter->tensors)
      if (!used.count(name) && !(spec.takes_visual() && vision::is_projector_key(name)))
        LAV2_THROW(load_error, "checkpoint '", adapter->path, "': unexpected tensor '", name, "' ",
                   view.shape.to_string(), " for ", spec.describe());
  w.owned.push_back(base);
  if (adapter) w.owned.push_back(adapter->keep_alive);
  return LlamaModel(c, spec, std::move(w));
}

LAV2_API std::shared_ptr<const LlamaDir> open_llama_base(const std::string& llama_dir, int tokenizer_vocab) {
  return std::make_shared<const LlamaDir>(open_llama_dir(llama_dir, tokenizer_vocab));
}

LAV2_API LoadedModel load_model(const std::shared_ptr<const LlamaDir>& base, const std::string& adapter_path) {
  AdapterFile adapter;
  if (!adapter_path.empty()) adapter = open_adapter(adapter_path, base->config);
  LlamaModel model = build_model(base, adapter_path.empty() ? nullptr : &adapter);
  return LoadedModel{base, std::move(model), std::move(adapter)};
}

LAV2_API LoadedModel load_model(const std::string& llama_dir, int tokenizer_vocab, const std::string& adapter_path) {
  return load_model(open_llama_base(llama_dir, tokenizer_vocab), adapter_path);
}

}  // namespace lav2::model
