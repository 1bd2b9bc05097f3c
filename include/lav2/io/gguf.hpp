// Reader for GGUF v2/v3 files (llama.cpp's format), memory-mapped.
//
// ---- The format (all little-endian) -------------------------------------------------------------
//   magic "GGUF", u32 version (2 or 3), u64 tensor count, u64 metadata count
//   metadata:  string key, u32 gguf_type, value          string = u64 length + bytes (no NUL)
//              an array value is u32 element type, u64 count, elements
//   tensors:   string name, u32 n_dims, u64 ne[n_dims] (ne[0] is the row length), u32 ggml_type,
//              u64 offset into the data section
//   padding to general.alignment (u32, default 32), then the data section
// A tensor's lav2 shape is ne reversed (ne[1] x ne[0] for a matrix: PyTorch's [out, in]).
//
// ---- Checks (load_error or limit_error "gguf '<path>': ..." naming the key or tensor) ----------
// Those of llama.cpp's gguf_init_from_file, and more:
//   - magic; version 2 or 3 (1 is refused as llama.cpp does; a byte-swapped version names it)
//   - counts within GgufLimits and within what the bytes left can hold, before any allocation
//   - every length inside the file; keys non-empty, unique; value and element types known;
//     arrays do not nest; general.alignment, if present, a u32 power of two
//   - tensor names non-empty, under 64 bytes (GGML_MAX_NAME), unique; n_dims <= 4; ne >= 0 with
//     an element count that fits int64; a known ggml type that lav2 reads; ne[0] a multiple of the
//     type's block size
//   - offsets exactly as llama.cpp lays them out: in order, each at the previous tensor's end
//     padded to the alignment, the first at 0; so tensors never overlap, and every byte of each
//     lies inside the file (the padding after the last tensor may be missing: llama.cpp's mmap
//     loader checks the tensors' bytes only)
//   - each tensor's data address aligned for its element type (the views are used in place)
#pragma once

#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "lav2/core/error.hpp"
#include "lav2/io/bytes.hpp"
#include "lav2/io/gguf_value.hpp"
#include "lav2/io/limits.hpp"
#include "lav2/io/mmap.hpp"
#include "lav2/io/tensor_map.hpp"

namespace lav2::io {

inline constexpr std::uint64_t kGgufDefaultAlignment = 32;
inline constexpr std::size_t kGgufMaxNameBytes = 63;  // llama.cpp's GGML_MAX_NAME is 64 with the NUL

/// \brief One tensor as the file describes it.
struct GgufTensorInfo {
  std::string name;
  const GgmlType* type = nullptr;
  std::vector<std::int64_t> ne;  ///< ggml order: ne[0] is the row length
  std::uint64_t offset = 0;      ///< into the data section
  std::uint64_t bytes = 0;
};

/// \brief An opened GGUF file: its metadata, its tensors' descriptions, and checked views.
class GgufFile {
 public:
  explicit GgufFile(const std::string& path, const GgufLimits& limits = {})
      : GgufFile(MappedFile::open(path, "gguf"), limits) {}
  /// \brief Reads an already mapped file, or bytes held in memory (MappedFile::from_buffer).
  explicit GgufFile(std::shared_ptr<const MappedFile> file, const GgufLimits& limits = {})
      : file_(std::move(file)), ctx_("gguf '" + file_->path() + "'") {
    parse_(limits);
  }

  const std::string& path() const { return file_->path(); }
  std::uint32_t version() const { return version_; }
  std::uint64_t alignment() const { return alignment_; }
  /// Byte offset of the data section in the file (tensor offsets count from here).
  std::uint64_t data_offset() const { return data_offset_; }
  const std::map<std::string, GgufValue>& metadata() const { return metadata_; }
  /// In file order.
  const std::vector<GgufTensorInfo>& tensor_infos() const { return infos_; }
  const TensorMap& tensors() const { return tensors_; }
  std::shared_ptr<const void> keep_alive() const { return file_; }

