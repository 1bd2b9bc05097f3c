// The lav2 part of a multimodal GGUF model: the adapter, the CLIP vision tower and the visual
// projector beside a base LLaMA GGUF (model/gguf_llama.hpp). Two files, as llama.cpp lays out
// its multimodal models, because llama.cpp refuses a model file holding tensors it does not
// know: the base stays a plain llama.cpp model, and this part holds everything lav2 adds.
// docs/formats.md lists it field by field.
//
// Metadata:
//   general.architecture        string  "lav2"
//   general.name                string  informational
//   lav2.format_version         u32     1
//   lav2.base.embedding_length  u32     dim of the base this part was made for   } checked against
//   lav2.base.block_count       u32     its layers                               } the --model base
//   lav2.adapter.<key>          the adapter's config, read by the same code as a V2 checkpoint's
//                               'config' dict (model_loader.hpp): adapter, bias_set, scale_mode,
//                               fusion_mode (string), w_lora (bool), fusion_depth, query_len,
//                               query_layer, lora_rank (integers)
//   lav2.visual.heads           u32     heads of the projector's visual blocks (not in any shape)
//   lav2.source.adapter / lav2.source.clip  string  the files it was made from, informational
// Tensors:
//   the adapter's under their checkpoint names ("llama.layers.3.attention.gate",
//   "adapter_query.weight", "clip_proj.weight", "visual_blocks.0.attn.qkv.weight", ...), f32;
//   the CLIP vision tower's as "clip.visual." + OpenAI's name ("clip.visual.conv1.weight"), in
//   the dtype the CLIP file stored (f16 for ViT-L-14.pt).
// Any other general.architecture, format version, lav2.* key or tensor is refused, naming it.
#pragma once

#include <memory>
#include <string>

#include "lav2/core/api.hpp"
#include "lav2/io/tensor_map.hpp"
#include "lav2/model/llama_config.hpp"
#include "lav2/model/model_loader.hpp"

namespace lav2::model {

inline constexpr const char* kGgufMmClipPrefix = "clip.visual.";
inline constexpr int kGgufMmFormatVersion = 1;

/// \brief An opened lav2 part: the adapter (as open_adapter gives it), the CLIP tower's tensors
/// (empty when the part has none), and the visual blocks' head count.
struct GgufMm {
  AdapterFile adapter;
  io::TensorMap clip;  ///< names begin with kGgufMmClipPrefix; views into the mapping
  int visual_heads = 16;
  std::shared_ptr<const void> keep_alive;  ///< the mapping `clip` and `adapter.tensors` point into
};

/// \brief Opens the lav2 part at `path` for the base `c`; load_error naming the file and the key
/// or tensor on anything else.
LAV2_API GgufMm open_gguf_mm(const std::string& path, const LlamaConfig& c);

}  // namespace lav2::model

#if LAV2_DEFINE_API
#include "lav2/model/gguf_mm-inl.hpp"
#endif
