// The tokenizer of a GGUF model, from its tokenizer.ggml.* keys (llama.cpp's llama-vocab.cpp),
// as a SentencePiece BPE model (text::Tokenizer::from_sentencepiece):
//
//   tokenizer.ggml.model          string        "llama" (SentencePiece BPE; the only kind lav2 reads)
//   tokenizer.ggml.tokens         [string]      the pieces, id order
//   tokenizer.ggml.scores         [f32]         optional (0): the merge priorities
//   tokenizer.ggml.token_type     [i32]         optional: 1 normal, 2 unknown, 3 control,
//                                               4 user-defined, 5 unused, 6 byte (SentencePiece's)
//   tokenizer.ggml.{bos,eos,unknown}_token_id   u32, optional (1, 2, 0 as llama.cpp's defaults)
//   tokenizer.ggml.add_space_prefix             bool, optional (true): SentencePiece's dummy prefix
//   tokenizer.ggml.remove_extra_whitespaces     bool, optional (false, as LLaMA's tokenizer.model)
//
// Without token_type, the unknown id is UNKNOWN, bos and eos are CONTROL and "<0xXX>" pieces are
// BYTE, as llama.cpp treats them. Byte fallback is on when the vocabulary has byte pieces.
#pragma once

#include <string>
#include <vector>

#include "lav2/core/error.hpp"
#include "lav2/io/gguf.hpp"
#include "lav2/text/sentencepiece_model.hpp"
#include "lav2/text/tokenizer.hpp"

namespace lav2::model {

/// \brief The SentencePiece model that `gguf`'s tokenizer.ggml.* keys describe (see the file comment).
inline text::SentencePieceModel sentencepiece_model_from_gguf(const io::GgufFile& gguf) {
  const std::string ctx = "gguf '" + gguf.path() + "'";
  const std::string kind = gguf.get_string("tokenizer.ggml.model", "");
  if (kind.empty()) LAV2_THROW(load_error, ctx, ": key 'tokenizer.ggml.model' is missing (the file has no tokenizer)");
  if (kind != "llama")
    LAV2_THROW(load_error, ctx, ": key 'tokenizer.ggml.model' is '", kind,
               "', expected 'llama' (SentencePiece BPE, LLaMA's tokenizer)");
  const auto* tokens = gguf.get_array("tokenizer.ggml.tokens", io::GgufType::string);
  if (!tokens || tokens->empty()) LAV2_THROW(load_error, ctx, ": key 'tokenizer.ggml.tokens' is missing or empty");
  const std::size_t n = tokens->size();
  const auto* scores = gguf.get_array("tokenizer.ggml.scores", io::GgufType::f32);
  const auto* types = gguf.get_array("tokenizer.ggml.token_type", io::GgufType::i32);
  for (const auto& [key, arr] : {std::pair{"tokenizer.ggml.scores", scores}, {"tokenizer.ggml.token_type", types}})
    if (arr && arr->size() != n)
      LAV2_THROW(load_error, ctx, ": key '", key, "' has ", arr->size(), " elements, expected ", n,
                 " (one per token of 'tokenizer.ggml.tokens')");
  const auto id_key = [&](const char* key, std::int64_t fallback) {
    return int(gguf.get_int(key, fallback, 0, std::int64_t(n) - 1));
  };
  text::SentencePieceModel m;
  m.trainer.model_type = 2;  // BPE
  m.trainer.unk_id = id_key("tokenizer.ggml.unknown_token_id", 0);
  m.trainer.bos_id = id_key("tokenizer.ggml.bos_token_id", 1);
  m.trainer.eos_id = id_key("tokenizer.ggml.eos_token_id", 2);
  m.normalizer.add_dummy_prefix = gguf.get_bool("tokenizer.ggml.add_space_prefix", true);
  m.normalizer.remove_extra_whitespaces = gguf.get_bool("tokenizer.ggml.remove_extra_whitespaces", false);
  m.pieces.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    text::Piece& p = m.pieces[i];
    p.piece = (*tokens)[i].str;
    p.score = scores ? float((*scores)[i].f) : 0.0f;
    if (types) {
      const std::int64_t t = (*types)[i].i;
      if (t < 1 || t > 6)
        LAV2_THROW(load_error, ctx, ": key 'tokenizer.ggml.token_type' element ", i, " is ", t,
                   ", expected 1..6 (normal, unknown, control, user-defined, unused, byte)");
      p.type = text::PieceType(int(t));
    } else if (int(i) == m.trainer.unk_id) {
      p.type = text::PieceType::kUnknown;
    } else if (int(i) == m.trainer.bos_id || int(i) == m.trainer.eos_id) {
      p.type = text::PieceType::kControl;
    } else if (text::detail::byte_piece_value(p.piece) >= 0) {
      p.type = text::PieceType::kByte;
    }
    if (p.type == text::PieceType::kByte) m.trainer.byte_fallback = true;
  }
  // Tokenizer::init finds the special pieces by their text.
  m.trainer.unk_piece = m.pieces[std::size_t(m.trainer.unk_id)].piece;
  m.trainer.bos_piece = m.pieces[std::size_t(m.trainer.bos_id)].piece;
  m.trainer.eos_piece = m.pieces[std::size_t(m.trainer.eos_id)].piece;
  m.trainer.vocab_size = int(n);
  return m;
}

/// \brief The tokenizer of a GGUF model (see the file comment).
inline text::Tokenizer tokenizer_from_gguf(const io::GgufFile& gguf) {
  return text::Tokenizer::from_sentencepiece(sentencepiece_model_from_gguf(gguf), gguf.path());
}

}  // namespace lav2::model
