// The end records of a zip archive (APPNOTE.TXT 4.3.14-4.3.16), read and held to the file:
//
//   [central directory]                                   cd_offset .. cd_offset + cd_size
//   [ZIP64 end of central directory record]  56 B + ext   only in ZIP64 archives, at z
//     0 sig 0x06064b50 | 4 u64 size of the rest (44 + ext) | 12 u16 made by | 14 u16 needed
//     16 u32 this disk | 20 u32 directory's disk | 24 u64 entries here | 32 u64 entries
//     40 u64 directory size | 48 u64 directory offset
//   [ZIP64 end of central directory locator] 20 B         only in ZIP64 archives, at eocd - 20
//     0 sig 0x07064b50 | 4 u32 disk of the record | 8 u64 z | 16 u32 number of disks
//   [end of central directory record]        22 B + comment, at eocd
//     0 sig 0x06054b50 | 4 u16 this disk | 6 u16 directory's disk | 8 u16 entries here
//     10 u16 entries | 12 u32 directory size | 16 u32 directory offset | 20 u16 comment length
//
// Agreement with the file, each refusal a load_error naming the record, the field, the value
// found and the value expected:
//   - the end record's comment ends exactly at the end of the file (no byte after the archive);
//   - a ZIP64 record ends exactly at its locator, and every end-record field that is not
//     saturated (0xffff / 0xffffffff) equals the ZIP64 record's;
//   - the central directory lies inside the file and ends exactly where the end records begin.
//     Nothing is worked around: an offset that is off (bytes prepended to the archive, as
//     self-extracting archives do) is refused, not shifted until it fits.
#pragma once

#include <cstdint>
#include <string>

#include "lav2/core/error.hpp"
#include "lav2/io/bytes.hpp"

