// Reader of SentencePiece's `tokenizer.model`: a serialized `sentencepiece.ModelProto` (proto2, from
// sentencepiece/src/sentencepiece_model.proto). The fields lav2 reads, by field number:
//
//   ModelProto
//     1 pieces          repeated SentencePiece, in id order (id = index)
//     2 trainer_spec    TrainerSpec
//     3 normalizer_spec NormalizerSpec
//     5 denormalizer_spec NormalizerSpec (must have no rules)
//   SentencePiece
//     1 piece  string (UTF-8, non-empty)      2 score  float (fixed32)
//     3 type   enum: 1 NORMAL (default), 2 UNKNOWN, 3 CONTROL, 4 USER_DEFINED, 5 UNUSED, 6 BYTE ("<0xXX>")
//   TrainerSpec
//     3 model_type  enum: 1 UNIGRAM (default), 2 BPE, 3 WORD, 4 CHAR; lav2 supports BPE only
//     4 vocab_size  24 treat_whitespace_as_suffix (must be false)  35 byte_fallback
//     40 unk_id (0)  41 bos_id (1)  42 eos_id (2)  43 pad_id (-1)  44 unk_surface (" \u2047 ")
//     45-48 unk_piece/bos_piece/eos_piece/pad_piece ("<unk>" "<s>" "</s>" "<pad>"): the ids the API reports
//     are those pieces' ids (bos/eos/pad only if CONTROL, unk only if UNKNOWN), as SentencePiece does
//   NormalizerSpec
//     1 name  2 precompiled_charsmap (must be empty: lav2 implements the 'identity' rule only)
//     3 add_dummy_prefix (true)  4 remove_extra_whitespaces (true)  5 escape_whitespaces (true)
// Every other field is skipped. Defaults are proto2's declared defaults, listed in parentheses.
// Malformed input throws lav2::load_error naming the file and the field.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "lav2/core/error.hpp"
#include "lav2/text/protobuf_reader.hpp"
#include "lav2/text/utf8.hpp"

