// Shared helpers of the text tests: data paths, a deterministic generator of hostile test strings, and
// libsentencepiece (the first oracle) behind a small wrapper.
#pragma once

#include <doctest/doctest.h>
#include <sentencepiece_processor.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <lav2/text/tokenizer.hpp>

namespace lav2_test {

inline std::string tokenizer_data(const std::string& name) {
  return std::string(LAV2_TEST_DATA_DIR) + "/tokenizer/" + name;
}
/// The npm oracles fetched by scripts/fetch-test-data.sh (scripts/test.sh always runs it first).
inline std::string npm_data(const std::string& rel) { return std::string(LAV2_SOURCE_DIR) + "/build/npm/" + rel; }

inline std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  REQUIRE_MESSAGE(f.good(), "missing test data ", path, " (run scripts/fetch-test-data.sh)");
  std::ostringstream os;
  os << f.rdbuf();
  return os.str();
}

inline void append_utf8(std::string& s, char32_t c) { lav2::text::utf8::append(s, c); }

/// Deterministic strings mixing ASCII words, digits, whitespace runs, Latin/Greek/Cyrillic/CJK/Hangul/emoji,
/// rare code points, control-piece look-alikes, user-defined symbols and invalid UTF-8 bytes.
class StringGen {
 public:
  explicit StringGen(std::uint64_t seed) : s_(seed * 0x9E3779B97F4A7C15ull + 1) {}
  std::uint32_t next() {
    s_ ^= s_ << 13;
    s_ ^= s_ >> 7;
    s_ ^= s_ << 17;
    return static_cast<std::uint32_t>(s_ >> 11);
  }
  std::uint32_t below(std::uint32_t n) { return next() % n; }

  std::string make() {
    static const char* kWords[] = {"the",
                                   "hello",
                                   "world",
                                   "llama",
                                   "adapter",
                                   "token",
                                   "image",
                                   "quick",
                                   "brown",
                                   "fox",
                                   "jumps",
                                   "The",
                                   "Hello",
                                   "running",
                                   "instruction",
                                   "answer",
                                   "caf\xC3\xA9",
                                   "na\xC3\xAFve",
                                   "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E",
                                   "\xE4\xBD\xA0\xE5\xA5\xBD",
                                   "\xD0\xBF\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82",
                                   "\xF0\x9F\xA6\x99",
                                   "\xF0\x9F\x98\x80",
                                   "<s>",
                                   "</s>",
                                   "<unk>",
                                   "<0x41>",
                                   "<image>",
                                   "###",
                                   "Instruction:",
                                   "\xF0\x9F\xA6\x99llama",
                                   "\xE2\x96\x81",
                                   "\xEF\xBF\xBD",
                                   "a",
                                   "I",
                                   "'s",
                                   "n't",
                                   ",",
                                   ".",
                                   "!",
                                   "?"};
    static const char* kSpaces[] = {" ", "  ", "   ", "\t", "\n", "\r\n", " \n ", "\xC2\xA0", "\xE3\x80\x80", "\t\t"};
    static const char* kBad[] = {"\x80",         "\xFF",
                                 "\xC0\xAF",     "\xE6\x97",
                                 "\xED\xA0\x80", "\xF4\x90\x80\x80",
                                 "\xF0\x9F\xA6", "\xC3",
                                 "\xBF\xBF",     "\xF8\x88\x80\x80\x80",
                                 "\xFE"};
    const std::uint32_t kind = below(20);
    if (kind == 0) return std::string();
    std::string s;
    const std::uint32_t n = 1 + below(kind < 3 ? 60 : 14);
    for (std::uint32_t i = 0; i < n; ++i) {
      const std::uint32_t r = below(100);
      if (r < 40) s += kWords[below(sizeof(kWords) / sizeof(*kWords))];
      else if (r < 60) s += kSpaces[below(sizeof(kSpaces) / sizeof(*kSpaces))];
      else if (r < 68) s += std::to_string(below(1000000));
      else if (r < 73) s += kBad[below(sizeof(kBad) / sizeof(*kBad))];
      else if (r < 78) s += static_cast<char>(below(128));  // any ASCII incl. controls and NUL
      else append_utf8(s, random_code_point());
      if (below(3) == 0) s += ' ';
    }
    if (below(6) == 0) s = "  " + s;
    if (below(6) == 0) s += "   ";
    return s;
  }

