// Writes the lav2 part of a multimodal GGUF model (layout: model/gguf_mm.hpp): an opened adapter
// and the CLIP vision tower's tensors, behind `lav2 convert --out-mm`.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "lav2/core/error.hpp"
#include "lav2/io/gguf_writer.hpp"
#include "lav2/io/weight_bind.hpp"
#include "lav2/model/gguf_export.hpp"
#include "lav2/model/gguf_mm.hpp"

namespace lav2::model {

struct GgufMmExportOptions {
  std::string name;                         ///< general.name
  int visual_heads = 16;                    ///< lav2.visual.heads
  std::string adapter_source, clip_source;  ///< lav2.source.*, informational
};

namespace detail {
inline const char* bias_set_name(BiasSet b) {
  return b == BiasSet::official ? "official" : b == BiasSet::all ? "all" : "none";
}
inline const char* scale_mode_name(ScaleMode s) {
  return s == ScaleMode::input ? "input" : s == ScaleMode::output ? "output" : "none";
}
inline const char* adapter_kind_name(AdapterKind k) {
  return k == AdapterKind::v2 ? "v2" : k == AdapterKind::v1 ? "v1" : "none";
}
}  // namespace detail

/// \brief Writes `adapter` (over a base of config `c`) and the CLIP tensors of `clip` whose names
/// begin with `clip_prefix` (the prefix ClipVisionModel found; may be empty: no tower) to `path`.
inline void write_gguf_mm(const AdapterFile& adapter, const LlamaConfig& c, const io::TensorMap& clip,
                          const std::string& clip_prefix, const GgufMmExportOptions& opt, const std::string& path) {
  using io::GgufType;
  using io::GgufValue;
  const auto u32 = [](std::int64_t v) { return GgufValue::of_int(GgufType::u32, v); };
  const AdapterSpec& s = adapter.spec;
  io::GgufWriter w;
  w.set("general.architecture", GgufValue::of_string("lav2"));
  w.set("general.name", GgufValue::of_string(opt.name.empty() ? "LLaMA-Adapter V2" : opt.name));
  w.set("lav2.format_version", u32(kGgufMmFormatVersion));
  w.set("lav2.base.embedding_length", u32(c.dim));
  w.set("lav2.base.block_count", u32(c.n_layers));
  w.set("lav2.adapter.adapter", GgufValue::of_string(detail::adapter_kind_name(s.kind)));
  w.set("lav2.adapter.bias_set", GgufValue::of_string(detail::bias_set_name(s.bias)));
  w.set("lav2.adapter.scale_mode", GgufValue::of_string(detail::scale_mode_name(s.scale)));
  w.set("lav2.adapter.fusion_mode", GgufValue::of_string(std::string(fusion_mode_name(s.fusion))));
  w.set("lav2.adapter.w_lora", GgufValue::of_bool(s.lora));
  w.set("lav2.adapter.fusion_depth", u32(s.fusion_depth));
  if (s.has_prompts()) {
    w.set("lav2.adapter.query_len", u32(s.query_len));
    w.set("lav2.adapter.query_layer", u32(s.query_layer));
  }
  if (s.lora) w.set("lav2.adapter.lora_rank", u32(s.lora_rank));
  w.set("lav2.visual.heads", u32(opt.visual_heads));
  if (!opt.adapter_source.empty()) w.set("lav2.source.adapter", GgufValue::of_string(opt.adapter_source));
  if (!opt.clip_source.empty()) w.set("lav2.source.clip", GgufValue::of_string(opt.clip_source));

  std::vector<std::shared_ptr<const void>> keep;  // converted tensors, alive until w.write()
  const auto add_f32 = [&](const std::string& name, const AnyTensorView& v, const std::string& file,
                           const std::string& src_name) {
    auto f = std::make_shared<std::vector<float>>(detail::tensor_f32(v, file, src_name));
    w.add_tensor(name, DType::f32, v.shape, f->data());
    keep.push_back(std::move(f));
  };
  // The adapter's tensors are trained parameters: f32, as everywhere in lav2.
  for (const auto& [name, v] : adapter.tensors) add_f32(name, v, adapter.path, name);
  // The CLIP tower as stored (f16 for ViT-L-14.pt): the file's float dtypes are GGUF's too.
  bool any_clip = false;
  for (auto it = clip.lower_bound(clip_prefix); it != clip.end() && it->first.rfind(clip_prefix, 0) == 0; ++it) {
    const auto& [src, v] = *it;
    const std::string name = kGgufMmClipPrefix + src.substr(clip_prefix.size());
    any_clip = true;
    if ((v.dtype == DType::f16 || v.dtype == DType::bf16 || v.dtype == DType::f32) && io::detail::is_dense(v))
      w.add_tensor(name, v.dtype, v.shape, v.data);
    else add_f32(name, v, opt.clip_source, src);
  }
  if (s.takes_visual() && !any_clip)
    LAV2_THROW(input_error, "gguf: the adapter '", adapter.path, "' takes a visual query, but no CLIP tower was given");
  w.write(path);
}

}  // namespace lav2::model