  /// The value of `key`, or null.
  const GgufValue* find(const std::string& key) const {
    const auto it = metadata_.find(key);
    return it == metadata_.end() ? nullptr : &it->second;
  }
  /// An integer value of `key` (any integer type), checked to lie in [lo, hi]; `fallback` when absent.
  std::int64_t get_int(const std::string& key, std::int64_t fallback, std::int64_t lo, std::int64_t hi) const {
    const GgufValue* v = find(key);
    if (!v) return fallback;
    if (!v->is_integer())
      LAV2_THROW(load_error, ctx_, ": key '", key, "' is ", gguf_type_name(v->type), ", expected an integer");
    if (v->type == GgufType::u64 && v->u > std::uint64_t(INT64_MAX))
      LAV2_THROW(load_error, ctx_, ": key '", key, "' is ", v->u, ", expected ", lo, "..", hi);
    if (v->i < lo || v->i > hi)
      LAV2_THROW(load_error, ctx_, ": key '", key, "' is ", v->i, ", expected ", lo, "..", hi);
    return v->i;
  }
  /// An integer value of `key` that must be present.
  std::int64_t require_int(const std::string& key, std::int64_t lo, std::int64_t hi) const {
    if (!find(key)) LAV2_THROW(load_error, ctx_, ": key '", key, "' is missing");
    return get_int(key, 0, lo, hi);
  }
  /// A float value of `key` (f32 or f64); `fallback` when absent.
  double get_float(const std::string& key, double fallback) const {
    const GgufValue* v = find(key);
    if (!v) return fallback;
    if (!v->is_float())
      LAV2_THROW(load_error, ctx_, ": key '", key, "' is ", gguf_type_name(v->type), ", expected f32 or f64");
    return v->f;
  }
  /// A string value of `key`; `fallback` when absent.
  std::string get_string(const std::string& key, const std::string& fallback) const {
    const GgufValue* v = find(key);
    if (!v) return fallback;
    if (v->type != GgufType::string)
      LAV2_THROW(load_error, ctx_, ": key '", key, "' is ", gguf_type_name(v->type), ", expected a string");
    return v->str;
  }
  bool get_bool(const std::string& key, bool fallback) const {
    const GgufValue* v = find(key);
    if (!v) return fallback;
    if (v->type != GgufType::boolean)
      LAV2_THROW(load_error, ctx_, ": key '", key, "' is ", gguf_type_name(v->type), ", expected a bool");
    return v->b;
  }
  /// The array of `key`, whose elements must be `element` (null when absent).
  const std::vector<GgufValue>* get_array(const std::string& key, GgufType element) const {
    const GgufValue* v = find(key);
    if (!v) return nullptr;
    if (v->type != GgufType::array || v->element != element)
      LAV2_THROW(load_error, ctx_, ": key '", key, "' is ", gguf_type_name(v->type),
                 v->type == GgufType::array ? std::string(" of ") + gguf_type_name(v->element) : std::string(),
                 ", expected an array of ", gguf_type_name(element));
    return &v->items;
  }

 private:
  // Bounds-checked little-endian reads at pos_; `what` names the field in the message.
  void need_(std::uint64_t n, const std::string& what) const {
    if (!detail::in_range(pos_, n, file_->size()))
      LAV2_THROW(load_error, ctx_, ": ", what, " at byte ", pos_, " needs ", n, " bytes, past the file end (",
                 file_->size(), " bytes; truncated?)");
  }
  std::uint32_t u32_(const std::string& what) {
    need_(4, what);
    const std::uint32_t v = detail::le32(file_->data() + pos_);
    pos_ += 4;
    return v;
  }
  std::uint64_t u64_(const std::string& what) {
    need_(8, what);
    const std::uint64_t v = detail::le64(file_->data() + pos_);
    pos_ += 8;
    return v;
  }
  std::string string_(const std::string& what, const GgufLimits& lim) {
    const std::uint64_t n = u64_(what + " length");
    if (n > lim.max_string_bytes)
      LAV2_THROW(limit_error, ctx_, ": ", what, " at byte ", pos_ - 8, " is ", n, " bytes, over the limit of ",
                 lim.max_string_bytes);
    need_(n, what);
    std::string s(reinterpret_cast<const char*>(file_->data() + pos_), std::size_t(n));
    pos_ += n;
    return s;
  }
  GgufType type_(const std::string& what) {
    const std::uint32_t t = u32_(what);
    if (t >= kGgufTypeCount)
      LAV2_THROW(load_error, ctx_, ": ", what, " is ", t, ", not a GGUF type (0..", kGgufTypeCount - 1, ")");
    return GgufType(t);
  }

