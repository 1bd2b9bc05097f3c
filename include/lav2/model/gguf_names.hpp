// llama.cpp's tensor names for LLaMA (its LLM_ARCH_LLAMA table) beside Meta's, the names lav2's
// weight tables use. GGUF keeps Meta's matrix layouts: wq and wk stay in Meta's interleaved-pair
// RoPE order (llama.cpp's convert_hf_to_gguf.py undoes Hugging Face's permutation), and a
// matrix's GGUF ne is [in, out], its lav2 shape (out, in).
//
//   GGUF (llama.cpp)            Meta / lav2
//   token_embd.weight           tok_embeddings.weight
//   output_norm.weight          norm.weight
//   output.weight               output.weight
//   (rope_freqs.weight, LLaMA-3.1's RoPE scaling factors, is not LLaMA-1/2's and is refused)
//   blk.N.attn_norm.weight      layers.N.attention_norm.weight
//   blk.N.attn_q.weight         layers.N.attention.wq.weight      (attn_k wk, attn_v wv,
//   blk.N.attn_output.weight    layers.N.attention.wo.weight       attn_output wo)
//   blk.N.ffn_norm.weight       layers.N.ffn_norm.weight
//   blk.N.ffn_gate.weight       layers.N.feed_forward.w1.weight   (ffn_down w2, ffn_up w3)
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace lav2::model {

namespace detail {
struct GgufNamePair {
  std::string_view gguf, meta;
};
/// The per-layer names without their "blk.N." / "layers.N." prefix.
inline constexpr GgufNamePair kGgufLayerNames[] = {
    {"attn_norm.weight", "attention_norm.weight"}, {"attn_q.weight", "attention.wq.weight"},
    {"attn_k.weight", "attention.wk.weight"},      {"attn_v.weight", "attention.wv.weight"},
    {"attn_output.weight", "attention.wo.weight"}, {"ffn_norm.weight", "ffn_norm.weight"},
    {"ffn_gate.weight", "feed_forward.w1.weight"}, {"ffn_down.weight", "feed_forward.w2.weight"},
    {"ffn_up.weight", "feed_forward.w3.weight"},
};
inline constexpr GgufNamePair kGgufGlobalNames[] = {
    {"token_embd.weight", "tok_embeddings.weight"},
    {"output_norm.weight", "norm.weight"},
    {"output.weight", "output.weight"},
};

/// "<prefix><digits>.<rest>": the layer index and rest, or nullopt.
inline std::optional<std::pair<std::string, std::string_view>> split_layer(std::string_view name,
                                                                           std::string_view prefix) {
  if (name.substr(0, prefix.size()) != prefix) return std::nullopt;
  const std::size_t dot = name.find('.', prefix.size());
  if (dot == std::string_view::npos || dot == prefix.size() || dot - prefix.size() > 6) return std::nullopt;
  const std::string_view index = name.substr(prefix.size(), dot - prefix.size());
  if (index.find_first_not_of("0123456789") != std::string_view::npos) return std::nullopt;
  if (index.size() > 1 && index[0] == '0') return std::nullopt;  // "blk.01." is not layer 1
  return std::make_pair(std::string(index), name.substr(dot + 1));
}

inline std::optional<std::string> map_name(std::string_view name, bool to_meta) {
  for (const GgufNamePair& p : kGgufGlobalNames)
    if (name == (to_meta ? p.gguf : p.meta)) return std::string(to_meta ? p.meta : p.gguf);
  const auto layer = split_layer(name, to_meta ? "blk." : "layers.");
  if (!layer) return std::nullopt;
  for (const GgufNamePair& p : kGgufLayerNames)
    if (layer->second == (to_meta ? p.gguf : p.meta))
      return std::string(to_meta ? "layers." : "blk.") + layer->first + "." + std::string(to_meta ? p.meta : p.gguf);
  return std::nullopt;
}
}  // namespace detail

/// \brief Meta's name for llama.cpp's tensor `gguf_name` ("blk.3.attn_q.weight" ->
/// "layers.3.attention.wq.weight"); nullopt for a name outside LLaMA's table.
inline std::optional<std::string> meta_name_from_gguf(std::string_view gguf_name) {
  return detail::map_name(gguf_name, /*to_meta=*/true);
}

/// \brief llama.cpp's name for Meta's tensor `meta_name`; nullopt for a name outside the table.
inline std::optional<std::string> gguf_name_from_meta(std::string_view meta_name) {
  return detail::map_name(meta_name, /*to_meta=*/false);
}

}  // namespace lav2::model
