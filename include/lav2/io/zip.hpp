// A read-only zip reader for archives of STORED entries, the form torch.save writes
// (PyTorchStreamWriter: method 0, each entry's data 64-byte aligned through padding in the local
// extra field, ZIP64 records once an archive or entry passes 4 GiB).
//
// Layout read (APPNOTE.TXT 6.3), all integers little-endian:
//   [local header 30 B + name + extra][data] ... per entry
//   [central directory: one 46 B record + name + extra + comment per entry]
//   [ZIP64 end of central directory record, 56 B]   only in ZIP64 archives
//   [ZIP64 end of central directory locator, 20 B]  only in ZIP64 archives
//   [end of central directory record, 22 B + comment (<= 65535 B)]
//
// Checks, each failing with load_error "<what> '<path>': ...":
//   - the EOCD signature within the last 22 + 65535 bytes, its comment ending exactly at EOF;
//     single-disk archive; ZIP64 locator/record used when present or when a field is saturated;
//   - the central directory inside the file, before the EOCD records; entry count within the
//     limits and within what the directory's size can hold (46 B per record) before reserving;
//   - each record: signature, name/extra/comment inside the directory, ZIP64 extra field for
//     every saturated field, not encrypted, STORED entries have equal sizes;
//   - each name: non-empty, bounded, no NUL or backslash, not absolute, no '..' component,
//     no duplicate;
//   - each local header: inside the file, signature, same name as the central record; its data
//     [start, start + compressed size) inside the file and before the central directory;
//   - no two entries (local header through data) overlap.
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

namespace lav2::io {

/// \brief One entry of a zip archive.
struct ZipEntry {
  std::string name;
  std::uint16_t method = 0;  ///< 0 = stored, 8 = deflate, ...
  std::uint32_t crc32 = 0;
  std::uint64_t compressed_size = 0;
  std::uint64_t size = 0;  ///< uncompressed size
  std::uint64_t local_header_offset = 0;
  std::uint64_t data_offset = 0;  ///< first data byte, from the file start
};

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
    const std::uint64_t fsize = file_->size();
    if (fsize < 22)
      LAV2_THROW(load_error, ctx_, ": ", fsize, " bytes is too short for a zip archive (end record needs 22)");

    // End of central directory: scan backwards over at most 65535 comment bytes.
    std::uint64_t eocd = UINT64_MAX;
    const std::uint64_t lowest = fsize >= 22 + 65535 ? fsize - 22 - 65535 : 0;
    for (std::uint64_t pos = fsize - 22 + 1; pos-- > lowest;) {
      if (le32(base + pos) == 0x06054b50u && pos + 22 + le16(base + pos + 20) == fsize) {
        eocd = pos;
        break;
      }
    }
    if (eocd == UINT64_MAX)
      LAV2_THROW(load_error, ctx_, ": no end-of-central-directory record (truncated or not a zip archive)");
    const unsigned char* e = base + eocd;
    if (le16(e + 4) != 0 || le16(e + 6) != 0)
      LAV2_THROW(load_error, ctx_, ": multi-disk archives are not supported (disk ", le16(e + 4), ")");
    std::uint64_t n_entries = le16(e + 10);
    std::uint64_t cd_size = le32(e + 12);
    std::uint64_t cd_offset = le32(e + 16);
    std::uint64_t cd_limit = eocd;  // the directory must end before this