  GgufValue scalar_(GgufType t, const std::string& what, const GgufLimits& lim) {
    GgufValue v;
    v.type = t;
    switch (t) {
      case GgufType::u8: need_(1, what), v.i = file_->data()[pos_], pos_ += 1; break;
      case GgufType::i8: need_(1, what), v.i = std::int8_t(file_->data()[pos_]), pos_ += 1; break;
      case GgufType::boolean: {
        need_(1, what);
        const unsigned char c = file_->data()[pos_++];
        if (c > 1) LAV2_THROW(load_error, ctx_, ": ", what, " is a bool of value ", int(c), ", expected 0 or 1");
        v.b = c != 0;
        break;
      }
      case GgufType::u16: need_(2, what), v.i = detail::le16(file_->data() + pos_), pos_ += 2; break;
      case GgufType::i16: need_(2, what), v.i = std::int16_t(detail::le16(file_->data() + pos_)), pos_ += 2; break;
      case GgufType::u32: v.i = u32_(what); break;
      case GgufType::i32: v.i = std::int32_t(u32_(what)); break;
      case GgufType::u64: v.u = u64_(what), v.i = std::int64_t(v.u); break;
      case GgufType::i64: v.i = std::int64_t(u64_(what)); break;
      case GgufType::f32: {
        const std::uint32_t bits = u32_(what);
        float x;
        std::memcpy(&x, &bits, 4);
        v.f = x;
        break;
      }
      case GgufType::f64: {
        const std::uint64_t bits = u64_(what);
        std::memcpy(&v.f, &bits, 8);
        break;
      }
      case GgufType::string: v.str = string_(what, lim); break;
      case GgufType::array: LAV2_THROW(load_error, ctx_, ": ", what, " is an array inside an array (not supported)");
    }
    if (t != GgufType::u64) v.u = std::uint64_t(v.i);
    return v;
  }

  GgufValue value_(const std::string& key, const GgufLimits& lim) {
    const std::string what = "key '" + key + "'";
    const GgufType t = type_(what + " value type");
    if (t != GgufType::array) return scalar_(t, what, lim);
    GgufValue v;
    v.type = GgufType::array;
    v.element = type_(what + " array element type");
    if (v.element == GgufType::array)
      LAV2_THROW(load_error, ctx_, ": key '", key, "' is an array of arrays (llama.cpp refuses them too)");
    const std::uint64_t n = u64_(what + " array count");
    // Each element takes at least its fixed size (8 for a string's length), so a count the bytes
    // left cannot hold is refused before anything is allocated.
    const std::uint64_t min_bytes = v.element == GgufType::string ? 8 : gguf_type_size(v.element);
    if (n > lim.max_array_elements)
      LAV2_THROW(limit_error, ctx_, ": key '", key, "' array of ", n, " elements, over the limit of ",
                 lim.max_array_elements);
    if (n > (file_->size() - pos_) / min_bytes)
      LAV2_THROW(load_error, ctx_, ": key '", key, "' array of ", n, " ", gguf_type_name(v.element),
                 " elements cannot fit in the ", file_->size() - pos_, " bytes left (truncated?)");
    v.items.reserve(std::size_t(n));
    for (std::uint64_t i = 0; i < n; ++i)
      v.items.push_back(scalar_(v.element, what + "[" + std::to_string(i) + "]", lim));
    return v;
  }

