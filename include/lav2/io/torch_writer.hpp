// Writer of torch.save files (the zip format of PyTorch >= 1.6), such that
// torch.load(path, weights_only=True) and lav2's reader (io/torch_checkpoint.hpp) accept them.
// It writes a tree of None, bool, int, str, dict (str keys, in insertion order) and dense tensors;
// floats are left out on purpose: torch 1.13's weights_only unpickler has no BINFLOAT.
//
// ---- The file, field by field ---------------------------------------------------------------------
// A zip archive of STORED entries under one top folder, "archive" (what torch >= 2.0 names it):
//   archive/data.pkl     the pickle (below)
//   archive/data/<k>     one storage per tensor, k = 0, 1, ... in the order the tensors are
//                        pickled: numel elements, little-endian, no header
//   archive/version      "3\n", the format version torch 1.6 .. 2.x writes and requires
// Every entry: a local header (signature 0x04034b50, version needed 20, flags 0, method 0
// (stored), time and date 0, CRC-32, compressed size = size, name length, extra length), the
// name, an extra field that pads the data to a 64-byte boundary as torch does (header id 0x4246
// "FB", its size, zero bytes), then the data. Then the central directory, one record per entry
// (signature 0x02014b50, version made by and needed 20, the local header's fields, no extra or
// comment, the local header's offset), and the end record (signature 0x06054b50, single disk,
// the entry count, the directory's size and offset, no comment). No ZIP64: an archive past
// 4 GiB is refused.
//
// ---- The pickle (protocol 2, the opcodes torch.save's pickler emits) -------------------------------
//   PROTO 2, the value, STOP, where a value is
//     None NONE; bool NEWTRUE / NEWFALSE; int BININT1 / BININT2 / BININT / LONG1 (8 bytes);
//     str BINUNICODE (u32 length, UTF-8); dict EMPTY_DICT, then MARK key value ... SETITEMS
//     (none when empty)
//     tensor  GLOBAL torch._utils _rebuild_tensor_v2, MARK
//               MARK 'storage' GLOBAL torch <T>Storage '<k>' 'cpu' numel TUPLE BINPERSID
//               0 (storage_offset)   MARK sizes... TUPLE   MARK strides... TUPLE (C order)
//               NEWFALSE (requires_grad)   GLOBAL collections OrderedDict EMPTY_TUPLE REDUCE
//             TUPLE REDUCE
//   <T> by dtype: Float f32, Half f16, BFloat16 bf16, Long i64, Int i32, Short i16, Char i8,
//   Byte u8, Bool bool; the block-quantised types are refused.
// No memo (BINPUT) is written: nothing is shared.
//
// ---- Atomic writes ------------------------------------------------------------------------------------
// The archive is written to "<path>.tmp", flushed and fsync'ed, then renamed over <path>, so an
// interrupted write leaves the previous file (or none), never a partial one.
#pragma once

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <initializer_list>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <unistd.h>

#include "lav2/core/error.hpp"
#include "lav2/io/bytes.hpp"
#include "lav2/tensor/tensor.hpp"

namespace lav2::io {

/// \brief A value for save_torch(): None, bool, int, str, dict or a dense tensor (a view: the data
/// must stay valid until save_torch() returns).
class SaveValue {
 public:
  enum class Kind { none, boolean, integer, string, dict, tensor };

  SaveValue() = default;
  static SaveValue boolean(bool b) { return SaveValue(Kind::boolean, b); }
  static SaveValue integer(std::int64_t i) { return SaveValue(Kind::integer, i); }
  static SaveValue string(std::string s) { return SaveValue(Kind::string, 0, std::move(s)); }
  static SaveValue dict() { return SaveValue(Kind::dict); }
  /// A C-contiguous tensor of `t.dtype`, `t.shape` at `t.data`.
  static SaveValue tensor(const AnyTensorView& t) { return SaveValue(Kind::tensor, 0, {}, t); }

  Kind kind() const { return kind_; }
  /// Adds `key` to a dict (input_error on a duplicate or on a value that is not a dict); returns
  /// the stored value.
  SaveValue& set(const std::string& key, SaveValue v) {
    if (kind_ != Kind::dict) LAV2_THROW(input_error, "save_torch: set('", key, "') on a value that is not a dict");
    for (const auto& kv : items_)
      if (kv.first == key) LAV2_THROW(input_error, "save_torch: key '", key, "' set twice");
    items_.emplace_back(key, std::move(v));
    return items_.back().second;
  }
  const std::vector<std::pair<std::string, SaveValue>>& items() const { return items_; }
  bool as_bool() const { return i_ != 0; }
  std::int64_t as_int() const { return i_; }
  const std::string& as_str() const { return s_; }
  const AnyTensorView& as_tensor() const { return t_; }

