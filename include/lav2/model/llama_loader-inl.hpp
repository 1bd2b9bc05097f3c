// Definitions of llama_loader.hpp's entry points (see lav2/core/api.hpp for why they are apart).
#pragma once

#include "lav2/core/api.hpp"
#if !LAV2_DEFINE_API
#error "an -inl.hpp is included by its header only (lav2/core/api.hpp)"
#endif

#include <algorithm>
#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "lav2/core/error.hpp"
#include "lav2/io/json_file.hpp"
#include "lav2/io/tensor_file.hpp"
#include "lav2/model/llama_config.hpp"
#include "lav2/model/llama_loader.hpp"
#include "lav2/model/llama_weights.hpp"

namespace lav2::model {

LAV2_API std::string find_llama_checkpoint(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) LAV2_THROW(input_error, "--llama-dir '", dir, "' is not a directory");
  std::vector<std::string> shards, found;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    const bool shard = name.rfind("consolidated.", 0) == 0 && e.path().extension() == ".pth";
    if (shard) shards.push_back(e.path().string());
    if (shard || e.path().extension() == ".safetensors") found.push_back(e.path().string());
  }
  if (found.empty())
    LAV2_THROW(input_error, "LLaMA dir '", dir, "': no consolidated.*.pth or *.safetensors checkpoint");
  std::sort(found.begin(), found.end());
  if (shards.size() > 1 && shards.size() == found.size())
    LAV2_THROW(input_error, "LLaMA dir '", dir, "': ", shards.size(),
               " model-parallel shards; only single-shard checkpoints (7B) are supported, as in the official code");
  if (found.size() > 1) {
    std::string list;
    for (const std::string& f : found) list += (list.empty() ? "'" : ", '") + fs::path(f).filename().string() + "'";
    LAV2_THROW(input_error, "LLaMA dir '", dir, "': ", found.size(), " checkpoints (", list, "); expected one");
  }
  return found.front();
}

LAV2_API void infer_dims_from_tensors(LlamaConfig& c, const io::TensorMap& t, const std::string& file,
                                      const std::string& params_file, int tokenizer_vocab) {
  auto find = [&](const std::string& name) -> const AnyTensorView& {
    auto it = t.find(name);
    if (it == t.end()) LAV2_THROW(load_error, "checkpoint '", file, "': tensor '", name, "' is missing");
    return it->second;
  };
  const AnyTensorView& emb = find("tok_embeddings.weight");
  if (emb.shape.rank != 2 || emb.shape[1] != c.dim)
    LAV2_THROW(load_error, "checkpoint '", file, "': tensor 'tok_embeddings.weight' has shape ", emb.shape.to_string(),
               ", expected (vocab_size, ", c.dim, ") from params '", params_file, "' dim");
  const int vocab = int(emb.shape[0]);
  if (c.vocab_size != 0 && c.vocab_size != vocab)
    LAV2_THROW(load_error, "params '", params_file, "': vocab_size ", c.vocab_size, " disagrees with checkpoint '",
               file, "' tok_embeddings.weight rows ", vocab);
  if (tokenizer_vocab > 0 && tokenizer_vocab != vocab)
    LAV2_THROW(load_error, "checkpoint '", file, "': tok_embeddings.weight has ", vocab,
               " rows, but the tokenizer has ", tokenizer_vocab, " pieces");
  c.vocab_size = vocab;
  const AnyTensorView& w1 = find("layers.0.feed_forward.w1.weight");
  if (w1.shape.rank != 2 || w1.shape[0] != c.hidden_dim)
    LAV2_THROW(load_error, "checkpoint '", file, "': tensor 'layers.0.feed_forward.w1.weight' has shape ",
               w1.shape.to_string(), ", expected (", c.hidden_dim, ", ", c.dim, ") from params '", params_file,
               "' (dim ", c.dim, ", multiple_of ", c.multiple_of, ")");
  const std::string last = "layers." + std::to_string(c.n_layers - 1) + ".attention.wq.weight";
  find(last);  // n_layers must not exceed what the checkpoint holds
  const std::string beyond = "layers." + std::to_string(c.n_layers) + ".attention.wq.weight";
  if (t.count(beyond))
    LAV2_THROW(load_error, "params '", params_file, "': n_layers ", c.n_layers, " but checkpoint '", file,
               "' has more layers ('", beyond, "')");
}

LAV2_API LlamaDir open_llama_dir(const std::string& dir, int tokenizer_vocab) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) LAV2_THROW(input_error, "--llama-dir '", dir, "' is not a directory");
  LlamaDir d;
  d.params_path = (fs::path(dir) / "params.json").string();
  if (!fs::exists(d.params_path)) LAV2_THROW(input_error, "LLaMA dir '", dir, "': params.json is missing");
  const io::JsonFile params = io::read_json_file(d.params_path);
  d.config = parse_params_json(params.value, d.params_path);
  d.checkpoint_path = find_llama_checkpoint(dir);
  io::TensorFile file = io::open_tensor_file(d.checkpoint_path);
  d.format = file.format_name();
  d.tensors = std::move(file.tensors);
  d.keep_alive = std::move(file.keep_alive);
  infer_dims_from_tensors(d.config, d.tensors, d.checkpoint_path, d.params_path, tokenizer_vocab);
  return d;
}

}  // namespace lav2::model
