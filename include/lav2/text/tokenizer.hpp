// lav2::text::Tokenizer: LLaMA's tokenizer, a SentencePiece BPE model with byte fallback, re-implemented to
// give exactly the ids and text of the official `llama/tokenizer.py` (sp.encode / sp.decode, sentencepiece
// 0.1.97: src/normalizer.cc, src/bpe_model.cc, src/sentencepiece_processor.cc). It loads either
//   - `tokenizer.model`  (SentencePiece ModelProto, see sentencepiece_model.hpp), or
//   - `tokenizer.json`   (Hugging Face BPE, see hf_tokenizer_json.hpp),
// chosen by content (a JSON file starts with '{'), and encodes both the same way.
//
// encode(text) = normalise, then BPE:
//   normalise (NormalizerSpec with the 'identity' rule; LLaMA: add_dummy_prefix, escape_whitespaces,
//   remove_extra_whitespaces=false): the text is read one UTF-8 character at a time (a user-defined piece
//   that starts here is taken whole, longest first); an invalid byte becomes U+FFFD; ' ' becomes U+2581 "▁";
//   a "▁" is put in front of a non-empty text; with remove_extra_whitespaces, leading, trailing and repeated
//   spaces are dropped.
//   BPE (.model): every character (or user-defined piece, which never merges) is a symbol; repeatedly the
//   adjacent pair whose concatenation is a piece with the highest score is merged, ties to the leftmost;
//   symbols that are no piece are unknown: with byte_fallback each of their bytes becomes "<0xXX>",
//   otherwise a run of them becomes one <unk>.
//   BPE (tokenizer.json): Hugging Face's rule: characters missing from the vocabulary become byte pieces
//   first, then the pair with the lowest merge rank is merged, ties to the leftmost.
// decode(ids) (both formats, SentencePiece's rules): CONTROL pieces vanish, UNKNOWN gives " ⁇ ", "▁" gives
//   ' ', the first piece loses one leading "▁" (the dummy prefix), runs of byte pieces are decoded as UTF-8
//   with each invalid byte giving U+FFFD.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <queue>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "lav2/core/api.hpp"
#include "lav2/core/error.hpp"
#include "lav2/text/hf_tokenizer_json.hpp"
#include "lav2/text/sentencepiece_model.hpp"
#include "lav2/text/utf8.hpp"

namespace lav2::text {

/// Limits: inputs beyond them throw lav2::limit_error (text) or lav2::load_error (files).
inline constexpr std::size_t kMaxTokenizerFileBytes = std::size_t{256} << 20;  // 256 MiB
inline constexpr std::size_t kMaxEncodeBytes = std::size_t{16} << 20;          // 16 MiB of text per call

class StreamingDecoder;

class Tokenizer {
 public:
  /// Where a tokenizer came from; decides only the BPE merge order (see the top of this file).
  enum class Format { kSentencePiece, kHuggingFace };

  /// Loads `tokenizer.model` or `tokenizer.json` (by content). Throws load_error naming the file and field.
  LAV2_API static Tokenizer load(const std::string& path);

  /// Parses the bytes of a tokenizer file; `name` is used in error messages and to spot ".json".
  LAV2_API static Tokenizer from_bytes(std::string_view data, const std::string& name);

  LAV2_API static Tokenizer from_model_proto(std::string_view data, const std::string& name);

  /// A SentencePiece BPE model already parsed, or built from another file's vocabulary (a GGUF's
  /// tokenizer.ggml.* keys: model/gguf_tokenizer.hpp). Checks the vocabulary as from_model_proto does.
  LAV2_API static Tokenizer from_sentencepiece(const SentencePieceModel& m, const std::string& name);
  LAV2_API static Tokenizer from_hf_json(std::string_view data, const std::string& name);

  // ---- the official Tokenizer's interface ----------------------------------------------------------------

  /// [bos] + sp.encode(text) + [eos]. Throws limit_error past kMaxEncodeBytes, input_error if bos/eos is
  /// asked for but the model has none.
  LAV2_API std::vector<int> encode(std::string_view text, bool bos, bool eos) const;