 private:
  explicit SaveValue(Kind k, std::int64_t i = 0, std::string s = {}, const AnyTensorView& t = {})
      : kind_(k), i_(i), s_(std::move(s)), t_(t) {}
  Kind kind_ = Kind::none;
  std::int64_t i_ = 0;
  std::string s_;
  AnyTensorView t_;
  std::vector<std::pair<std::string, SaveValue>> items_;
};

namespace detail {

inline const char* torch_storage_name(DType t) {
  switch (t) {
    case DType::f32: return "FloatStorage";
    case DType::f16: return "HalfStorage";
    case DType::bf16: return "BFloat16Storage";
    case DType::i64: return "LongStorage";
    case DType::i32: return "IntStorage";
    case DType::i16: return "ShortStorage";
    case DType::i8: return "CharStorage";
    case DType::u8: return "ByteStorage";
    case DType::boolean: return "BoolStorage";
    default: return nullptr;
  }
}

// The pickle of a SaveValue tree, and the tensors in storage order.
class Pickler {
 public:
  std::string out;
  std::vector<AnyTensorView> storages;

  void run(const SaveValue& root) {
    out += "\x80\x02";
    value_(root, "");
    out += '.';
  }

 private:
  void u32_(std::uint32_t v) {
    for (int i = 0; i < 4; ++i) out += char((v >> (8 * i)) & 0xffu);
  }
  void int_(std::int64_t v) {
    if (v >= 0 && v < 256) {
      out += 'K';
      out += char(v);
    } else if (v >= 0 && v < 65536) {
      out += 'M';
      out += char(v & 0xff);
      out += char((v >> 8) & 0xff);
    } else if (v >= INT32_MIN && v <= INT32_MAX) {
      out += 'J';
      u32_(std::uint32_t(std::int32_t(v)));
    } else {
      out += '\x8a';
      out += char(8);
      const std::uint64_t u = std::uint64_t(v);
      for (int i = 0; i < 8; ++i) out += char((u >> (8 * i)) & 0xffu);
    }
  }
  void str_(const std::string& s) {
    out += 'X';
    u32_(std::uint32_t(s.size()));
    out += s;
  }
  void global_(const char* module, const char* name) {
    out += 'c';
    out += module;
    out += '\n';
    out += name;
    out += '\n';
  }
  void tensor_(const AnyTensorView& t, const std::string& name) {
    const char* storage = torch_storage_name(t.dtype);
    if (!storage)
      LAV2_THROW(input_error, "save_torch: tensor '", name, "' is ", dtype_name(t.dtype),
                 ", which torch has no storage for");
    if (!t.data && t.numel() > 0) LAV2_THROW(input_error, "save_torch: tensor '", name, "' has no data");
    std::int64_t expect = 1;
    for (int i = t.shape.rank - 1; i >= 0; --i) {
      if (t.strides[i] != 0 && t.strides[i] != expect && t.shape.dims[i] > 1)
        LAV2_THROW(input_error, "save_torch: tensor '", name, "' is not C-contiguous");
      expect *= t.shape.dims[i];
    }
    const std::string key = std::to_string(storages.size());
    storages.push_back(t);
    global_("torch._utils", "_rebuild_tensor_v2");
    out += '(';
    out += '(';
    str_("storage");
    global_("torch", storage);
    str_(key);
    str_("cpu");
    int_(t.numel());
    out += 't';
    out += 'Q';
    int_(0);
    out += '(';
    for (int i = 0; i < t.shape.rank; ++i) int_(t.shape.dims[i]);
    out += 't';
    out += '(';
    std::int64_t stride = 1;
    std::vector<std::int64_t> strides(std::size_t(t.shape.rank));
    for (int i = t.shape.rank - 1; i >= 0; --i) {
      strides[std::size_t(i)] = stride;
      stride *= t.shape.dims[i];
    }
    for (std::int64_t s : strides) int_(s);
    out += 't';
    out += '\x89';
    global_("collections", "OrderedDict");
    out += ')';
    out += 'R';
    out += 't';
    out += 'R';
  }
  void value_(const SaveValue& v, const std::string& name) {
    switch (v.kind()) {
      case SaveValue::Kind::none: out += 'N'; return;
      case SaveValue::Kind::boolean: out += v.as_bool() ? '\x88' : '\x89'; return;
      case SaveValue::Kind::integer: int_(v.as_int()); return;
      case SaveValue::Kind::string: str_(v.as_str()); return;
      case SaveValue::Kind::tensor: tensor_(v.as_tensor(), name); return;
      case SaveValue::Kind::dict:
        out += '}';
        if (v.items().empty()) return;
        out += '(';
        for (const auto& kv : v.items()) {
          str_(kv.first);
          value_(kv.second, name.empty() ? kv.first : name + "." + kv.first);
        }
        out += 'u';
        return;
    }
  }
};

// Writes the zip to one FILE*, keeping the offsets for the central directory.
class ZipStoreWriter {
 public:
  ZipStoreWriter(std::FILE* f, std::string path) : f_(f), path_(std::move(path)) {}

