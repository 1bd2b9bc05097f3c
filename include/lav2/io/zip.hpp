// A read-only zip reader for archives of STORED entries, the form torch.save writes
// (PyTorchStreamWriter: method 0, each entry's data 64-byte aligned through padding in the local
// extra field, ZIP64 records once an archive or entry passes 4 GiB).
//
// Layout read (APPNOTE.TXT 4.3.6), all integers little-endian:
//   [local header 30 B + name + extra][data][data descriptor, if flag bit 3] ... per entry
//   [central directory: one 46 B record + name + extra + comment per entry]
//   [ZIP64 end of central directory record, 56 B]   only in ZIP64 archives
//   [ZIP64 end of central directory locator, 20 B]  only in ZIP64 archives
//   [end of central directory record, 22 B + comment (<= 65535 B)]
// Each record's fields are listed above the function that reads it.
//
// Checks, each failing with load_error "<what> '<path>': ..." naming the field, the value found
// and the value expected:
//   - the end records agree with the file (io/zip_end_records.hpp): the comment ends at EOF, a
//     ZIP64 record ends at its locator and the classic fields agree with it, the central
//     directory lies inside the file and ends exactly where the end records begin; single disk;
//   - entry count within the limits and within what the directory's size can hold (46 B per
//     record) before reserving, and equal to the records the directory holds: none missing, no
//     byte left after the last;
//   - each record: signature, name/extra/comment inside the directory, ZIP64 extra field for
//     every saturated field, not encrypted, STORED entries have equal sizes;
//   - each name: non-empty, bounded, no NUL or backslash, not absolute, no '..' component,
//     no duplicate;
//   - each local header (io/zip_local_header.hpp): inside the file, signature, and the same name,
//     compression method and sizes as its central record (or, with flag bit 3, a data descriptor
//     after the data that repeats crc and sizes); its data inside the file and before the central
//     directory. (The crc-32 is checked against the data itself, by verify_crc(), where it is read.)
//   - every byte before the central directory belongs to exactly one entry: entries neither
//     overlap nor leave gaps, and no data lies before the first or after the last.
// All offset arithmetic is 64-bit and overflow-checked. Compressed (deflate) entries are listed
// but `data()` rejects them: a compressed entry cannot be memory-mapped, torch never writes one,
// and inflating would need zlib for no benefit. CRCs are not verified here (that would read every
// byte of a 13 GB file); `verify_crc()` checks one entry on request.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "lav2/core/error.hpp"
#include "lav2/io/bytes.hpp"
#include "lav2/io/limits.hpp"
#include "lav2/io/mmap.hpp"
#include "lav2/io/zip_end_records.hpp"
#include "lav2/io/zip_local_header.hpp"

namespace lav2::io {

/// \brief A zip archive read from a mapped file; entries are views into the mapping.
class ZipArchive {
 public:
  /// \brief Parses the archive in `file`. \param what names the file in messages.
  ZipArchive(std::shared_ptr<const MappedFile> file, std::string what = "zip", const ZipLimits& limits = {})
      : file_(std::move(file)), ctx_(what + " '" + file_->path() + "'") {
    parse_(limits);
  }

  const std::vector<ZipEntry>& entries() const { return entries_; }
  /// The entry named exactly `name`, or nullptr.
  const ZipEntry* find(std::string_view name) const {
    const auto it = index_.find(std::string(name));
    return it == index_.end() ? nullptr : &entries_[it->second];
  }
  /// Pointer to the bytes of a STORED entry (valid while the mapping lives); throws load_error
  /// for a compressed entry.
  const unsigned char* data(const ZipEntry& e) const {
    if (e.method != 0)
      LAV2_THROW(load_error, ctx_, ": entry ", detail::quoted(e.name), " is compressed (method ", e.method,
                 "); only stored (method 0) entries can be memory-mapped, as torch.save writes them");
    return file_->data() + e.data_offset;
  }
  /// Throws load_error when the CRC-32 of a stored entry differs from its central record.
  void verify_crc(const ZipEntry& e) const {
    const unsigned char* p = data(e);
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
    // Fuzz builds only (the OSS-Fuzz convention): a mutated pickle would nearly always fail its
    // CRC, and the fuzzer would never get past this gate into the unpickler and tensor checks.
    return;
#endif
    const std::uint32_t got = detail::crc32(p, std::size_t(e.size));
    if (got != e.crc32)
      LAV2_THROW(load_error, ctx_, ": entry ", detail::quoted(e.name), ": CRC-32 is ", hex_(got), ", expected ",
                 hex_(e.crc32));
  }
  const std::shared_ptr<const MappedFile>& file() const { return file_; }
  /// "<what> '<path>'", the prefix of every message about this archive.
  const std::string& context() const { return ctx_; }

 private:
  static std::string hex_(std::uint32_t v) {
    static const char* d = "0123456789abcdef";
    std::string s = "0x";
    for (int i = 28; i >= 0; i -= 4) s += d[(v >> i) & 15u];
    return s;
  }