namespace lav2::text {

enum class PieceType : int { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };

struct Piece {
  std::string piece;  // UTF-8 text, U+2581 for spaces; "<0xXX>" for byte pieces
  float score = 0.0f;
  PieceType type = PieceType::kNormal;
};

struct TrainerSpec {
  int model_type = 1;  // 1 UNIGRAM, 2 BPE, 3 WORD, 4 CHAR
  int vocab_size = 8000;
  bool byte_fallback = false;
  bool treat_whitespace_as_suffix = false;
  int unk_id = 0, bos_id = 1, eos_id = 2, pad_id = -1;
  std::string unk_surface = " \xE2\x81\x87 ";
  std::string unk_piece = "<unk>", bos_piece = "<s>", eos_piece = "</s>", pad_piece = "<pad>";
};

struct NormalizerSpec {
  std::string name;
  std::string precompiled_charsmap;
  bool add_dummy_prefix = true;
  bool remove_extra_whitespaces = true;
  bool escape_whitespaces = true;
};

struct SentencePieceModel {
  std::vector<Piece> pieces;
  TrainerSpec trainer;
  NormalizerSpec normalizer;
  bool has_denormalizer_rules = false;
};

/// Limits on what a tokenizer.model may hold (a LLaMA one has 32,000 pieces of a few bytes).
inline constexpr std::size_t kMaxPieces = 1u << 20;
inline constexpr std::size_t kMaxPieceBytes = 1u << 10;

namespace detail {

inline Piece parse_piece(std::string_view data, const std::string& file, std::size_t index) {
  const std::string path = ::lav2::detail::str_cat("ModelProto.pieces[", index, "]");
  ProtoReader r(data, file, path);
  Piece p;
  bool has_piece = false;
  while (r.next()) {
    switch (r.field()) {
      case 1: {
        r.name("piece");
        const std::string_view s = r.bytes();
        if (s.size() > kMaxPieceBytes) r.fail(nullptr, "piece of ", s.size(), " bytes, limit ", kMaxPieceBytes);
        if (!utf8::is_valid(s)) r.fail(nullptr, "piece is not valid UTF-8");
        p.piece.assign(s);
        has_piece = true;
        break;
      }
      case 2:
        r.name("score");
        p.score = r.fixed32_float();
        break;
      case 3: {
        r.name("type");
        const std::uint64_t t = r.varint();
        if (t < 1 || t > 6) r.fail(nullptr, "unknown piece type ", t);
        p.type = static_cast<PieceType>(t);
        break;
      }
      default: r.skip(); break;
    }
  }
  if (!has_piece || p.piece.empty()) r.fail("piece", "empty piece (a piece must not be empty)");
  return p;
}

inline TrainerSpec parse_trainer_spec(std::string_view data, const std::string& file) {
  ProtoReader r(data, file, "ModelProto.trainer_spec");
  TrainerSpec t;
  while (r.next()) {
    switch (r.field()) {
      case 3:
        r.name("model_type");
        t.model_type = r.int32();
        break;
      case 4:
        r.name("vocab_size");
        t.vocab_size = r.int32();
        break;
      case 24:
        r.name("treat_whitespace_as_suffix");
        t.treat_whitespace_as_suffix = r.boolean();
        break;
      case 35:
        r.name("byte_fallback");
        t.byte_fallback = r.boolean();
        break;
      case 40:
        r.name("unk_id");
        t.unk_id = r.int32();
        break;
      case 41:
        r.name("bos_id");
        t.bos_id = r.int32();
        break;
      case 42:
        r.name("eos_id");
        t.eos_id = r.int32();
        break;
      case 43:
        r.name("pad_id");
        t.pad_id = r.int32();
        break;
      case 44: {
        r.name("unk_surface");
        const std::string_view s = r.bytes();
        if (!utf8::is_valid(s)) r.fail(nullptr, "unk_surface is not valid UTF-8");
        t.unk_surface.assign(s);
        break;
      }
      case 45:
        r.name("unk_piece");
        t.unk_piece.assign(r.bytes());
        break;
      case 46:
        r.name("bos_piece");
        t.bos_piece.assign(r.bytes());
        break;
      case 47:
        r.name("eos_piece");
        t.eos_piece.assign(r.bytes());
        break;
      case 48:
        r.name("pad_piece");
        t.pad_piece.assign(r.bytes());
        break;
      default: r.skip(); break;
    }
  }
  // SentencePiece treats an empty special piece as its default.
  if (t.unk_piece.empty()) t.unk_piece = "<unk>";
  if (t.bos_piece.empty()) t.bos_piece = "<s>";
  if (t.eos_piece.empty()) t.eos_piece = "</s>";
  if (t.pad_piece.empty()) t.pad_piece = "<pad>";
  return t;
}

inline NormalizerSpec parse_normalizer_spec(std::string_view data, const std::string& file, const char* path) {
  ProtoReader r(data, file, path);
  NormalizerSpec n;
  while (r.next()) {
    switch (r.field()) {
      case 1:
        r.name("name");
        n.name.assign(r.bytes());
        break;
      case 2:
        r.name("precompiled_charsmap");
        n.precompiled_charsmap.assign(r.bytes());
        break;
      case 3:
        r.name("add_dummy_prefix");
        n.add_dummy_prefix = r.boolean();
        break;
      case 4:
        r.name("remove_extra_whitespaces");
        n.remove_extra_whitespaces = r.boolean();
        break;
      case 5:
        r.name("escape_whitespaces");
        n.escape_whitespaces = r.boolean();
        break;
      default: r.skip(); break;
    }
  }
  return n;
}

}  // namespace detail

/// Parses a serialized ModelProto. Checks the wire format and the fields' own validity (non-empty UTF-8
/// pieces, known types); the tokenizer checks the model as a whole (BPE, byte pieces, ids).
inline SentencePieceModel parse_sentencepiece_model(std::string_view data, const std::string& file) {
  ProtoReader r(data, file, "ModelProto");
  SentencePieceModel m;
  while (r.next()) {
    switch (r.field()) {
      case 1: {
        r.name(::lav2::detail::str_cat("pieces[", m.pieces.size(), "]"));
        if (m.pieces.size() >= kMaxPieces) r.fail(nullptr, "more than ", kMaxPieces, " pieces");
        m.pieces.push_back(detail::parse_piece(r.bytes(), file, m.pieces.size()));
        break;
      }
      case 2:
        r.name("trainer_spec");
        m.trainer = detail::parse_trainer_spec(r.bytes(), file);
        break;
      case 3:
        r.name("normalizer_spec");
        m.normalizer = detail::parse_normalizer_spec(r.bytes(), file, "ModelProto.normalizer_spec");
        break;
      case 5: {
        r.name("denormalizer_spec");
        const NormalizerSpec d = detail::parse_normalizer_spec(r.bytes(), file, "ModelProto.denormalizer_spec");
        m.has_denormalizer_rules = !d.precompiled_charsmap.empty();
        break;
      }
      default: r.skip(); break;
    }
  }
  return m;
}

}  // namespace lav2::text