  void entry(const std::string& name, const unsigned char* data, std::uint64_t size) {
    const std::uint32_t crc = crc32(data, std::size_t(size));
    const std::uint64_t header = 30 + name.size();
    std::uint64_t pad = (64 - (offset_ + header) % 64) % 64;
    if (pad != 0 && pad < 4) pad += 64;  // an extra field holds at least its 4-byte header
    Record r{name, crc, size, offset_};
    // local header: signature, version needed, flags, method, time, date, crc, sizes, name and
    // extra lengths
    std::string h = le_({{4, 0x04034b50u},
                         {2, 20},
                         {2, 0},
                         {2, 0},
                         {2, 0},
                         {2, 0},
                         {4, crc},
                         {4, std::uint32_t(size)},
                         {4, std::uint32_t(size)},
                         {2, std::uint32_t(name.size())},
                         {2, std::uint32_t(pad)}});
    h += name;
    if (pad) {
      h += le_({{2, 0x4246u}, {2, std::uint32_t(pad - 4)}});  // "FB", torch's padding field
      h.append(std::size_t(pad - 4), '\0');
    }
    write_(h.data(), h.size());
    write_(data, std::size_t(size));
    records_.push_back(std::move(r));
  }

  void finish() {
    const std::uint64_t cd_offset = offset_;
    std::string cd;
    for (const Record& r : records_) {
      // central record: signature, version made by and needed, flags, method, time, date, crc,
      // sizes, name / extra / comment lengths, disk, internal and external attributes, offset
      cd += le_({{4, 0x02014b50u},
                 {2, 20},
                 {2, 20},
                 {2, 0},
                 {2, 0},
                 {2, 0},
                 {2, 0},
                 {4, r.crc},
                 {4, std::uint32_t(r.size)},
                 {4, std::uint32_t(r.size)},
                 {2, std::uint32_t(r.name.size())},
                 {2, 0},
                 {2, 0},
                 {2, 0},
                 {2, 0},
                 {4, 0},
                 {4, std::uint32_t(r.offset)}});
      cd += r.name;
    }
    write_(cd.data(), cd.size());
    const std::uint32_t n = std::uint32_t(records_.size());
    // end record: signature, disk, directory's disk, entries here and in all, size, offset, comment
    const std::string end = le_({{4, 0x06054b50u},
                                 {2, 0},
                                 {2, 0},
                                 {2, n},
                                 {2, n},
                                 {4, std::uint32_t(cd.size())},
                                 {4, std::uint32_t(cd_offset)},
                                 {2, 0}});
    if (offset_ + end.size() >= (std::uint64_t(1) << 32) || records_.size() >= 65535)
      LAV2_THROW(input_error, "save_torch '", path_, "': ", offset_, " bytes in ", records_.size(),
                 " entries need ZIP64, which this writer does not write (at most 4 GiB, 65534 entries)");
    write_(end.data(), end.size());
  }

 private:
  struct Record {
    std::string name;
    std::uint32_t crc;
    std::uint64_t size, offset;
  };
  // Little-endian fields of {bytes, value}.
  static std::string le_(std::initializer_list<std::pair<int, std::uint32_t>> fields) {
    std::string s;
    for (const auto& [bytes, v] : fields)
      for (int i = 0; i < bytes; ++i) s += char((v >> (8 * i)) & 0xffu);
    return s;
  }
  void write_(const void* p, std::size_t n) {
    if (offset_ + n >= (std::uint64_t(1) << 32))
      LAV2_THROW(input_error, "save_torch '", path_, "': the archive passes 4 GiB, which needs ZIP64 (not written)");
    if (n && std::fwrite(p, 1, n, f_) != n) LAV2_THROW(input_error, "save_torch: cannot write '", path_, "'");
    offset_ += n;
  }
  std::FILE* f_;
  std::string path_;
  std::uint64_t offset_ = 0;
  std::vector<Record> records_;
};

}  // namespace detail

/// \brief Writes `root` as a torch.save file at `path`, atomically (format above). Throws
/// input_error naming the file when it cannot be written, the tensor when it cannot be stored.
inline void save_torch(const std::string& path, const SaveValue& root) {
  detail::Pickler p;
  p.run(root);
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) LAV2_THROW(input_error, "cannot create '", tmp, "'");
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> closer(f, &std::fclose);
  try {
    detail::ZipStoreWriter z(f, tmp);
    z.entry("archive/data.pkl", reinterpret_cast<const unsigned char*>(p.out.data()), p.out.size());
    for (std::size_t i = 0; i < p.storages.size(); ++i) {
      const AnyTensorView& t = p.storages[i];
      z.entry("archive/data/" + std::to_string(i), static_cast<const unsigned char*>(t.data),
              dtype_row_bytes(t.dtype, t.numel()));
    }
    const std::string version = "3\n";
    z.entry("archive/version", reinterpret_cast<const unsigned char*>(version.data()), version.size());
    z.finish();
    if (std::fflush(f) != 0 || ::fsync(::fileno(f)) != 0) LAV2_THROW(input_error, "cannot write '", tmp, "'");
    closer.reset();
    std::error_code ec;
    std::filesystem::rename(tmp, path, ec);
    if (ec) LAV2_THROW(input_error, "cannot rename '", tmp, "' to '", path, "': ", ec.message());
  } catch (...) {
    closer.reset();
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
    throw;
  }
}

}  // namespace lav2::io
