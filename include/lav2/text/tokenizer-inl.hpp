// Definitions of the Tokenizer's loaders and encoder (see lav2/core/api.hpp for why they are apart).
#pragma once

#include "lav2/core/api.hpp"
#if !LAV2_DEFINE_API
#error "an -inl.hpp is included by its header only (lav2/core/api.hpp)"
#endif

#include <cstdint>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "lav2/text/tokenizer.hpp"

namespace lav2::text {

LAV2_API Tokenizer Tokenizer::load(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) LAV2_THROW(load_error, "tokenizer '", path, "': cannot open the file");
  f.seekg(0, std::ios::end);
  const std::streamoff size = f.tellg();
  if (size < 0) LAV2_THROW(load_error, "tokenizer '", path, "': cannot read the file size");
  if (static_cast<std::uint64_t>(size) > kMaxTokenizerFileBytes)
    LAV2_THROW(load_error, "tokenizer '", path, "': file of ", size, " bytes, limit ", kMaxTokenizerFileBytes);
  f.seekg(0, std::ios::beg);
  std::string data(static_cast<std::size_t>(size), '\0');
  if (size > 0 && !f.read(data.data(), size)) LAV2_THROW(load_error, "tokenizer '", path, "': read failed");
  return from_bytes(data, path);
}

LAV2_API Tokenizer Tokenizer::from_bytes(std::string_view data, const std::string& name) {
  std::size_t i = 0;
  while (i < data.size() && (data[i] == ' ' || data[i] == '\n' || data[i] == '\r' || data[i] == '\t')) ++i;
  const bool json =
      (i < data.size() && data[i] == '{') || (name.size() >= 5 && name.compare(name.size() - 5, 5, ".json") == 0);
  return json ? from_hf_json(data, name) : from_model_proto(data, name);
}

LAV2_API Tokenizer Tokenizer::from_model_proto(std::string_view data, const std::string& name) {
  if (data.empty()) LAV2_THROW(load_error, "tokenizer '", name, "': empty file");
  const SentencePieceModel m = parse_sentencepiece_model(data, name);
  return from_sentencepiece(m, name);
}

LAV2_API Tokenizer Tokenizer::from_sentencepiece(const SentencePieceModel& m, const std::string& name) {
  if (m.trainer.model_type != 2)
    LAV2_THROW(load_error, "tokenizer '", name, "': ModelProto.trainer_spec.model_type is ", m.trainer.model_type, " (",
               model_type_name(m.trainer.model_type), "), lav2 supports 2 (BPE) only");
  if (m.trainer.treat_whitespace_as_suffix)
    LAV2_THROW(load_error, "tokenizer '", name,
               "': ModelProto.trainer_spec.treat_whitespace_as_suffix is true, not supported");
  if (!m.normalizer.precompiled_charsmap.empty())
    LAV2_THROW(load_error, "tokenizer '", name, "': ModelProto.normalizer_spec.precompiled_charsmap: rule '",
               m.normalizer.name, "' is not supported, only 'identity' (no character map)");
  if (m.has_denormalizer_rules)
    LAV2_THROW(load_error, "tokenizer '", name, "': ModelProto.denormalizer_spec has rules, not supported");
  Tokenizer t;
  t.format_ = Format::kSentencePiece;
  t.pieces_ = m.pieces;
  t.byte_fallback_ = m.trainer.byte_fallback;
  t.normalizer_ = m.normalizer;
  t.unk_surface_ = m.trainer.unk_surface;
  t.init(name, m.trainer.unk_piece, m.trainer.bos_piece, m.trainer.eos_piece, m.trainer.pad_piece);
  return t;
}

LAV2_API Tokenizer Tokenizer::from_hf_json(std::string_view data, const std::string& name) {
  HfBpeModel m = parse_hf_tokenizer_json(data, name);
  Tokenizer t;
  t.format_ = Format::kHuggingFace;
  t.pieces_ = std::move(m.pieces);
  t.byte_fallback_ = m.byte_fallback;
  t.fuse_unk_ = m.fuse_unk;
  t.normalizer_ = m.normalizer;
  t.merge_rank_.reserve(m.merges.size());
  for (std::size_t r = 0; r < m.merges.size(); ++r)
    t.merge_rank_.emplace(pair_key(m.merges[r].first, m.merges[r].second),
                          MergeRule{static_cast<int>(r), m.merge_result[r]});
  if (m.unk_id < 0) LAV2_THROW(load_error, "tokenizer '", name, "': model.unk_token: missing");
  const std::string unk_piece = t.pieces_[static_cast<std::size_t>(m.unk_id)].piece;
  t.init(name, unk_piece, "<s>", "</s>", "<pad>");
  return t;
}

LAV2_API std::vector<int> Tokenizer::encode(std::string_view text, bool bos, bool eos) const {
  if (text.size() > kMaxEncodeBytes)
    LAV2_THROW(limit_error, "tokenizer: text of ", text.size(), " bytes, limit ", kMaxEncodeBytes);
  std::vector<int> ids;
  if (bos) {
    if (bos_id_ < 0) LAV2_THROW(input_error, "tokenizer: the model defines no BOS piece");
    ids.push_back(bos_id_);
  }
  const std::string norm = normalize(text);
  if (format_ == Format::kSentencePiece) bpe_by_score(norm, ids);
  else bpe_by_rank(norm, ids);
  if (eos) {
    if (eos_id_ < 0) LAV2_THROW(input_error, "tokenizer: the model defines no EOS piece");
    ids.push_back(eos_id_);
  }
  return ids;
}

}  // namespace lav2::text
