// Loads Meta's LLaMA directory: params.json + consolidated.00.pth, or the same tensors (Meta's
// names) in model.safetensors / *.safetensors; io::open_tensor_file tells the format from the
// bytes. The checkpoint is memory-mapped; matrices stay in their stored dtype and are used in place.
#pragma once

#include <memory>
#include <string>

#include "lav2/core/api.hpp"
#include "lav2/io/tensor_map.hpp"
#include "lav2/model/llama_config.hpp"

namespace lav2::model {

/// \brief Meta's LLaMA directory, opened: its config (dims checked against the tensors) and the
/// mapped checkpoint with its tensors.
struct LlamaDir {
  LlamaConfig config;
  std::string params_path, checkpoint_path;
  std::string format;                      ///< the checkpoint's format (io::tensor_file_format_name)
  io::TensorMap tensors;                   ///< Meta's names, views into the mapping
  std::shared_ptr<const void> keep_alive;  ///< the mapping `tensors` point into
};

/// \brief The single checkpoint of `dir`: consolidated.*.pth or *.safetensors. Several
/// consolidated shards (model parallel, 13B+) are rejected because the official loader does not
/// merge them either; a .pth next to a .safetensors is ambiguous and rejected too.
LAV2_API std::string find_llama_checkpoint(const std::string& dir);

/// \brief Completes `c` from the tensors and checks every dim that the tensors imply:
/// vocab_size from tok_embeddings (and it must match the tokenizer), hidden_dim from w1.
LAV2_API void infer_dims_from_tensors(LlamaConfig& c, const io::TensorMap& t, const std::string& file,
                                      const std::string& params_file, int tokenizer_vocab);

/// \brief Opens `dir` (params.json + one checkpoint). \param tokenizer_vocab the tokenizer's
/// size, which resolves vocab_size -1 and must equal the embedding rows (0: skip that check).
LAV2_API LlamaDir open_llama_dir(const std::string& dir, int tokenizer_vocab);

}  // namespace lav2::model

#if LAV2_DEFINE_API
#include "lav2/model/llama_loader-inl.hpp"
#endif
