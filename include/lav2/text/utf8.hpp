// UTF-8 helpers with SentencePiece's exact rules (src/util.{h,cc} of sentencepiece 0.1.97), so that
// invalid input and byte-fallback output are treated byte-for-byte as the official tokenizer does:
//   - a character's length comes from its lead byte alone (one_char_len): 0x00-0xBF -> 1, 0xC0-0xDF -> 2,
//     0xE0-0xEF -> 3, 0xF0-0xFF -> 4;
//   - decode_utf8 accepts a sequence only if every trail byte is 10xxxxxx, it is not overlong, and the code
//     point is not a surrogate nor above U+10FFFF; otherwise it reports an error and consumes ONE byte;
//   - "valid" (is_valid_decode) also accepts the literal U+FFFD (EF BF BD), which decodes to the error value.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace lav2::text::utf8 {

/// U+FFFD REPLACEMENT CHARACTER, what SentencePiece substitutes for each invalid byte.
inline constexpr std::string_view kReplacement = "\xEF\xBF\xBD";
/// U+2581 LOWER ONE EIGHTH BLOCK, SentencePiece's visible space.
inline constexpr std::string_view kSpaceSymbol = "\xE2\x96\x81";
inline constexpr char32_t kError = 0xFFFD;

/// Length of the character that starts with `lead`, judged from the lead byte only.
inline std::size_t one_char_len(unsigned char lead) {
  static constexpr unsigned char kLen[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kLen[lead >> 4];
}

inline bool is_trail(unsigned char c) { return (c & 0xC0) == 0x80; }
inline bool is_valid_codepoint(char32_t c) { return c < 0xD800 || (c >= 0xE000 && c <= 0x10FFFF); }

/// Decodes the character at the front of `s` (non-empty). Sets `len` to the bytes consumed (1 on error).
inline char32_t decode(std::string_view s, std::size_t& len) {
  const auto b = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  const std::size_t n = s.size();
  if (b(0) < 0x80) {
    len = 1;
    return b(0);
  }
  if (n >= 2 && (b(0) & 0xE0) == 0xC0) {
    const char32_t cp = ((b(0) & 0x1Fu) << 6) | (b(1) & 0x3Fu);
    if (is_trail(b(1)) && cp >= 0x80 && is_valid_codepoint(cp)) {
      len = 2;
      return cp;
    }
  } else if (n >= 3 && (b(0) & 0xF0) == 0xE0) {
    const char32_t cp = ((b(0) & 0x0Fu) << 12) | ((b(1) & 0x3Fu) << 6) | (b(2) & 0x3Fu);
    if (is_trail(b(1)) && is_trail(b(2)) && cp >= 0x800 && is_valid_codepoint(cp)) {
      len = 3;
      return cp;
    }
  } else if (n >= 4 && (b(0) & 0xF8) == 0xF0) {
    const char32_t cp = ((b(0) & 0x07u) << 18) | ((b(1) & 0x3Fu) << 12) | ((b(2) & 0x3Fu) << 6) | (b(3) & 0x3Fu);
    if (is_trail(b(1)) && is_trail(b(2)) && is_trail(b(3)) && cp >= 0x10000 && is_valid_codepoint(cp)) {
      len = 4;
      return cp;
    }
  }
  len = 1;
  return kError;
}

/// SentencePiece's IsValidDecodeUTF8: the front character decodes (a literal U+FFFD counts as valid).
inline bool is_valid_decode(std::string_view s, std::size_t& len) {
  const char32_t c = decode(s, len);
  return c != kError || len == 3;
}

/// True if every character of `s` decodes.
inline bool is_valid(std::string_view s) {
  while (!s.empty()) {
    std::size_t len = 0;
    if (!is_valid_decode(s, len)) return false;
    s.remove_prefix(len);
  }
  return true;
}

/// Appends the UTF-8 encoding of a valid code point.
inline void append(std::string& out, char32_t c) {
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xE0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
}

}  // namespace lav2::text::utf8