  /// \brief Decoder state carried across calls (streaming): SentencePiece's "is this the first
  /// piece" rule and the bytes of a run of byte pieces not yet turned into text.
  struct DecodeState {
    bool is_bos_ws = true;     // a leading "▁" may still be the dummy prefix
    bool bos_ws_seen = false;  // the previous piece consumed it
    bool text_nonempty = false;
    std::string bytes;  // pending byte-piece run
  };

  /// \brief Streaming decode, O(1) per id: appends the text of `id` to `out`, continuing `st`.
  /// Byte pieces are emitted as soon as they complete UTF-8 characters; a trailing incomplete
  /// character waits for its next bytes. Feeding ids one at a time and then decode_finish() gives
  /// exactly decode(ids): UTF-8 is prefix-free, so a complete character decodes alike whatever
  /// follows it.
  void decode_next(int id, DecodeState& st, std::string& out) const {
    decode_into(&id, &id + 1, st, out);
    std::size_t keep = st.bytes.size();  // start of a trailing run that may still complete
    for (std::size_t back = 1; back <= std::min<std::size_t>(3, st.bytes.size()); ++back) {
      const auto c = static_cast<unsigned char>(st.bytes[st.bytes.size() - back]);
      if (utf8::is_trail(c)) continue;
      if (c >= 0xC2 && c <= 0xF4 && utf8::one_char_len(c) > back) keep = st.bytes.size() - back;
      break;
    }
    if (keep == 0) return;
    std::string tail = st.bytes.substr(keep);
    st.bytes.resize(keep);
    flush_bytes(st, out);
    st.bytes = std::move(tail);
  }
  /// \brief Ends a streaming decode: the pending bytes, invalid ones as U+FFFD.
  static void decode_finish(DecodeState& st, std::string& out) { flush_bytes(st, out); }

  /// sp.decode(ids). Throws input_error for an id outside [0, vocab_size).
  std::string decode(const std::vector<int>& ids) const {
    DecodeState st;
    std::string out;
    decode_into(ids.data(), ids.data() + ids.size(), st, out);
    flush_bytes(st, out);
    return out;
  }

  int vocab_size() const { return static_cast<int>(pieces_.size()); }
  int bos_id() const { return bos_id_; }  // -1 if none
  int eos_id() const { return eos_id_; }  // -1 if none
  int unk_id() const { return unk_id_; }
  int pad_id() const { return pad_id_; }  // -1 if none (LLaMA)
  Format format() const { return format_; }

  const std::string& id_to_piece(int id) const { return pieces_.at(check_id(id)).piece; }
  float score(int id) const { return pieces_.at(check_id(id)).score; }
  PieceType piece_type(int id) const { return pieces_.at(check_id(id)).type; }
  /// SentencePiece's PieceToId: CONTROL/UNKNOWN/BYTE pieces first, then the others; unk_id() if absent.
  int piece_to_id(std::string_view piece) const {
    const int r = reserved_.find(pieces_, piece);
    if (r >= 0) return r;
    const int n = normal_.find(pieces_, piece);
    return n >= 0 ? n : unk_id_;
  }

  /// The normalised text BPE sees (U+2581 for spaces, the dummy prefix, U+FFFD for invalid bytes).
  std::string normalize(std::string_view in) const {
    std::string out;
    if (in.empty()) return out;
    const bool strip = normalizer_.remove_extra_whitespaces;
    if (strip)
      while (!in.empty() && normalize_prefix(in).first == " ") in.remove_prefix(1);
    if (in.empty()) return out;
    out.reserve(in.size() * 3 + 3);
    const std::string_view space = normalizer_.escape_whitespaces ? utf8::kSpaceSymbol : std::string_view(" ");
    if (normalizer_.add_dummy_prefix) out += space;
    bool prev_space = strip;
    while (!in.empty()) {
      auto [sp, consumed] = normalize_prefix(in);
      while (prev_space && !sp.empty() && sp.front() == ' ') sp.remove_prefix(1);
      if (!sp.empty()) {
        for (char c : sp) {
          if (c == ' ' && normalizer_.escape_whitespaces) out += utf8::kSpaceSymbol;
          else out += c;
        }
        prev_space = sp.back() == ' ';
      }
      in.remove_prefix(consumed);
      if (!strip) prev_space = false;
    }
    if (strip)
      while (out.size() >= space.size() && out.compare(out.size() - space.size(), space.size(), space) == 0)
        out.resize(out.size() - space.size());
    return out;
  }