namespace lav2::io::detail {

/// \brief Where the central directory is, as the end records state it (checked against the file).
struct ZipDirectoryExtent {
  std::uint64_t n_entries = 0;  ///< records the directory must hold, no more and no fewer
  std::uint64_t offset = 0;     ///< first byte of the directory
  std::uint64_t size = 0;       ///< the directory ends at offset + size, where the end records begin
  bool zip64 = false;           ///< the numbers came from a ZIP64 end record
};

/// Reads the end records of the `fsize` bytes at `base`; `ctx` ("<what> '<path>'") starts every message.
inline ZipDirectoryExtent read_zip_end_records(const unsigned char* base, std::uint64_t fsize, const std::string& ctx) {
  if (fsize < 22)
    LAV2_THROW(load_error, ctx, ": ", fsize, " bytes is too short for a zip archive (end record needs 22)");

  // End of central directory: scan backwards over at most 65535 comment bytes for a signature
  // whose record and comment end at EOF. The last signature seen names the problem otherwise.
  std::uint64_t eocd = UINT64_MAX, seen = UINT64_MAX;
  const std::uint64_t lowest = fsize >= 22 + 65535 ? fsize - 22 - 65535 : 0;
  for (std::uint64_t pos = fsize - 22 + 1; pos-- > lowest;) {
    if (le32(base + pos) != 0x06054b50u) continue;
    if (pos + 22 + le16(base + pos + 20) == fsize) {
      eocd = pos;
      break;
    }
    if (seen == UINT64_MAX) seen = pos;
  }
  if (eocd == UINT64_MAX && seen != UINT64_MAX)
    LAV2_THROW(load_error, ctx, ": end record at offset ", seen, " with its ", le16(base + seen + 20),
               "-byte comment ends at ", seen + 22 + le16(base + seen + 20), ", expected at the end of the file, ",
               fsize, " (bytes after the archive, or a truncated comment)");
  if (eocd == UINT64_MAX)
    LAV2_THROW(load_error, ctx, ": no end-of-central-directory record (truncated or not a zip archive)");
  const unsigned char* e = base + eocd;
  if (le16(e + 4) != 0 || le16(e + 6) != 0)
    LAV2_THROW(load_error, ctx, ": multi-disk archives are not supported (disk ", le16(e + 4), ")");
  ZipDirectoryExtent d;
  d.n_entries = le16(e + 10);
  d.size = le32(e + 12);
  d.offset = le32(e + 16);
  std::uint64_t end_records = eocd;  // the directory must end exactly here
  const char* from = "end record";

  const bool locator = eocd >= 20 && le32(base + eocd - 20) == 0x07064b50u;
  if (locator || d.n_entries == 0xffffu || d.size == 0xffffffffu || d.offset == 0xffffffffu) {
    if (!locator) LAV2_THROW(load_error, ctx, ": end record has saturated fields but no ZIP64 locator");
    const unsigned char* l = base + eocd - 20;
    if (le32(l + 4) != 0 || le32(l + 16) > 1)
      LAV2_THROW(load_error, ctx, ": multi-disk ZIP64 archives are not supported");
    const std::uint64_t z = le64(l + 8);
    if (!in_range(z, 56, eocd - 20))
      LAV2_THROW(load_error, ctx, ": ZIP64 locator field 'record offset' is ", z, ", expected at most ",
                 eocd - 20 < 56 ? 0 : eocd - 20 - 56, " (a 56-byte record before the locator at ", eocd - 20, ")");
    const unsigned char* r = base + z;
    if (le32(r) != 0x06064b50u) LAV2_THROW(load_error, ctx, ": bad ZIP64 end record signature at offset ", z);
    const std::uint64_t rest = le64(r + 4), want_rest = eocd - 20 - z - 12;
    if (rest != want_rest)
      LAV2_THROW(load_error, ctx, ": ZIP64 end record field 'record size' is ", rest, ", expected ", want_rest,
                 " (the record at offset ", z, " must end at its locator, offset ", eocd - 20, ")");
    if (le32(r + 16) != 0 || le32(r + 20) != 0)
      LAV2_THROW(load_error, ctx, ": multi-disk ZIP64 archives are not supported");
    const std::uint64_t n = le64(r + 32);
    if (le64(r + 24) != n)
      LAV2_THROW(load_error, ctx, ": ZIP64 end record field 'entries on this disk' is ", le64(r + 24), ", expected ", n,
                 " as its field 'total entries' (a single-disk archive)");
    // A field of the classic record that is not saturated must say what the ZIP64 record says.
    const struct {
      const char* field;
      std::uint64_t classic, saturated, zip64;
    } agree[] = {{"entries on this disk", le16(e + 8), 0xffffu, n},
                 {"total entries", le16(e + 10), 0xffffu, n},
                 {"central directory size", le32(e + 12), 0xffffffffu, le64(r + 40)},
                 {"central directory offset", le32(e + 16), 0xffffffffu, le64(r + 48)}};
    for (const auto& a : agree)
      if (a.classic != a.saturated && a.classic != a.zip64)
        LAV2_THROW(load_error, ctx, ": end record field '", a.field, "' is ", a.classic, ", expected ", a.zip64,
                   " as in the ZIP64 end record (or ", a.saturated, ")");
    d.n_entries = n;
    d.size = le64(r + 40);
    d.offset = le64(r + 48);
    d.zip64 = true;
    end_records = z;
    from = "ZIP64 end record";
  } else if (le16(e + 8) != d.n_entries) {
    LAV2_THROW(load_error, ctx, ": end record field 'entries on this disk' is ", le16(e + 8), ", expected ",
               d.n_entries, " as its field 'total entries' (a single-disk archive)");
  }
  if (!in_range(d.offset, d.size, end_records))
    LAV2_THROW(load_error, ctx, ": central directory [", d.offset, ", +", d.size,
               ") (fields 'central directory offset' ", "and 'size' of the ", from,
               ") is outside the file before its end records (", end_records, " bytes)");
  if (d.offset + d.size != end_records)
    LAV2_THROW(load_error, ctx, ": central directory ends at ", d.offset + d.size, " (", from,
               " fields 'central directory offset' ", d.offset, " + 'size' ", d.size, "), expected at ", end_records,
               " where the end records begin (", end_records - d.offset - d.size, " bytes belong to no record)");
  return d;
}

}  // namespace lav2::io::detail
