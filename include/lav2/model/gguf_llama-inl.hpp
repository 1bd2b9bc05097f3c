// Definitions of gguf_llama.hpp's entry points (see lav2/core/api.hpp for why they are apart).
#pragma once

#include "lav2/core/api.hpp"
#if !LAV2_DEFINE_API
#error "an -inl.hpp is included by its header only (lav2/core/api.hpp)"
#endif

#include <memory>
#include <string>

#include "lav2/core/error.hpp"
#include "lav2/io/gguf.hpp"
#include "lav2/model/gguf_llama.hpp"
#include "lav2/model/gguf_names.hpp"
#include "lav2/model/gguf_tokenizer.hpp"
#include "lav2/model/llama_config.hpp"
#include "lav2/model/llama_loader.hpp"

namespace lav2::model {

namespace detail {
/// The LlamaConfig of a GGUF LLaMA's llama.* keys (gguf_llama.hpp's table).
inline LlamaConfig gguf_llama_config(const io::GgufFile& g) {
  const std::string ctx = "gguf '" + g.path() + "'";
  const std::string arch = g.get_string("general.architecture", "");
  if (arch != "llama")
    LAV2_THROW(load_error, ctx, ": key 'general.architecture' is ", arch.empty() ? "missing" : "'" + arch + "'",
               ", expected 'llama'");
  LlamaConfig c;
  c.dim = int(g.require_int("llama.embedding_length", 1, 1 << 16));
  c.n_layers = int(g.require_int("llama.block_count", 1, 1024));
  c.n_heads = int(g.require_int("llama.attention.head_count", 1, 1024));
  const std::int64_t kv = g.get_int("llama.attention.head_count_kv", c.n_heads, 1, 1024);
  if (kv != c.n_heads)
    LAV2_THROW(load_error, ctx, ": key 'llama.attention.head_count_kv' is ", kv,
               "; grouped-query attention is not supported, expected ", c.n_heads, " (llama.attention.head_count)");
  if (c.dim % c.n_heads != 0)
    LAV2_THROW(load_error, ctx, ": llama.embedding_length ", c.dim, " is not divisible by llama.attention.head_count ",
               c.n_heads);
  c.head_dim = c.dim / c.n_heads;
  if (c.head_dim % 2 != 0) LAV2_THROW(load_error, ctx, ": head_dim ", c.head_dim, " must be even for RoPE");
  const std::int64_t rope_dims = g.get_int("llama.rope.dimension_count", c.head_dim, 1, 1 << 16);
  if (rope_dims != c.head_dim)
    LAV2_THROW(load_error, ctx, ": key 'llama.rope.dimension_count' is ", rope_dims, ", expected head_dim ", c.head_dim,
               " (LLaMA rotates every dimension of a head)");
  c.hidden_dim = int(g.require_int("llama.feed_forward_length", 1, 1 << 20));
  if (!g.find("llama.attention.layer_norm_rms_epsilon"))
    LAV2_THROW(load_error, ctx, ": key 'llama.attention.layer_norm_rms_epsilon' is missing");
  const double eps = g.get_float("llama.attention.layer_norm_rms_epsilon", 0);
  if (!(eps > 0.0 && eps < 1.0))
    LAV2_THROW(load_error, ctx, ": key 'llama.attention.layer_norm_rms_epsilon' is ", eps, ", expected (0, 1)");
  c.norm_eps = float(eps);
  const double theta = g.get_float("llama.rope.freq_base", 10000.0);
  if (!(theta > 1.0 && theta <= 1e9))
    LAV2_THROW(load_error, ctx, ": key 'llama.rope.freq_base' is ", theta, ", expected (1, 1e9]");
  c.rope_theta = float(theta);
  const std::string scaling = g.get_string("llama.rope.scaling.type", "none");
  if (scaling != "none")
    LAV2_THROW(load_error, ctx, ": key 'llama.rope.scaling.type' is '", scaling,
               "'; RoPE scaling is not supported, expected 'none'");
  if (const std::int64_t experts = g.get_int("llama.expert_count", 0, 0, 1 << 16); experts != 0)
    LAV2_THROW(load_error, ctx, ": key 'llama.expert_count' is ", experts,
               "; mixture-of-experts models are not supported, expected 0");
  return c;
}
}  // namespace detail

LAV2_API GgufLlama open_gguf_llama(const std::string& path) {
  const io::GgufFile g(path);
  const std::string ctx = "gguf '" + path + "'";
  auto d = std::make_shared<LlamaDir>();
  d->config = detail::gguf_llama_config(g);
  d->params_path = d->checkpoint_path = path;
  d->format = "GGUF v" + std::to_string(g.version());
  for (const auto& [name, view] : g.tensors()) {
    const auto meta = meta_name_from_gguf(name);
    if (!meta)
      LAV2_THROW(load_error, ctx, ": tensor '", name, "' ", view.shape.to_string(),
                 " is not one of llama.cpp's LLaMA tensors (token_embd, output_norm, output, blk.N.attn_norm|attn_q|"
                 "attn_k|attn_v|attn_output|ffn_norm|ffn_gate|ffn_down|ffn_up)");
    d->tensors.emplace(*meta, view);
  }
  d->keep_alive = g.keep_alive();
  GgufLlama r{nullptr, tokenizer_from_gguf(g)};
  // Check what infer_dims_from_tensors checks first, so that messages name the GGUF tensors and keys.
  const LlamaConfig& c = d->config;
  const auto* emb = g.tensors().count("token_embd.weight") ? &g.tensors().at("token_embd.weight") : nullptr;
  if (!emb) LAV2_THROW(load_error, ctx, ": tensor 'token_embd.weight' is missing");
  if (emb->shape.rank != 2 || emb->shape[1] != c.dim || emb->shape[0] != r.tokenizer.vocab_size())
    LAV2_THROW(load_error, ctx, ": tensor 'token_embd.weight' has shape ", emb->shape.to_string(), ", expected (",
               r.tokenizer.vocab_size(), ", ", c.dim, ") from tokenizer.ggml.tokens and llama.embedding_length");
  const std::string last = "blk." + std::to_string(c.n_layers - 1) + ".attn_q.weight";
  const std::string beyond = "blk." + std::to_string(c.n_layers) + ".attn_q.weight";
  if (!g.tensors().count(last))
    LAV2_THROW(load_error, ctx, ": tensor '", last, "' is missing (llama.block_count is ", c.n_layers, ")");
  if (g.tensors().count(beyond))
    LAV2_THROW(load_error, ctx, ": tensor '", beyond, "' lies beyond llama.block_count ", c.n_layers);
  // The FFN width is a key here, not derived from multiple_of: check it against the tensor first,
  // so the message names the key.
  if (auto w1 = d->tensors.find("layers.0.feed_forward.w1.weight");
      w1 != d->tensors.end() && (w1->second.shape.rank != 2 || w1->second.shape[0] != d->config.hidden_dim))
    LAV2_THROW(load_error, ctx, ": tensor 'blk.0.ffn_gate.weight' has shape ", w1->second.shape.to_string(),
               ", expected (", d->config.hidden_dim, ", ", d->config.dim,
               ") from llama.feed_forward_length and llama.embedding_length");
  infer_dims_from_tensors(d->config, d->tensors, path, path, r.tokenizer.vocab_size());
  r.base = std::move(d);
  return r;
}

}  // namespace lav2::model