  void parse_(const GgufLimits& lim) {
    need_(4, "magic");
    if (std::memcmp(file_->data(), "GGUF", 4) != 0)
      LAV2_THROW(load_error, ctx_, ": not a GGUF file (the first 4 bytes are not 'GGUF')");
    pos_ = 4;
    version_ = u32_("version");
    if (version_ == 1) LAV2_THROW(load_error, ctx_, ": GGUF version 1 is not supported (only 2 and 3, as llama.cpp)");
    if (version_ == 0x02000000u || version_ == 0x03000000u)
      LAV2_THROW(load_error, ctx_, ": version ", version_,
                 " is a byte-swapped 2 or 3: a big-endian GGUF, not supported");
    if (version_ != 2 && version_ != 3) LAV2_THROW(load_error, ctx_, ": version ", version_, ", expected 2 or 3");
    const std::uint64_t n_tensors = u64_("tensor count"), n_kv = u64_("metadata count");
    if (n_tensors > lim.max_tensors)
      LAV2_THROW(limit_error, ctx_, ": ", n_tensors, " tensors, over the limit of ", lim.max_tensors);
    if (n_kv > lim.max_keys)
      LAV2_THROW(limit_error, ctx_, ": ", n_kv, " metadata keys, over the limit of ", lim.max_keys);
    // A key takes >= 12 bytes (length + type), a tensor >= 24 (length, n_dims, type, offset).
    if (n_kv > (file_->size() - pos_) / 12 || n_tensors > (file_->size() - pos_) / 24)
      LAV2_THROW(load_error, ctx_, ": ", n_kv, " keys and ", n_tensors, " tensors cannot fit in the ",
                 file_->size() - pos_, " bytes left (truncated?)");

    for (std::uint64_t i = 0; i < n_kv; ++i) {
      std::string key = string_("key " + std::to_string(i), lim);
      if (key.empty()) LAV2_THROW(load_error, ctx_, ": key ", i, " is empty");
      if (metadata_.count(key)) LAV2_THROW(load_error, ctx_, ": key ", detail::quoted(key), " appears twice");
      GgufValue v = value_(key, lim);
      metadata_.emplace(std::move(key), std::move(v));
    }
    if (const GgufValue* a = find("general.alignment")) {
      if (a->type != GgufType::u32)
        LAV2_THROW(load_error, ctx_, ": key 'general.alignment' is ", gguf_type_name(a->type), ", expected u32");
      if (a->i == 0 || (a->i & (a->i - 1)) != 0)
        LAV2_THROW(load_error, ctx_, ": general.alignment ", a->i, " is not a power of 2");
      alignment_ = std::uint64_t(a->i);
    }

    std::set<std::string> names;
    for (std::uint64_t i = 0; i < n_tensors; ++i) infos_.push_back(tensor_info_(i, names, lim));

    const std::uint64_t data_start = (pos_ + alignment_ - 1) / alignment_ * alignment_;
    data_offset_ = data_start;
    std::uint64_t expected = 0;
    for (const GgufTensorInfo& t : infos_) {
      const std::string where = ctx_ + ": tensor " + detail::quoted(t.name);
      if (t.offset != expected)
        LAV2_THROW(load_error, where, ": offset ", t.offset, ", expected ", expected,
                   " (tensors follow each other in order, each padded to ", alignment_, " bytes)");
      std::uint64_t begin = 0;
      if (!detail::add_ok(data_start, t.offset, begin) || !detail::in_range(begin, t.bytes, file_->size()))
        LAV2_THROW(load_error, where, ": data [", data_start, " + ", t.offset, ", +", t.bytes,
                   " bytes) lies outside the file of ", file_->size(), " bytes (truncated?)");
      const std::uint64_t padded = (t.bytes + alignment_ - 1) / alignment_ * alignment_;
      if (!detail::add_ok(expected, padded, expected)) LAV2_THROW(load_error, where, ": offsets overflow");
      const std::uint64_t element_align = t.type->block_size == 1 ? t.type->block_bytes : 2;
      const unsigned char* data = file_->data() + begin;
      if (reinterpret_cast<std::uintptr_t>(data) % element_align != 0)
        LAV2_THROW(load_error, where, ": data at byte ", begin, " is not aligned to ", element_align, " bytes for ",
                   t.type->name, " (general.alignment ", alignment_, ")");
      AnyTensorView view;
      view.dtype = t.type->dtype;
      view.data = data;
      view.shape.rank = int(t.ne.size());
      for (std::size_t d = 0; d < t.ne.size(); ++d) view.shape.dims[d] = t.ne[t.ne.size() - 1 - d];
      view.strides = contiguous_strides(view.shape);
      tensors_.emplace(t.name, view);
    }
  }

