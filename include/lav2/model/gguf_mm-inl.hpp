// Definitions of gguf_mm.hpp's entry points (see lav2/core/api.hpp for why they are apart).
#pragma once

#include "lav2/core/api.hpp"
#if !LAV2_DEFINE_API
#error "an -inl.hpp is included by its header only (lav2/core/api.hpp)"
#endif

#include <string>
#include <utility>
#include <vector>

#include "lav2/core/error.hpp"
#include "lav2/io/gguf.hpp"
#include "lav2/io/pickle.hpp"
#include "lav2/model/gguf_mm.hpp"
#include "lav2/model/model_loader.hpp"

namespace lav2::model {

namespace detail {
/// The lav2.adapter.* keys as the config dict a V2 checkpoint carries.
inline io::Value gguf_mm_adapter_config(const io::GgufFile& g, const std::string& ctx) {
  static const std::string kPrefix = "lav2.adapter.";
  std::vector<std::pair<std::string, io::Value>> entries;
  for (const auto& [key, v] : g.metadata()) {
    if (key.rfind(kPrefix, 0) != 0) continue;
    const std::string name = key.substr(kPrefix.size());
    if (v.type == io::GgufType::string) entries.emplace_back(name, io::Value::string(v.str));
    else if (v.type == io::GgufType::boolean) entries.emplace_back(name, io::Value::boolean(v.b));
    else if (v.is_integer() && !(v.type == io::GgufType::u64 && v.u > std::uint64_t(INT64_MAX)))
      entries.emplace_back(name, io::Value::integer(v.i));
    else
      LAV2_THROW(load_error, ctx, ": key '", key, "' is ", io::gguf_type_name(v.type),
                 ", expected a string, a bool or an integer");
  }
  return io::Value::str_dict(std::move(entries));
}

/// Every lav2.* key must be one this reader knows (a newer writer's key is not silently dropped).
inline void check_gguf_mm_keys(const io::GgufFile& g, const std::string& ctx) {
  static const char* const kKnown[] = {"lav2.format_version", "lav2.base.embedding_length", "lav2.base.block_count",
                                       "lav2.visual.heads",   "lav2.source.adapter",        "lav2.source.clip"};
  static const char* const kAdapter[] = {"adapter",      "bias_set",  "scale_mode",  "fusion_mode", "w_lora",
                                         "fusion_depth", "query_len", "query_layer", "lora_rank"};
  for (const auto& [key, v] : g.metadata()) {
    if (key.rfind("lav2.", 0) != 0) continue;
    bool known = false;
    for (const char* k : kKnown) known = known || key == k;
    for (const char* k : kAdapter) known = known || key == std::string("lav2.adapter.") + k;
    if (!known) LAV2_THROW(load_error, ctx, ": key '", key, "' is not one of lav2 format ", kGgufMmFormatVersion, "'s");
  }
}
}  // namespace detail

LAV2_API GgufMm open_gguf_mm(const std::string& path, const LlamaConfig& c) {
  const io::GgufFile g(path);
  const std::string ctx = "gguf '" + path + "'";
  const std::string arch = g.get_string("general.architecture", "");
  if (arch != "lav2")
    LAV2_THROW(load_error, ctx, ": key 'general.architecture' is ", arch.empty() ? "missing" : "'" + arch + "'",
               ", expected 'lav2' (the lav2 part of a multimodal model, written by lav2 convert --out-mm)");
  const std::int64_t version = g.require_int("lav2.format_version", 0, 1 << 30);
  if (version != kGgufMmFormatVersion)
    LAV2_THROW(load_error, ctx, ": key 'lav2.format_version' is ", version, ", this lav2 reads ", kGgufMmFormatVersion);
  detail::check_gguf_mm_keys(g, ctx);
  const std::int64_t dim = g.require_int("lav2.base.embedding_length", 1, 1 << 20);
  const std::int64_t layers = g.require_int("lav2.base.block_count", 1, 1 << 16);
  if (dim != c.dim || layers != c.n_layers)
    LAV2_THROW(load_error, ctx, ": made for a base of dim ", dim, " and ", layers,
               " layers (lav2.base.*), but the "
               "base has dim ",
               c.dim, " and ", c.n_layers, " layers");

  GgufMm r;
  r.keep_alive = g.keep_alive();
  r.visual_heads = int(g.get_int("lav2.visual.heads", 16, 1, 1 << 16));
  io::TensorMap adapter;
  const std::string clip_prefix = kGgufMmClipPrefix;
  for (const auto& [name, view] : g.tensors()) (name.rfind(clip_prefix, 0) == 0 ? r.clip : adapter).emplace(name, view);
  const io::Value config = detail::gguf_mm_adapter_config(g, ctx);
  r.adapter = open_adapter_tensors(std::move(adapter), &config, path, r.keep_alive, c);
  return r;
}

}  // namespace lav2::model