 private:
  friend class StreamingDecoder;

  // ---- a copy-safe hash index of piece strings -> ids (stores ids only; compares through pieces_) -------
  class PieceIndex {
   public:
    void build(const std::vector<Piece>& pieces, const std::vector<int>& ids) {
      std::size_t cap = 16;
      while (cap < ids.size() * 2) cap <<= 1;
      slots_.assign(cap, -1);
      for (int id : ids) {
        std::size_t h = hash(pieces[id].piece) & (cap - 1);
        while (slots_[h] >= 0) h = (h + 1) & (cap - 1);
        slots_[h] = id;
      }
    }
    int find(const std::vector<Piece>& pieces, std::string_view s) const {
      if (slots_.empty()) return -1;
      const std::size_t mask = slots_.size() - 1;
      for (std::size_t h = hash(s) & mask;; h = (h + 1) & mask) {
        const int id = slots_[h];
        if (id < 0) return -1;
        if (pieces[id].piece == s) return id;
      }
    }

   private:
    static std::size_t hash(std::string_view s) { return std::hash<std::string_view>()(s); }
    std::vector<int> slots_;
  };

  struct MergeRule {
    int rank, result;
  };

  static const char* model_type_name(int t) {
    switch (t) {
      case 1: return "UNIGRAM";
      case 2: return "BPE";
      case 3: return "WORD";
      case 4: return "CHAR";
      default: return "unknown";
    }
  }
  static std::uint64_t pair_key(int l, int r) {
    return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(l)) << 32) | static_cast<std::uint32_t>(r);
  }
  static bool is_normal_type(PieceType t) {
    return t == PieceType::kNormal || t == PieceType::kUserDefined || t == PieceType::kUnused;
  }

  int check_id(int id) const {
    if (id < 0 || id >= vocab_size())
      LAV2_THROW(input_error, "tokenizer: id ", id, " is outside the vocabulary [0, ", vocab_size(), ")");
    return id;
  }

  /// Builds the indexes and checks the vocabulary as SentencePiece's ModelInterface::InitializePieces does.
  void init(const std::string& name, const std::string& unk_piece, const std::string& bos_piece,
            const std::string& eos_piece, const std::string& pad_piece) {
    auto fail = [&](std::size_t i, const std::string& what) {
      LAV2_THROW(load_error, "tokenizer '", name, "': pieces[", i, "] ('", pieces_[i].piece, "'): ", what);
    };
    if (pieces_.empty()) LAV2_THROW(load_error, "tokenizer '", name, "': pieces: the model has no pieces");
    std::vector<int> normal, reserved;
    byte_ids_.fill(-1);
    unk_id_ = -1;
    for (std::size_t i = 0; i < pieces_.size(); ++i) {
      const Piece& p = pieces_[i];
      if (p.piece.empty()) fail(i, "empty piece");
      (is_normal_type(p.type) ? normal : reserved).push_back(static_cast<int>(i));
      if (p.type == PieceType::kUnknown) {
        if (unk_id_ >= 0) fail(i, "a second UNKNOWN piece");
        unk_id_ = static_cast<int>(i);
      }
      if (p.type == PieceType::kByte) {
        if (!byte_fallback_) fail(i, "a BYTE piece although trainer_spec.byte_fallback is false");
        const int b = detail::byte_piece_value(p.piece);
        if (b < 0) fail(i, "a BYTE piece that is not <0xXX>");
        byte_ids_[static_cast<std::size_t>(b)] = static_cast<int>(i);
      }
      if (p.type == PieceType::kUserDefined)
        user_defined_[static_cast<unsigned char>(p.piece[0])].push_back(static_cast<int>(i));
    }
    normal_.build(pieces_, normal);
    reserved_.build(pieces_, reserved);
    for (const std::vector<int>* group : {&normal, &reserved})
      for (int id : *group) {
        const int first = (group == &normal ? normal_ : reserved_).find(pieces_, pieces_[id].piece);
        if (first != id) fail(static_cast<std::size_t>(id), "piece is already defined as id " + std::to_string(first));
      }
    if (unk_id_ < 0) LAV2_THROW(load_error, "tokenizer '", name, "': pieces: no UNKNOWN piece (unk is not defined)");
    if (byte_fallback_)
      for (int b = 0; b < 256; ++b)
        if (byte_ids_[static_cast<std::size_t>(b)] < 0)
          LAV2_THROW(load_error, "tokenizer '", name, "': pieces: byte_fallback is true but byte piece ",
                     detail::byte_piece(static_cast<unsigned char>(b)), " is missing");
    for (auto& group : user_defined_)  // longest first, so the first match is the longest
      std::sort(group.begin(), group.end(),
                [&](int a, int b) { return pieces_[a].piece.size() > pieces_[b].piece.size(); });
    const int u = piece_to_id(unk_piece), b = piece_to_id(bos_piece), e = piece_to_id(eos_piece),
              p = piece_to_id(pad_piece);
    unk_id_ = pieces_[u].type == PieceType::kUnknown ? u : unk_id_;
    bos_id_ = pieces_[b].type == PieceType::kControl ? b : -1;
    eos_id_ = pieces_[e].type == PieceType::kControl ? e : -1;
    pad_id_ = pieces_[p].type == PieceType::kControl ? p : -1;
  }

  /// The longest user-defined piece at the front of `s`, as a length (0 if none).
  std::size_t user_defined_match(std::string_view s) const {
    for (int id : user_defined_[static_cast<unsigned char>(s[0])]) {
      const std::string& p = pieces_[id].piece;
      if (s.size() >= p.size() && s.compare(0, p.size(), p) == 0) return p.size();
    }
    return 0;
  }

  /// Normalizer::NormalizePrefix for the identity rule: (normalised text, bytes consumed).
  std::pair<std::string_view, std::size_t> normalize_prefix(std::string_view in) const {
    if (const std::size_t n = user_defined_match(in)) return {in.substr(0, n), n};
    std::size_t len = 0;
    if (!utf8::is_valid_decode(in, len)) return {utf8::kReplacement, 1};
    return {in.substr(0, len), len};
  }

  // ---- BPE by piece score (SentencePiece's bpe::Model::Encode) ----------------------------------------

  struct Symbol {
    int prev, next;
    std::uint32_t begin, len;
    bool freeze;
    int id;  // only for bpe_by_rank
  };

  void bpe_by_score(const std::string& norm, std::vector<int>& out) const {
    if (norm.empty()) return;
    std::vector<Symbol> sym;
    sym.reserve(norm.size());
    for (std::size_t pos = 0; pos < norm.size();) {
      const std::string_view rest(norm.data() + pos, norm.size() - pos);
      std::size_t len = user_defined_match(rest);
      const bool freeze = len > 0;
      if (!freeze) len = std::min(utf8::one_char_len(static_cast<unsigned char>(rest[0])), rest.size());
      const int idx = static_cast<int>(sym.size());
      sym.push_back(Symbol{idx - 1, pos + len < norm.size() ? idx + 1 : -1, static_cast<std::uint32_t>(pos),
                           static_cast<std::uint32_t>(len), freeze, -1});
      pos += len;
    }
    struct Pair {
      float score;
      int left, right;
      std::uint32_t size;
    };
    // Highest score first; equal scores: the leftmost first.
    auto worse = [](const Pair& a, const Pair& b) {
      return a.score < b.score || (a.score == b.score && a.left > b.left);
    };
    std::priority_queue<Pair, std::vector<Pair>, decltype(worse)> agenda(worse);
    std::map<std::string_view, std::pair<std::string_view, std::string_view>> rev_merge;  // UNUSED pieces only
    auto view = [&](int i) { return std::string_view(norm.data() + sym[i].begin, sym[i].len); };
    auto maybe_add = [&](int l, int r) {
      if (l < 0 || r < 0 || sym[l].freeze || sym[r].freeze) return;
      const std::string_view merged(norm.data() + sym[l].begin, sym[l].len + sym[r].len);
      const int id = normal_.find(pieces_, merged);
      if (id < 0) return;
      agenda.push(Pair{pieces_[id].score, l, r, static_cast<std::uint32_t>(merged.size())});
      if (pieces_[id].type == PieceType::kUnused) rev_merge[merged] = {view(l), view(r)};
    };
    for (int i = 1; i < static_cast<int>(sym.size()); ++i) maybe_add(i - 1, i);
    while (!agenda.empty()) {
      const Pair top = agenda.top();
      agenda.pop();
      Symbol& l = sym[top.left];
      Symbol& r = sym[top.right];
      if (l.len == 0 || r.len == 0 || l.len + r.len != top.size) continue;  // stale
      l.len += r.len;
      l.next = r.next;
      if (r.next >= 0) sym[r.next].prev = top.left;
      r.len = 0;
      maybe_add(l.prev, top.left);
      maybe_add(top.left, l.next);
    }
    bool prev_unk = false;
    std::function<void(std::string_view)> resegment = [&](std::string_view w) {
      const int id = piece_to_id(w);
      if (pieces_[id].type == PieceType::kUnused) {
        const auto it = rev_merge.find(w);
        if (it != rev_merge.end()) {
          resegment(it->second.first);
          resegment(it->second.second);
          return;
        }
      }
      emit(w, id, prev_unk, out);
    };
    for (int i = 0; i != -1; i = sym[i].next) resegment(view(i));
  }

  /// SentencePieceProcessor::PopulateSentencePieceText: unknown pieces become byte pieces (byte_fallback) or
  /// merge with a preceding unknown piece.
  void emit(std::string_view w, int id, bool& prev_unk, std::vector<int>& out) const {
    const bool unk = id == unk_id_;
    if (unk && byte_fallback_) {
      for (char c : w) out.push_back(byte_ids_[static_cast<unsigned char>(c)]);
    } else if (!(unk && prev_unk)) {
      out.push_back(id);
    }
    prev_unk = unk;
  }

  // ---- BPE by merge rank (Hugging Face tokenizers' BPE::merge_word / Word::merge_all) ----------------

  void bpe_by_rank(const std::string& norm, std::vector<int>& out) const {
    if (norm.empty()) return;
    std::vector<Symbol> sym;
    sym.reserve(norm.size());
    auto add = [&](std::uint32_t begin, std::uint32_t len, int id) {
      const int idx = static_cast<int>(sym.size());
      if (idx > 0) sym.back().next = idx;
      sym.push_back(Symbol{idx - 1, -1, begin, len, false, id});
    };
    for (std::size_t pos = 0; pos < norm.size();) {
      const std::size_t len = std::min(utf8::one_char_len(static_cast<unsigned char>(norm[pos])), norm.size() - pos);
      const std::string_view ch(norm.data() + pos, len);
      const int id = normal_.find(pieces_, ch) >= 0 ? normal_.find(pieces_, ch) : reserved_.find(pieces_, ch);
      if (id >= 0) {
        add(static_cast<std::uint32_t>(pos), static_cast<std::uint32_t>(len), id);
      } else if (byte_fallback_) {
        for (std::size_t k = 0; k < len; ++k)
          add(static_cast<std::uint32_t>(pos + k), 1, byte_ids_[static_cast<unsigned char>(norm[pos + k])]);
      } else if (fuse_unk_ && !sym.empty() && sym.back().id == unk_id_) {
        sym.back().len += static_cast<std::uint32_t>(len);
      } else {
        add(static_cast<std::uint32_t>(pos), static_cast<std::uint32_t>(len), unk_id_);
      }
      pos += len;
    }
    struct Merge {
      int pos, rank, result;
    };
    // Lowest rank first; equal ranks: the leftmost first.
    auto worse = [](const Merge& a, const Merge& b) { return a.rank > b.rank || (a.rank == b.rank && a.pos > b.pos); };
    std::priority_queue<Merge, std::vector<Merge>, decltype(worse)> agenda(worse);
    auto rule = [&](int l, int r) -> const MergeRule* {
      const auto it = merge_rank_.find(pair_key(sym[l].id, sym[r].id));
      return it == merge_rank_.end() ? nullptr : &it->second;
    };
    for (int i = 1; i < static_cast<int>(sym.size()); ++i)
      if (const MergeRule* m = rule(i - 1, i)) agenda.push(Merge{i - 1, m->rank, m->result});
    while (!agenda.empty()) {
      const Merge top = agenda.top();
      agenda.pop();
      Symbol& l = sym[top.pos];
      if (l.len == 0 || l.next < 0) continue;
      const MergeRule* m = rule(top.pos, l.next);
      if (!m || m->result != top.result) continue;  // stale
      Symbol& r = sym[l.next];
      l.len += r.len;
      l.id = top.result;
      l.next = r.next;
      if (r.next >= 0) sym[r.next].prev = top.pos;
      r.len = 0;
      if (l.prev >= 0)
        if (const MergeRule* p = rule(l.prev, top.pos)) agenda.push(Merge{l.prev, p->rank, p->result});
      if (l.next >= 0)
        if (const MergeRule* n = rule(top.pos, l.next)) agenda.push(Merge{top.pos, n->rank, n->result});
    }
    for (int i = 0; i != -1; i = sym[i].next) out.push_back(sym[i].id);
  }

  // ---- decode (SentencePieceProcessor::Decode) ---------------------------------------------------------

  /// Turns the pending run of byte pieces into text: each valid UTF-8 character as is, each invalid byte
  /// as U+FFFD.
  static void flush_bytes(DecodeState& st, std::string& out) {
    std::string_view b(st.bytes);
    while (!b.empty()) {
      std::size_t len = 0;
      if (utf8::is_valid_decode(b, len)) out.append(b.data(), len);
      else out += utf8::kReplacement;
      b.remove_prefix(len);
      st.text_nonempty = true;
    }
    st.bytes.clear();
  }

  void decode_into(const int* begin, const int* end, DecodeState& st, std::string& out) const {
    for (const int* it = begin; it != end; ++it) {
      const Piece& p = pieces_[static_cast<std::size_t>(check_id(*it))];
      if (p.type == PieceType::kByte) {
        st.bytes += static_cast<char>(detail::byte_piece_value(p.piece));
        continue;
      }
      flush_bytes(st, out);
      if (st.bos_ws_seen || st.text_nonempty) st.is_bos_ws = false;
      st.bos_ws_seen = false;
      std::string_view s = p.piece;
      if (p.type == PieceType::kControl) {
        continue;
      } else if (p.type == PieceType::kUnknown) {
        out += unk_surface_;
        st.text_nonempty = st.text_nonempty || !unk_surface_.empty();
        continue;
      }
      if (st.is_bos_ws && (normalizer_.add_dummy_prefix || normalizer_.remove_extra_whitespaces)) {
        if (s.substr(0, utf8::kSpaceSymbol.size()) == utf8::kSpaceSymbol) {
          s.remove_prefix(utf8::kSpaceSymbol.size());
          st.bos_ws_seen = !normalizer_.remove_extra_whitespaces;
        }
      }
      for (std::size_t i = 0; i < s.size();) {
        if (s.compare(i, utf8::kSpaceSymbol.size(), utf8::kSpaceSymbol) == 0) {
          out += ' ';
          i += utf8::kSpaceSymbol.size();
        } else {
          out += s[i++];
        }
      }
      st.text_nonempty = st.text_nonempty || !s.empty();
    }
  }

  Format format_ = Format::kSentencePiece;
  std::vector<Piece> pieces_;
  PieceIndex normal_, reserved_;                    // NORMAL/USER_DEFINED/UNUSED; CONTROL/UNKNOWN/BYTE
  std::array<std::vector<int>, 256> user_defined_;  // by first byte, longest first
  std::array<int, 256> byte_ids_{};
  std::unordered_map<std::uint64_t, MergeRule> merge_rank_;  // tokenizer.json only
  NormalizerSpec normalizer_;
  std::string unk_surface_ = " \xE2\x81\x87 ";
  bool byte_fallback_ = false, fuse_unk_ = false;
  int unk_id_ = -1, bos_id_ = -1, eos_id_ = -1, pad_id_ = -1;
};