    const bool locator = eocd >= 20 && le32(base + eocd - 20) == 0x07064b50u;
    if (locator || n_entries == 0xffffu || cd_size == 0xffffffffu || cd_offset == 0xffffffffu) {
      if (!locator) LAV2_THROW(load_error, ctx_, ": end record has saturated fields but no ZIP64 locator");
      const unsigned char* l = base + eocd - 20;
      if (le32(l + 4) != 0 || le32(l + 16) > 1)
        LAV2_THROW(load_error, ctx_, ": multi-disk ZIP64 archives are not supported");
      const std::uint64_t z = le64(l + 8);
      if (!in_range(z, 56, eocd - 20))
        LAV2_THROW(load_error, ctx_, ": ZIP64 end record offset ", z, " is outside [0, ", eocd - 20 - 56, "]");
      const unsigned char* r = base + z;
      if (le32(r) != 0x06064b50u) LAV2_THROW(load_error, ctx_, ": bad ZIP64 end record signature at offset ", z);
      if (le32(r + 16) != 0 || le32(r + 20) != 0)
        LAV2_THROW(load_error, ctx_, ": multi-disk ZIP64 archives are not supported");
      n_entries = le64(r + 32);
      if (le64(r + 24) != n_entries)
        LAV2_THROW(load_error, ctx_, ": ZIP64 end record lists ", le64(r + 24), " entries on this disk, ", n_entries,
                   " in total");
      cd_size = le64(r + 40);
      cd_offset = le64(r + 48);
      cd_limit = z;
    } else if (le16(e + 8) != n_entries) {
      LAV2_THROW(load_error, ctx_, ": end record lists ", le16(e + 8), " entries on this disk, ", n_entries,
                 " in total");
    }
    if (!in_range(cd_offset, cd_size, cd_limit))
      LAV2_THROW(load_error, ctx_, ": central directory [", cd_offset, ", +", cd_size,
                 ") is outside the file before its end records (", cd_limit, " bytes)");
    if (cd_size > lim.max_central_directory_bytes)
      LAV2_THROW(limit_error, ctx_, ": central directory of ", cd_size, " bytes exceeds the limit ",
                 lim.max_central_directory_bytes);
    if (n_entries > lim.max_entries)
      LAV2_THROW(limit_error, ctx_, ": ", n_entries, " entries exceed the limit ", lim.max_entries);
    if (n_entries > cd_size / 46)
      LAV2_THROW(load_error, ctx_, ": ", n_entries, " entries cannot fit a central directory of ", cd_size, " bytes");

