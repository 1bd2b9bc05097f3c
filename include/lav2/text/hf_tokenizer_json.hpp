// Reader of a Hugging Face `tokenizer.json` holding a LLaMA-style BPE (the file `tokenizers` writes for
// LlamaTokenizerFast). The parts lav2 reads and requires:
//
//   model.type            "BPE";  model.dropout null;  no continuing_subword_prefix / end_of_word_suffix
//   model.vocab           {piece: id}, ids 0..n-1 without gaps (added_tokens may append ids n, n+1, ...)
//   model.merges          ["left right", ...] or [["left", "right"], ...]; rank = index (0 merges first);
//                         left, right and left+right must all be in the vocabulary
//   model.unk_token       the unknown piece;  model.byte_fallback  bool;  model.fuse_unk  bool
//   added_tokens          [{id, content, special}]: special ones become CONTROL pieces (like <s>, </s>)
//   normalizer            Sequence[Prepend("▁"), Replace(" " -> "▁")]   (LLaMA-2 "legacy" files), or
//   pre_tokenizer         Metaspace("▁", prepend_scheme first/always, split false) with normalizer null:
//                         both mean SentencePiece's add_dummy_prefix + escape_whitespaces, no extra-space removal
//   decoder               not read: lav2 decodes every tokenizer with SentencePiece's rules (see tokenizer.hpp)
//
// Piece types follow SentencePiece: the unk token is UNKNOWN, special added tokens CONTROL, "<0xXX>" BYTE
// when byte_fallback, the rest NORMAL. Each piece's score is minus the rank of the first merge that
// produces it (pieces no merge produces score -(number of merges)): with these scores SentencePiece's
// score-ordered BPE reproduces the rank-ordered merges, which is how a tokenizer.model can be rebuilt.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "lav2/core/error.hpp"
#include "lav2/text/json_reader.hpp"
#include "lav2/text/sentencepiece_model.hpp"

namespace lav2::text {

struct HfBpeModel {
  std::vector<Piece> pieces;                // by id
  std::vector<std::pair<int, int>> merges;  // by rank: (left id, right id)
  std::vector<int> merge_result;            // by rank: id of left+right
  int unk_id = -1;
  bool byte_fallback = false;
  bool fuse_unk = false;
  NormalizerSpec normalizer;  // add_dummy_prefix, escape_whitespaces; no extra-space removal
};

namespace detail {

/// The byte of a "<0xXX>" piece (upper-case hex, as SentencePiece writes it), or -1.
inline int byte_piece_value(std::string_view p) {
  if (p.size() != 6 || p.substr(0, 3) != "<0x" || p[5] != '>') return -1;
  int v = 0;
  for (int i = 3; i < 5; ++i) {
    const char c = p[i];
    v <<= 4;
    if (c >= '0' && c <= '9') v |= c - '0';
    else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
    else return -1;
  }
  return v;
}

inline std::string byte_piece(unsigned char b) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  return std::string("<0x") + kHex[b >> 4] + kHex[b & 15] + ">";
}

}  // namespace detail