/// Incremental decoding for generation: push ids as they come; each call returns the text that is now
/// final, never part of a UTF-8 character. The concatenation of all returned strings plus finish() equals
/// tokenizer.decode(all ids).
class StreamingDecoder {
 public:
  explicit StreamingDecoder(const Tokenizer& tokenizer) : tok_(&tokenizer) {}

  /// Appends one id; returns the newly completed text (possibly empty).
  std::string push(int id) {
    const int* p = &id;
    return push(p, p + 1);
  }
  /// Given all ids so far (a prefix-extension of what was seen before), returns the newly completed text.
  std::string update(const std::vector<int>& ids_so_far) {
    if (ids_so_far.size() < seen_)
      LAV2_THROW(input_error, "StreamingDecoder::update: ", ids_so_far.size(), " ids, fewer than the ", seen_,
                 " already seen");
    return push(ids_so_far.data() + seen_, ids_so_far.data() + ids_so_far.size());
  }
  /// Ends the stream: returns whatever is pending (an incomplete character becomes U+FFFD per byte).
  std::string finish() {
    std::string out;
    Tokenizer::flush_bytes(st_, out);
    return out;
  }
  void reset() {
    st_ = Tokenizer::DecodeState{};
    seen_ = 0;
  }

 private:
  std::string push(const int* begin, const int* end) {
    std::string out;
    seen_ += static_cast<std::size_t>(end - begin);
    tok_->decode_into(begin, end, st_, out);
    // Emit the complete characters of the pending byte run; keep an incomplete tail for later.
    std::string_view b(st_.bytes);
    std::size_t off = 0;
    while (off < b.size()) {
      std::size_t len = 0;
      const bool valid = utf8::is_valid_decode(b.substr(off), len);
      if (!valid && incomplete(b.substr(off))) break;
      off += len;
    }
    if (off > 0) {
      Tokenizer::DecodeState head = st_;
      head.bytes = st_.bytes.substr(0, off);
      Tokenizer::flush_bytes(head, out);
      st_.text_nonempty = head.text_nonempty;
      st_.bytes.erase(0, off);
    }
    return out;
  }
  /// True if `s` (which does not decode) is a lead byte with fewer trail bytes than it needs, all of them
  /// trail bytes so far: more bytes could still complete it.
  static bool incomplete(std::string_view s) {
    const auto lead = static_cast<unsigned char>(s[0]);
    if (lead < 0xC2 || lead > 0xF4) return false;  // never starts a valid character
    const std::size_t need = utf8::one_char_len(lead);
    if (s.size() >= need) return false;
    for (std::size_t i = 1; i < s.size(); ++i)
      if (!utf8::is_trail(static_cast<unsigned char>(s[i]))) return false;
    return true;
  }

  const Tokenizer* tok_;
  Tokenizer::DecodeState st_;
  std::size_t seen_ = 0;
};

}  // namespace lav2::text

#if LAV2_DEFINE_API
#include "lav2/text/tokenizer-inl.hpp"
#endif