  GgufTensorInfo tensor_info_(std::uint64_t i, std::set<std::string>& names, const GgufLimits& lim) {
    GgufTensorInfo t;
    t.name = string_("tensor " + std::to_string(i) + " name", lim);
    const std::string where = ctx_ + ": tensor " + detail::quoted(t.name);
    if (t.name.empty()) LAV2_THROW(load_error, ctx_, ": tensor ", i, " has an empty name");
    if (t.name.size() > kGgufMaxNameBytes)
      LAV2_THROW(load_error, where, ": name of ", t.name.size(), " bytes, over ggml's ", kGgufMaxNameBytes);
    if (!names.insert(t.name).second) LAV2_THROW(load_error, where, ": name appears twice");
    const std::uint32_t n_dims = u32_("tensor '" + t.name + "' n_dims");
    if (n_dims > 4) LAV2_THROW(load_error, where, ": ", n_dims, " dimensions, ggml allows at most 4");
    std::uint64_t numel = 1;
    for (std::uint32_t d = 0; d < n_dims; ++d) {
      const std::uint64_t n = u64_("tensor '" + t.name + "' ne[" + std::to_string(d) + "]");
      if (n > std::uint64_t(INT64_MAX) || !detail::mul_ok(numel, n, numel) || numel > std::uint64_t(INT64_MAX))
        LAV2_THROW(load_error, where, ": ne[", d, "] = ", n, " makes the element count overflow int64");
      t.ne.push_back(std::int64_t(n));
    }
    const std::uint32_t type = u32_("tensor '" + t.name + "' type");
    t.type = find_ggml_type(type);
    if (!t.type) LAV2_THROW(load_error, where, ": ggml type ", type, " is not a ggml type");
    if (!t.type->supported)
      LAV2_THROW(load_error, where, ": ggml type ", t.type->name,
                 " is not supported (lav2 reads F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K, I8..I64)");
    const std::int64_t row = t.ne.empty() ? 1 : t.ne[0];
    if (row % t.type->block_size != 0)
      LAV2_THROW(load_error, where, ": ne[0] = ", row, ": rows of ", row, " elements are not a multiple of ",
                 t.type->name, "'s block of ", t.type->block_size);
    if (!detail::mul_ok(numel / std::uint64_t(t.type->block_size), t.type->block_bytes, t.bytes) ||
        t.bytes > lim.max_tensor_bytes)
      LAV2_THROW(limit_error, where, ": ", numel, " elements of ", t.type->name, " exceed the tensor limit of ",
                 lim.max_tensor_bytes, " bytes");
    t.offset = u64_("tensor '" + t.name + "' offset");
    return t;
  }

  std::shared_ptr<const MappedFile> file_;
  std::string ctx_;
  std::uint64_t pos_ = 0;
  std::uint32_t version_ = 0;
  std::uint64_t alignment_ = kGgufDefaultAlignment;
  std::uint64_t data_offset_ = 0;
  std::map<std::string, GgufValue> metadata_;
  std::vector<GgufTensorInfo> infos_;
  TensorMap tensors_;
};

}  // namespace lav2::io