 private:
  char32_t random_code_point() {
    static const std::pair<char32_t, char32_t> kRanges[] = {
        {0x20, 0x7E},     {0xA0, 0x17F},    {0x370, 0x3FF},   {0x400, 0x4FF},       {0x300, 0x36F},
        {0x4E00, 0x4E80}, {0x3040, 0x30FF}, {0xAC00, 0xAC40}, {0x1F600, 0x1F64F},   {0x1F980, 0x1F9AF},
        {0x2000, 0x206F}, {0xE000, 0xE010}, {0xFFF0, 0xFFFD}, {0x10FFF0, 0x10FFFF}, {0x2581, 0x2581}};
    const auto& r = kRanges[below(sizeof(kRanges) / sizeof(*kRanges))];
    return r.first + below(static_cast<std::uint32_t>(r.second - r.first + 1));
  }
  std::uint64_t s_;
};

/// libsentencepiece, the first oracle.
class SpOracle {
 public:
  void load_file(const std::string& path) {
    const auto st = sp_.Load(path);
    REQUIRE_MESSAGE(st.ok(), "libsentencepiece cannot load ", path, ": ", st.ToString());
  }
  void load_bytes(const std::string& bytes) {
    const auto st = sp_.LoadFromSerializedProto(bytes);
    REQUIRE_MESSAGE(st.ok(), "libsentencepiece cannot load the model: ", st.ToString());
  }
  std::vector<int> encode(const std::string& s) const {
    std::vector<int> ids;
    const auto st = sp_.Encode(s, &ids);
    REQUIRE_MESSAGE(st.ok(), st.ToString());
    return ids;
  }
  std::string decode(const std::vector<int>& ids) const {
    std::string out;
    const auto st = sp_.Decode(ids, &out);
    REQUIRE_MESSAGE(st.ok(), st.ToString());
    return out;
  }
  const sentencepiece::SentencePieceProcessor& sp() const { return sp_; }

 private:
  sentencepiece::SentencePieceProcessor sp_;
};

inline std::string escape(const std::string& s) {
  std::string o;
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7F && c != '\\') o += static_cast<char>(c);
    else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02X", c);
      o += buf;
    }
  }
  return o;
}

/// Compares lav2 against libsentencepiece on `count` generated strings and random id sequences.
/// Returns the number of strings checked.
inline int check_parity(const lav2::text::Tokenizer& tok, const SpOracle& sp, int count, std::uint64_t seed) {
  StringGen gen(seed);
  int checked = 0;
  for (int i = 0; i < count; ++i) {
    const std::string s = gen.make();
    const std::vector<int> want = sp.encode(s);
    const std::vector<int> got = tok.encode(s, false, false);
    REQUIRE_MESSAGE(got == want, "encode mismatch on \"", escape(s), "\"");
    const std::string want_text = sp.decode(want);
    REQUIRE_MESSAGE(tok.decode(got) == want_text, "decode mismatch on \"", escape(s), "\"");
    // Random id sequences: control, unknown, byte pieces in any order (invalid UTF-8 runs included).
    std::vector<int> ids(gen.below(12));
    for (int& id : ids) {
      const std::uint32_t r = gen.below(4);
      id = r == 0   ? static_cast<int>(gen.below(4))
           : r == 1 ? 3 + static_cast<int>(gen.below(256))
                    : static_cast<int>(gen.below(tok.vocab_size()));
      if (tok.piece_type(id) == lav2::text::PieceType::kByte && r == 1 && gen.below(2))
        id = tok.piece_to_id(lav2::text::detail::byte_piece(static_cast<unsigned char>(0xC0 + gen.below(0x35))));
    }
    const std::string want_rand = sp.decode(ids);
    REQUIRE_MESSAGE(tok.decode(ids) == want_rand, "decode mismatch on random ids");
    // Streaming gives the same text, one id at a time, never splitting a character.
    lav2::text::StreamingDecoder stream(tok);
    std::string streamed;
    for (int id : ids) {
      const std::string part = stream.push(id);
      REQUIRE(lav2::text::utf8::is_valid(part));
      streamed += part;
    }
    streamed += stream.finish();
    REQUIRE_MESSAGE(streamed == want_rand, "streaming decode mismatch");
    ++checked;
  }
  return checked;
}

// ---- a protobuf writer, enough to serialise a ModelProto ---------------------------------------------
inline void put_varint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out += static_cast<char>((v & 0x7F) | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
}
inline void put_key(std::string& out, int field, int wire) {
  put_varint(out, static_cast<std::uint64_t>(field) << 3 | wire);
}
inline void put_bytes(std::string& out, int field, const std::string& b) {
  put_key(out, field, 2);
  put_varint(out, b.size());
  out += b;
}
inline void put_int(std::string& out, int field, std::int64_t v) {
  put_key(out, field, 0);
  put_varint(out, static_cast<std::uint64_t>(v));
}
inline void put_float(std::string& out, int field, float f) {
  put_key(out, field, 5);
  std::uint32_t u;
  std::memcpy(&u, &f, 4);
  for (int i = 0; i < 4; ++i) out += static_cast<char>((u >> (8 * i)) & 0xFF);
}

}  // namespace lav2_test
