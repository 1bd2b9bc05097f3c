// Loads a LLaMA text model from a GGUF file laid out as llama.cpp's (general.architecture
// "llama"): the sizes from its llama.* keys, the tensors renamed to Meta's (model/gguf_names.hpp)
// and used in place in their stored dtypes, and the tokenizer from tokenizer.ggml.*
// (model/gguf_tokenizer.hpp). The result is the same LlamaDir a Meta directory gives, so
// build_model() and adapters work over either. docs/formats.md lists the keys.
//
//   llama.embedding_length               dim                 required
//   llama.block_count                    n_layers            required
//   llama.attention.head_count           n_heads             required
//   llama.attention.head_count_kv        must equal n_heads  (no grouped-query attention)
//   llama.feed_forward_length            hidden_dim          required; checked against ffn_gate
//   llama.attention.layer_norm_rms_epsilon  norm_eps         required (as llama.cpp requires it)
//   llama.rope.freq_base                 rope_theta          optional (10000)
//   llama.rope.dimension_count           must equal head_dim, optional
//   llama.rope.scaling.type              "none" or absent; llama.expert_count 0 or absent
#pragma once

#include <memory>
#include <string>

#include "lav2/core/api.hpp"
#include "lav2/model/llama_loader.hpp"
#include "lav2/text/tokenizer.hpp"

namespace lav2::model {

/// \brief A GGUF text model, opened: the base (config and tensors under Meta's names) and the
/// tokenizer the file holds.
struct GgufLlama {
  std::shared_ptr<const LlamaDir> base;
  text::Tokenizer tokenizer;
};

/// \brief Opens the GGUF LLaMA at `path` (see the file comment); load_error naming the file and
/// the key or tensor on anything that is not a LLaMA model lav2 runs.
LAV2_API GgufLlama open_gguf_llama(const std::string& path);

}  // namespace lav2::model

#if LAV2_DEFINE_API
#include "lav2/model/gguf_llama-inl.hpp"
#endif