  void parse_(const ZipLimits& lim) {
    using namespace detail;
    const unsigned char* base = file_->data();
    const ZipDirectoryExtent cd = read_zip_end_records(base, file_->size(), ctx_);
    const std::uint64_t n_entries = cd.n_entries, cd_offset = cd.offset, cd_size = cd.size;
    if (cd_size > lim.max_central_directory_bytes)
      LAV2_THROW(limit_error, ctx_, ": central directory of ", cd_size, " bytes exceeds the limit ",
                 lim.max_central_directory_bytes);
    if (n_entries > lim.max_entries)
      LAV2_THROW(limit_error, ctx_, ": ", n_entries, " entries exceed the limit ", lim.max_entries);
    const char* from = cd.zip64 ? "ZIP64 end record" : "end record";
    if (n_entries > cd_size / 46)
      LAV2_THROW(load_error, ctx_, ": ", from, " field 'total entries' is ", n_entries, ", expected at most ",
                 cd_size / 46, ": ", n_entries, " entries cannot fit a central directory of ", cd_size,
                 " bytes (46 or more each)");

    // Exactly n_entries records, back to back, fill the directory: a count that is off, in
    // either direction, leaves records unread or reads past them, so it is refused, not trusted.
    entries_.reserve(std::size_t(n_entries));
    std::uint64_t pos = cd_offset;
    const std::uint64_t cd_end = cd_offset + cd_size;
    for (std::uint64_t i = 0; i < n_entries; ++i) {
      if (record_size_(pos, cd_end) == 0) {
        if (pos == cd_end) count_mismatch_(from, n_entries, pos, cd_offset, cd_end);
        LAV2_THROW(load_error, ctx_, ": central record ", i, " at offset ", pos,
                   " has no central record signature (PK\\1\\2) or runs past the directory end ", cd_end);
      }
      ZipEntry ent = read_central_record_(base + pos, i, lim);
      check_zip_local_header(base, ent, cd_offset, ctx_);
      if (!index_.emplace(ent.name, entries_.size()).second)
        LAV2_THROW(load_error, ctx_, ": duplicate entry name ", detail::quoted(ent.name));
      pos += record_size_(pos, cd_end);
      entries_.push_back(std::move(ent));
    }
    if (pos != cd_end) count_mismatch_(from, n_entries, pos, cd_offset, cd_end);
    check_layout_(cd_offset);
  }

  // Bytes of the whole central record at `pos` (signature and fixed part, name, extra and
  // comment inside the directory ending at `cd_end`), or 0 if there is none.
  std::uint64_t record_size_(std::uint64_t pos, std::uint64_t cd_end) const {
    using namespace detail;
    const unsigned char* c = file_->data() + pos;
    if (!in_range(pos, 46, cd_end) || le32(c) != 0x02014b50u) return 0;
    const std::uint64_t n = 46 + std::uint64_t(le16(c + 28)) + le16(c + 30) + le16(c + 32);
    return in_range(pos, n, cd_end) ? n : 0;
  }
  // The whole records the directory holds from its start, for the message of a wrong count.
  std::uint64_t count_records_(std::uint64_t pos, std::uint64_t cd_end) const {
    std::uint64_t n = 0;
    for (std::uint64_t len; (len = record_size_(pos, cd_end)) != 0; pos += len) ++n;
    return n;
  }
  [[noreturn]] void count_mismatch_(const char* from, std::uint64_t stated, std::uint64_t pos, std::uint64_t cd_offset,
                                    std::uint64_t cd_end) const {
    const std::uint64_t found = count_records_(cd_offset, cd_end);
    if (found == stated)  // the records agree, but bytes that are no record follow them
      LAV2_THROW(load_error, ctx_, ": central directory [", cd_offset, ", ", cd_end, ") holds ", cd_end - pos,
                 " bytes after its last record, from offset ", pos, ", that are no central record");
    LAV2_THROW(load_error, ctx_, ": ", from, " field 'total entries' is ", stated, ", expected ", found,
               ", the records the central directory [", cd_offset, ", ", cd_end, ") holds");
  }