inline HfBpeModel parse_hf_tokenizer_json(std::string_view text, const std::string& file) {
  const JsonValue root = JsonReader(text, file).parse();
  auto fail = [&](const std::string& field, const std::string& what) -> void {
    LAV2_THROW(load_error, "tokenizer '", file, "': ", field, ": ", what);
  };
  auto str_of = [](const JsonValue* v) -> std::string { return v && v->is_string() ? v->string : std::string(); };
  if (!root.is_object()) fail("(root)", "not a JSON object");
  const JsonValue* model = root.find("model");
  if (!model || !model->is_object()) fail("model", "missing");
  if (const JsonValue* t = model->find("type"); t && str_of(t) != "BPE")
    fail("model.type", "'" + str_of(t) + "', expected 'BPE'");
  if (const JsonValue* d = model->find("dropout"); d && !d->is_null()) fail("model.dropout", "must be null");
  for (const char* k : {"continuing_subword_prefix", "end_of_word_suffix"})
    if (const JsonValue* v = model->find(k); v && !v->is_null() && !(v->is_string() && v->string.empty()))
      fail(std::string("model.") + k, "not supported");

  HfBpeModel m;
  // ---- vocabulary
  const JsonValue* vocab = model->find("vocab");
  if (!vocab || !vocab->is_object() || vocab->object.empty()) fail("model.vocab", "missing or empty");
  if (vocab->object.size() > kMaxPieces) fail("model.vocab", "too many pieces");
  std::vector<const std::string*> by_id(vocab->object.size(), nullptr);
  for (const auto& [piece, idv] : vocab->object) {
    const double d = idv.number;
    if (idv.kind != JsonValue::Kind::kNumber || d < 0 || d >= static_cast<double>(by_id.size()) ||
        d != static_cast<double>(static_cast<std::int64_t>(d)))
      fail("model.vocab['" + piece + "']", "id is not an integer in [0, vocab size)");
    const auto id = static_cast<std::size_t>(d);
    if (by_id[id]) fail("model.vocab['" + piece + "']", "id " + std::to_string(id) + " is used twice");
    if (piece.empty()) fail("model.vocab", "empty piece");
    by_id[id] = &piece;
  }
  m.pieces.resize(by_id.size());
  for (std::size_t i = 0; i < by_id.size(); ++i) m.pieces[i].piece = *by_id[i];

  // ---- added tokens: special ones are CONTROL; ids past the vocabulary extend it
  std::vector<bool> special(m.pieces.size(), false);
  if (const JsonValue* added = root.find("added_tokens"); added && added->is_array()) {
    for (const JsonValue& t : added->array) {
      const JsonValue* idv = t.find("id");
      const std::string content = str_of(t.find("content"));
      if (!idv || idv->kind != JsonValue::Kind::kNumber || content.empty())
        fail("added_tokens", "entry without an integer id and a content");
      // Range-check the double before converting it: a cast of 3.9e19 to size_t is undefined
      // (found by tests/fuzz/fuzz_tokenizer_json, UBSan float-cast-overflow).
      const double d = idv->number;
      if (!(d >= 0 && d <= static_cast<double>(m.pieces.size())) ||
          d != static_cast<double>(static_cast<std::int64_t>(d)))
        fail("added_tokens['" + content + "']", "id is not an integer in [0, vocab size]");
      const auto id = static_cast<std::size_t>(d);
      if (id == m.pieces.size()) {
        m.pieces.push_back(Piece{content, 0.0f, PieceType::kUserDefined});
        special.push_back(false);
      } else if (id > m.pieces.size() || m.pieces[id].piece != content) {
        fail("added_tokens['" + content + "']", "id " + std::to_string(id) + " disagrees with model.vocab");
      }
      const JsonValue* sp = t.find("special");
      if (sp && sp->kind == JsonValue::Kind::kBool && sp->boolean) special[id] = true;
    }
  }
  std::unordered_map<std::string_view, int> index;
  index.reserve(m.pieces.size());
  for (std::size_t i = 0; i < m.pieces.size(); ++i)
    if (!index.emplace(m.pieces[i].piece, static_cast<int>(i)).second)
      fail("model.vocab['" + m.pieces[i].piece + "']", "piece appears twice");

  // ---- unk, byte fallback, piece types
  const std::string unk = str_of(model->find("unk_token"));
  if (!unk.empty()) {
    auto it = index.find(unk);
    if (it == index.end()) fail("model.unk_token", "'" + unk + "' is not in the vocabulary");
    m.unk_id = it->second;
  }
  if (const JsonValue* b = model->find("byte_fallback"); b && b->kind == JsonValue::Kind::kBool)
    m.byte_fallback = b->boolean;
  if (const JsonValue* f = model->find("fuse_unk"); f && f->kind == JsonValue::Kind::kBool) m.fuse_unk = f->boolean;
  for (std::size_t i = 0; i < m.pieces.size(); ++i) {
    Piece& p = m.pieces[i];
    if (static_cast<int>(i) == m.unk_id) p.type = PieceType::kUnknown;
    else if (special[i]) p.type = PieceType::kControl;
    else if (m.byte_fallback && detail::byte_piece_value(p.piece) >= 0) p.type = PieceType::kByte;
  }

  // ---- merges
  const JsonValue* merges = model->find("merges");
  if (!merges || !merges->is_array()) fail("model.merges", "missing");
  std::vector<bool> scored(m.pieces.size(), false);
  m.merges.reserve(merges->array.size());
  for (std::size_t rank = 0; rank < merges->array.size(); ++rank) {
    const JsonValue& e = merges->array[rank];
    std::string left, right;
    if (e.is_string()) {
      const std::size_t sp = e.string.find(' ');
      if (sp == std::string::npos || e.string.find(' ', sp + 1) != std::string::npos)
        fail("model.merges[" + std::to_string(rank) + "]", "'" + e.string + "' is not 'left right'");
      left = e.string.substr(0, sp);
      right = e.string.substr(sp + 1);
    } else if (e.is_array() && e.array.size() == 2 && e.array[0].is_string() && e.array[1].is_string()) {
      left = e.array[0].string;
      right = e.array[1].string;
    } else {
      fail("model.merges[" + std::to_string(rank) + "]", "neither 'left right' nor [left, right]");
    }
    const auto l = index.find(left), r = index.find(right), c = index.find(left + right);
    if (l == index.end() || r == index.end() || c == index.end())
      fail("model.merges[" + std::to_string(rank) + "]",
           "'" + left + "' + '" + right + "' uses a piece not in the vocabulary");
    m.merges.emplace_back(l->second, r->second);
    m.merge_result.push_back(c->second);
    if (!scored[c->second]) {
      scored[c->second] = true;
      m.pieces[c->second].score = -static_cast<float>(rank);
    }
  }
  for (std::size_t i = 0; i < m.pieces.size(); ++i)
    if (!scored[i] && m.pieces[i].type == PieceType::kNormal) m.pieces[i].score = -static_cast<float>(m.merges.size());

  // ---- normaliser: only the SentencePiece-equivalent forms
  m.normalizer.name = "identity";
  m.normalizer.remove_extra_whitespaces = false;
  const JsonValue* norm = root.find("normalizer");
  const JsonValue* pre = root.find("pre_tokenizer");
  const std::string kSpace(utf8::kSpaceSymbol);
  bool prepend = false, replace = false;
  if (norm && !norm->is_null()) {
    std::vector<const JsonValue*> steps;
    if (str_of(norm->find("type")) == "Sequence" && norm->find("normalizers") && norm->find("normalizers")->is_array())
      for (const JsonValue& n : norm->find("normalizers")->array) steps.push_back(&n);
    else steps.push_back(norm);
    for (const JsonValue* n : steps) {
      const std::string type = str_of(n->find("type"));
      const JsonValue* pat = n->find("pattern");
      if (type == "Prepend" && str_of(n->find("prepend")) == kSpace && !prepend) {
        prepend = true;
      } else if (type == "Replace" && pat && str_of(pat->find("String")) == " " &&
                 str_of(n->find("content")) == kSpace && !replace) {
        replace = true;
      } else {
        fail("normalizer",
             "unsupported step '" + type + "' (lav2 supports Prepend('\u2581') and Replace(' ', '\u2581'))");
      }
    }
    if (!replace) fail("normalizer", "no Replace(' ', '\u2581') step");
    if (pre && !pre->is_null()) fail("pre_tokenizer", "must be null when a normalizer is given");
  } else if (pre && !pre->is_null()) {
    const std::string scheme = str_of(pre->find("prepend_scheme"));
    const JsonValue* split = pre->find("split");
    const JsonValue* aps = pre->find("add_prefix_space");
    if (str_of(pre->find("type")) != "Metaspace" || str_of(pre->find("replacement")) != kSpace ||
        (split && !(split->kind == JsonValue::Kind::kBool && !split->boolean)))
      fail("pre_tokenizer", "only Metaspace('\u2581', split=false) is supported");
    replace = true;
    prepend = scheme == "first" || scheme == "always" ||
              (scheme.empty() && aps && aps->kind == JsonValue::Kind::kBool && aps->boolean);
  }
  m.normalizer.add_dummy_prefix = prepend;
  m.normalizer.escape_whitespaces = replace;
  return m;
}

}  // namespace lav2::text
