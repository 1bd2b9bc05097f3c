// Loads a model: Meta's LLaMA directory, optionally with an adapter checkpoint on top (docs/model.md, section 6).
//
// Adapter checkpoint layouts (read from data.pkl, never guessed from the file name):
//   V2 (official, and lav2's own): {'model': {name: tensor}, 'config': {...}}. LLaMA-side names
//     carry the prefix 'llama.' ('llama.layers.3.attention.wq.bias'); 'adapter_query.weight' and
//     the visual branch (vision::projector_table: 'clip_proj.*', 'visual_query.weight',
//     'visual_blocks.*', 'visual_proj*') have none. config: official keys w_bias (ignored, as officially: the finetune-phase model
//     always has biases), w_lora, lora_rank; lav2's keys adapter (v2|v1|none), bias_set
//     (official|all), scale_mode (none|input|output), fusion_mode (all_adapter_layers|first_k|
//     paper_early), fusion_depth, query_len, query_layer.
//   V1: a plain dict {'adapter_query.weight', 'layers.{i}.attention.gate'}, no prefix, no config.
//
// Sizes come from the shapes, because the official class takes them as arguments that no config
// records: query_len = rows of visual_query.weight; query_layer = rows of adapter_query.weight /
// query_len; lora_rank = rows of the lora_*_l1 matrices. A config value may only confirm a shape:
// where they disagree, or the shapes disagree among themselves, the error names the tensors and
// both values. Without a visual_query.weight (an adapter without its visual branch, or V1),
// query_len comes from the config (official default 10; V1: rows / 30 adapter layers). v_depth is
// the number of visual_blocks numbered from 0 (the projector infers it so); a block past a gap in
// that numbering is an error, not a block left out.
//
// As the official load(strict=False): adapter tensors override the base ones; missing optional
// tensors keep their initial values (biases, gates, LoRA 0; scales, new_gate 1); an unexpected key
// is an error that names it.
#pragma once
#pragma once

#include <memory>
#include <string>

#include "lav2/core/api.hpp"
#include "lav2/io/tensor_map.hpp"
#include "lav2/model/adapter_spec.hpp"
#include "lav2/model/llama_loader.hpp"
#include "lav2/model/llama_model.hpp"

namespace lav2::io {
class TorchCheckpoint;
class Value;
}  // namespace lav2::io

namespace lav2::model {

/// \brief An opened adapter checkpoint: its variant and sizes, and its tensors (the LLaMA side
/// and, for V2, the visual branch, which vision::VisualEncoder reads).
struct AdapterFile {
  std::string path;
  AdapterSpec spec;
  io::TensorMap tensors;
  std::shared_ptr<const void> keep_alive;
};

/// \brief A loaded model, the base it stands on and the adapter file it came from.
struct LoadedModel {
  std::shared_ptr<const LlamaDir> base;
  LlamaModel model;
  AdapterFile adapter;  ///< empty path for base LLaMA
};

/// \brief Reads an opened adapter checkpoint's variant and sizes (checked against `c`). The
/// result keeps the checkpoint's mapping alive.
LAV2_API AdapterFile open_adapter(const io::TorchCheckpoint& ckpt, const LlamaConfig& c);

/// \brief An adapter from tensors under their checkpoint names and a config dict (null: the
/// defaults), read as the V2 layout's {'model', 'config'}: for adapters stored in other containers
/// (a GGUF lav2 part, model/gguf_mm.hpp). `keep_alive` holds what the views point into.
LAV2_API AdapterFile open_adapter_tensors(io::TensorMap tensors, const io::Value* config, const std::string& path,
                                          std::shared_ptr<const void> keep_alive, const LlamaConfig& c);

/// \brief Opens an adapter checkpoint and reads its variant and sizes (checked against `c`).
LAV2_API AdapterFile open_adapter(const std::string& path, const LlamaConfig& c);

/// \brief Builds the model over the opened base directory, with `adapter` on top (null: base
/// LLaMA), checking every key. The model's matrices are views into the base's mapping (no copy):
/// several adapters may be built over one base. The model keeps the base and the adapter mapped.
LAV2_API LlamaModel build_model(const std::shared_ptr<const LlamaDir>& base, const AdapterFile* adapter);

/// \brief Opens Meta's LLaMA directory once, for one or more models over it.
LAV2_API std::shared_ptr<const LlamaDir> open_llama_base(const std::string& llama_dir, int tokenizer_vocab);

/// \brief Loads `adapter_path` (may be empty: base LLaMA) over an opened base.
LAV2_API LoadedModel load_model(const std::shared_ptr<const LlamaDir>& base, const std::string& adapter_path = "");

/// \brief Loads Meta's LLaMA `llama_dir` and, when `adapter_path` is not empty, the adapter on top.
LAV2_API LoadedModel load_model(const std::string& llama_dir, int tokenizer_vocab,
                                const std::string& adapter_path = "");

}  // namespace lav2::model

#if LAV2_DEFINE_API
#include "lav2/model/model_loader-inl.hpp"
#endif