  // One central-directory record (APPNOTE 4.3.12) at `c`, whole inside the directory (record_size_):
  //   0 sig 0x02014b50 | 8 u16 flags | 10 u16 method | 16 u32 crc | 20 u32 compressed size
  //   24 u32 size | 28 u16 name length | 30 u16 extra length | 32 u16 comment length
  //   34 u16 disk | 42 u32 local header offset | 46 name, extra, comment
  ZipEntry read_central_record_(const unsigned char* c, std::uint64_t i, const ZipLimits& lim) const {
    using namespace detail;
    ZipEntry ent;
    const std::uint16_t flags = le16(c + 8);
    ent.method = le16(c + 10);
    ent.crc32 = le32(c + 16);
    ent.compressed_size = le32(c + 20);
    ent.size = le32(c + 24);
    const std::uint64_t name_len = le16(c + 28), extra_len = le16(c + 30);
    std::uint64_t disk = le16(c + 34);
    ent.local_header_offset = le32(c + 42);
    if (name_len == 0) LAV2_THROW(load_error, ctx_, ": central record ", i, " has an empty name");
    if (name_len > lim.max_name_bytes)
      LAV2_THROW(limit_error, ctx_, ": central record ", i, ": name of ", name_len, " bytes exceeds the limit ",
                 lim.max_name_bytes);
    ent.name.assign(reinterpret_cast<const char*>(c + 46), std::size_t(name_len));
    check_name_(ent.name);
    if (flags & 0x41u)
      LAV2_THROW(load_error, ctx_, ": entry ", detail::quoted(ent.name), " is encrypted (flags ", flags, ")");

    // ZIP64 extended information: present values appear in this order, only if saturated.
    const bool need_u = ent.size == 0xffffffffu, need_c = ent.compressed_size == 0xffffffffu,
               need_o = ent.local_header_offset == 0xffffffffu, need_d = disk == 0xffffu;
    if (need_u || need_c || need_o || need_d) {
      const unsigned char* v = find_zip64_extra(c + 46 + name_len, extra_len, ctx_, ent.name, "central record");
      const std::uint64_t want = 8u * (need_u + need_c + need_o) + 4u * need_d;
      if (!v)
        LAV2_THROW(load_error, ctx_, ": entry ", detail::quoted(ent.name),
                   " has saturated sizes but no ZIP64 extra field");
      if (le16(v - 2) < want)
        LAV2_THROW(load_error, ctx_, ": entry ", detail::quoted(ent.name), ": ZIP64 extra field holds ", le16(v - 2),
                   " bytes, the saturated fields need ", want);
      if (need_u) ent.size = le64(v), v += 8;
      if (need_c) ent.compressed_size = le64(v), v += 8;
      if (need_o) ent.local_header_offset = le64(v), v += 8;
      if (need_d) disk = le32(v);
    }
    if (disk != 0) LAV2_THROW(load_error, ctx_, ": entry ", detail::quoted(ent.name), " starts on disk ", disk);
    if (ent.method == 0 && ent.compressed_size != ent.size)
      LAV2_THROW(load_error, ctx_, ": stored entry ", detail::quoted(ent.name), " has compressed size ",
                 ent.compressed_size, " but size ", ent.size);
    return ent;
  }

  // Every byte before the central directory belongs to exactly one entry (local header, data,
  // descriptor): entries neither overlap nor leave a gap, and nothing lies before the first.
  void check_layout_(std::uint64_t cd_offset) const {
    std::vector<std::size_t> order(entries_.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      return entries_[a].local_header_offset < entries_[b].local_header_offset;
    });
    std::uint64_t expected = 0;  // where the next entry must start
    const ZipEntry* prev = nullptr;
    for (const std::size_t k : order) {
      const ZipEntry& cur = entries_[k];
      if (prev && cur.local_header_offset < expected)
        LAV2_THROW(load_error, ctx_, ": entries ", detail::quoted(prev->name), " and ", detail::quoted(cur.name),
                   " overlap (the second starts at ", cur.local_header_offset, ", the first ends at ", expected, ")");
      if (cur.local_header_offset > expected)
        LAV2_THROW(
            load_error, ctx_, ": bytes [", expected, ", ", cur.local_header_offset, ") ",
            prev ? "between entries " + detail::quoted(prev->name) + " and " : std::string("before the first entry "),
            detail::quoted(cur.name), " belong to no entry (expected the entry's local header at ", expected, ")");
      expected = cur.end_offset;
      prev = &cur;
    }
    if (expected != cd_offset)
      LAV2_THROW(
          load_error, ctx_, ": bytes [", expected, ", ", cd_offset, ") ",
          prev ? "after the last entry " + detail::quoted(prev->name) : std::string("before the central directory"),
          " belong to no entry (expected the central directory at ", expected, ")");
  }

  void check_name_(const std::string& n) const {
    if (n.find('\0') != std::string::npos || n.find('\\') != std::string::npos)
      LAV2_THROW(load_error, ctx_, ": entry name ", detail::quoted(n), " contains a NUL or backslash");
    if (n[0] == '/') LAV2_THROW(load_error, ctx_, ": entry name ", detail::quoted(n), " is an absolute path");
    std::size_t start = 0;
    while (start <= n.size()) {
      std::size_t end = n.find('/', start);
      if (end == std::string::npos) end = n.size();
      if (n.compare(start, end - start, "..") == 0)
        LAV2_THROW(load_error, ctx_, ": entry name ", detail::quoted(n), " contains a '..' component");
      start = end + 1;
    }
  }

  std::shared_ptr<const MappedFile> file_;
  std::string ctx_;
  std::vector<ZipEntry> entries_;
  std::unordered_map<std::string, std::size_t> index_;
};

}  // namespace lav2::io