    entries_.reserve(std::size_t(n_entries));
    std::uint64_t pos = cd_offset;
    const std::uint64_t cd_end = cd_offset + cd_size;
    for (std::uint64_t i = 0; i < n_entries; ++i) {
      if (!in_range(pos, 46, cd_end))
        LAV2_THROW(load_error, ctx_, ": central record ", i, " at offset ", pos, " runs past the directory end ",
                   cd_end);
      const unsigned char* c = base + pos;
      if (le32(c) != 0x02014b50u)
        LAV2_THROW(load_error, ctx_, ": central record ", i, ": bad signature at offset ", pos);
      ZipEntry ent;
      const std::uint16_t flags = le16(c + 8);
      ent.method = le16(c + 10);
      ent.crc32 = le32(c + 16);
      ent.compressed_size = le32(c + 20);
      ent.size = le32(c + 24);
      const std::uint64_t name_len = le16(c + 28), extra_len = le16(c + 30), comment_len = le16(c + 32);
      std::uint64_t disk = le16(c + 34);
      ent.local_header_offset = le32(c + 42);
      const std::uint64_t var_len = name_len + extra_len + comment_len;
      if (!in_range(pos + 46, var_len, cd_end))
        LAV2_THROW(load_error, ctx_, ": central record ", i, ": name/extra/comment run past the directory end");
      if (name_len == 0) LAV2_THROW(load_error, ctx_, ": central record ", i, " has an empty name");
      if (name_len > lim.max_name_bytes)
        LAV2_THROW(limit_error, ctx_, ": central record ", i, ": name of ", name_len, " bytes exceeds the limit ",
                   lim.max_name_bytes);
      ent.name.assign(reinterpret_cast<const char*>(c + 46), std::size_t(name_len));
      check_name_(ent.name);
      if (flags & 0x41u)
        LAV2_THROW(load_error, ctx_, ": entry ", quoted(ent.name), " is encrypted (flags ", flags, ")");

      // ZIP64 extended information: present values appear in this order, only if saturated.
      const bool need_u = ent.size == 0xffffffffu, need_c = ent.compressed_size == 0xffffffffu,
                 need_o = ent.local_header_offset == 0xffffffffu, need_d = disk == 0xffffu;
      if (need_u || need_c || need_o || need_d) {
        const unsigned char* x = c + 46 + name_len;
        const unsigned char* xend = x + extra_len;
        bool found = false;
        while (xend - x >= 4) {
          const std::uint16_t id = le16(x), len = le16(x + 2);
          if (std::uint64_t(xend - x - 4) < len)
            LAV2_THROW(load_error, ctx_, ": entry ", quoted(ent.name), ": extra field runs past its record");
          if (id == 0x0001u) {
            const unsigned char* v = x + 4;
            const std::uint64_t want = 8u * (need_u + need_c + need_o) + 4u * need_d;
            if (len < want)
              LAV2_THROW(load_error, ctx_, ": entry ", quoted(ent.name), ": ZIP64 extra field holds ", len,
                         " bytes, the saturated fields need ", want);
            if (need_u) {
              ent.size = le64(v);
              v += 8;
            }
            if (need_c) {
              ent.compressed_size = le64(v);
              v += 8;
            }
            if (need_o) {
              ent.local_header_offset = le64(v);
              v += 8;
            }
            if (need_d) disk = le32(v);
            found = true;
            break;
          }
          x += 4 + len;
        }
        if (!found)
          LAV2_THROW(load_error, ctx_, ": entry ", quoted(ent.name), " has saturated sizes but no ZIP64 extra field");
      }
      if (disk != 0) LAV2_THROW(load_error, ctx_, ": entry ", quoted(ent.name), " starts on disk ", disk);
      if (ent.method == 0 && ent.compressed_size != ent.size)
        LAV2_THROW(load_error, ctx_, ": stored entry ", quoted(ent.name), " has compressed size ", ent.compressed_size,
                   " but size ", ent.size);

      // Local header: same name; data must end before the central directory.
      const std::uint64_t lh = ent.local_header_offset;
      if (!in_range(lh, 30, cd_offset))
        LAV2_THROW(load_error, ctx_, ": entry ", quoted(ent.name), ": local header offset ", lh,
                   " is outside the data area [0, ", cd_offset, ")");
      const unsigned char* l = base + lh;
      if (le32(l) != 0x04034b50u)
        LAV2_THROW(load_error, ctx_, ": entry ", quoted(ent.name), ": bad local header signature at offset ", lh);
      const std::uint64_t lname = le16(l + 26), lextra = le16(l + 28);
      if (!in_range(lh + 30, lname + lextra, cd_offset))
        LAV2_THROW(load_error, ctx_, ": entry ", quoted(ent.name), ": local header runs into the central directory");
      if (lname != name_len || std::memcmp(l + 30, ent.name.data(), std::size_t(lname)) != 0)
        LAV2_THROW(load_error, ctx_, ": entry ", quoted(ent.name), ": local header names a different entry");
      ent.data_offset = lh + 30 + lname + lextra;
      if (!in_range(ent.data_offset, ent.compressed_size, cd_offset))
        LAV2_THROW(load_error, ctx_, ": entry ", quoted(ent.name), ": data [", ent.data_offset, ", +",
                   ent.compressed_size, ") runs past the data area, which ends at ", cd_offset);
      if (!index_.emplace(ent.name, entries_.size()).second)
        LAV2_THROW(load_error, ctx_, ": duplicate entry name ", quoted(ent.name));
      entries_.push_back(std::move(ent));
      pos += 46 + var_len;
    }

    // No two entries may share bytes (local header through the end of data).
    std::vector<std::size_t> order(entries_.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      return entries_[a].local_header_offset < entries_[b].local_header_offset;
    });
    for (std::size_t k = 1; k < order.size(); ++k) {
      const ZipEntry& prev = entries_[order[k - 1]];
      const ZipEntry& cur = entries_[order[k]];
      if (cur.local_header_offset < prev.data_offset + prev.compressed_size)
        LAV2_THROW(load_error, ctx_, ": entries ", quoted(prev.name), " and ", quoted(cur.name),
                   " overlap (the second starts at ", cur.local_header_offset, ", the first ends at ",
                   prev.data_offset + prev.compressed_size, ")");
    }
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
