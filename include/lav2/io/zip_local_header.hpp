// A zip entry's local header (APPNOTE.TXT 4.3.7, 4.3.9), held to its central-directory record:
//
//   [local header 30 B]  0 sig 0x04034b50 | 6 u16 flags | 8 u16 method | 14 u32 crc
//                        18 u32 compressed size | 22 u32 size | 26 u16 name length | 28 u16 extra length
//   [name][extra]        a ZIP64 extra field (id 0x0001) holds u64 size, u64 compressed size
//   [data]               compressed size bytes
//   [data descriptor]    only with flag bit 3: (sig 0x08074b50) crc, compressed size, size; the sizes
//                        are u64 when the local header has a ZIP64 extra field, else u32
//
// torch 1.13 (miniz) sets bit 3, writes 0 for the local sizes and puts them in a signed descriptor;
// later torch writes the sizes in the header itself. Both are read; any other disagreement with
// the central record (name, method, sizes, a descriptor that does not repeat them) is a
// load_error naming the field, the value found and the value the central record gives.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>

#include "lav2/core/error.hpp"
#include "lav2/io/bytes.hpp"

namespace lav2::io {

/// \brief One entry of a zip archive, as its central-directory record states it.
struct ZipEntry {
  std::string name;
  std::uint16_t method = 0;  ///< 0 = stored, 8 = deflate, ...
  std::uint32_t crc32 = 0;
  std::uint64_t compressed_size = 0;
  std::uint64_t size = 0;  ///< uncompressed size
  std::uint64_t local_header_offset = 0;
  std::uint64_t data_offset = 0;  ///< first data byte, from the file start
  std::uint64_t end_offset = 0;   ///< one past the entry's last byte (data, then any data descriptor)
};

namespace detail {

/// The values of the ZIP64 extra field (id 0x0001) among the `len` extra bytes at `x`, or nullptr;
/// its u16 length is at the returned pointer - 2. `where` names the record in messages.
inline const unsigned char* find_zip64_extra(const unsigned char* x, std::uint64_t len, const std::string& ctx,
                                             const std::string& name, const char* where) {
  const unsigned char* xend = x + len;
  while (xend - x >= 4) {
    const std::uint16_t id = le16(x), n = le16(x + 2);
    if (std::uint64_t(xend - x - 4) < n)
      LAV2_THROW(load_error, ctx, ": entry ", detail::quoted(name), ": ", where, " extra field of ", n, " bytes runs ",
                 n - std::uint64_t(xend - x - 4), " bytes past its record");
    if (id == 0x0001u) return x + 4;
    x += 4 + n;
  }
  return nullptr;
}

/// Bytes of the data descriptor after `e`'s data (flag bit 3), which must repeat the central
/// record's crc and sizes; `wide` = u64 sizes. Everything must end before `data_end`.
inline std::uint64_t zip_descriptor_size(const unsigned char* base, const ZipEntry& e, bool wide,
                                         std::uint64_t data_end, const std::string& ctx) {
  const std::uint64_t at = e.data_offset + e.compressed_size, w = wide ? 8 : 4;
  for (const std::uint64_t sig : {4, 0}) {  // the signature is optional (APPNOTE 4.3.9.3)
    if (!in_range(at, sig + 4 + 2 * w, data_end)) continue;
    const unsigned char* d = base + at + sig;
    if (sig && le32(d - 4) != 0x08074b50u) continue;
    const std::uint64_t cs = wide ? le64(d + 4) : le32(d + 4), us = wide ? le64(d + 4 + w) : le32(d + 4 + w);
    if (le32(d) == e.crc32 && cs == e.compressed_size && us == e.size) return sig + 4 + 2 * w;
  }
  LAV2_THROW(load_error, ctx, ": entry ", detail::quoted(e.name),
             ": local header flag bit 3 announces a data descriptor at offset ", at, ", expected crc ", e.crc32,
             ", compressed size ", e.compressed_size, " and size ", e.size, " as in the central directory (",
             wide ? "u64" : "u32", " sizes), found none that repeats them");
}

/// Checks the local header of `e` against `e` (its central record) and sets e.data_offset and
/// e.end_offset; the header, data and any descriptor must end before `data_end` (the central
/// directory's offset).
inline void check_zip_local_header(const unsigned char* base, ZipEntry& e, std::uint64_t data_end,
                                   const std::string& ctx) {
  const std::uint64_t lh = e.local_header_offset;
  if (!in_range(lh, 30, data_end))
    LAV2_THROW(load_error, ctx, ": entry ", detail::quoted(e.name), ": central record field 'local header offset' is ",
               lh, ", expected a 30-byte local header inside the entries' area [0, ", data_end,
               ") before the central directory");
  const unsigned char* l = base + lh;
  if (le32(l) != 0x04034b50u)
    LAV2_THROW(load_error, ctx, ": entry ", detail::quoted(e.name), ": central record field 'local header offset' is ",
               lh, ", where there is no local header signature (PK\\3\\4)");
  const std::uint64_t lname = le16(l + 26), lextra = le16(l + 28);
  if (!in_range(lh + 30, lname + lextra, data_end))
    LAV2_THROW(load_error, ctx, ": entry ", detail::quoted(e.name), ": local header name and extra (", lname + lextra,
               " bytes from offset ", lh + 30, ") run past ", data_end, ", where the central directory begins");
  if (lname != e.name.size() || std::memcmp(l + 30, e.name.data(), std::size_t(lname)) != 0)
    LAV2_THROW(load_error, ctx, ": entry ", detail::quoted(e.name), ": local header field 'name' is ",
               detail::quoted(std::string(reinterpret_cast<const char*>(l + 30), std::size_t(lname))), ", expected ",
               detail::quoted(e.name), " as in the central directory");
  if (le16(l + 8) != e.method)
    LAV2_THROW(load_error, ctx, ": entry ", detail::quoted(e.name), ": local header field 'compression method' is ",
               le16(l + 8), ", expected ", e.method, " as in the central directory");
  const bool descriptor = (le16(l + 6) & 8u) != 0;
  const unsigned char* z64 = find_zip64_extra(l + 30 + lname, lextra, ctx, e.name, "local header");
  std::uint64_t lsize = le32(l + 22), lcsize = le32(l + 18);
  if (lsize == 0xffffffffu || lcsize == 0xffffffffu) {  // the local ZIP64 field holds both sizes
    if (!z64 || le16(z64 - 2) < 16)
      LAV2_THROW(load_error, ctx, ": entry ", detail::quoted(e.name), ": local header has saturated sizes, expected a ",
                 "16-byte ZIP64 extra field, found ", z64 ? std::to_string(le16(z64 - 2)) + " bytes" : "none");
    lsize = le64(z64), lcsize = le64(z64 + 8);
  }
  // With bit 3 a size may be 0 here: the writer did not know it yet, and the descriptor has it.
  const struct {
    const char* field;
    std::uint64_t local, central;
  } agree[] = {{"compressed size", lcsize, e.compressed_size}, {"size", lsize, e.size}};
  for (const auto& a : agree)
    if (a.local != a.central && !(descriptor && a.local == 0))
      LAV2_THROW(load_error, ctx, ": entry ", detail::quoted(e.name), ": local header field '", a.field, "' is ",
                 a.local, ", expected ", a.central, " as in the central directory", z64 ? " (ZIP64 extra field)" : "");
  e.data_offset = lh + 30 + lname + lextra;
  if (!in_range(e.data_offset, e.compressed_size, data_end))
    LAV2_THROW(load_error, ctx, ": entry ", detail::quoted(e.name), ": data [", e.data_offset, ", +", e.compressed_size,
               ") runs past ", data_end, ", where the central directory begins");
  e.end_offset = e.data_offset + e.compressed_size;
  if (descriptor) e.end_offset += zip_descriptor_size(base, e, z64 != nullptr, data_end, ctx);
}

}  // namespace detail
}  // namespace lav2::io
