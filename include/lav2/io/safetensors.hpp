// Reader for .safetensors files (huggingface/safetensors format), memory-mapped.
//
// ---- The format --------------------------------------------------------------------------------
//   bytes [0, 8)        N: u64 little-endian, the header length
//   bytes [8, 8 + N)    the header: a UTF-8 JSON object, possibly padded with trailing spaces
//                         { "<name>": {"dtype": "F16", "shape": [d0, d1, ...],
//                                      "data_offsets": [begin, end]},   ... one per tensor
//                           "__metadata__": {"<key>": "<value>", ...} }  optional, str -> str
//   bytes [8 + N, EOF)  the data section; offsets are relative to its start, tensors are dense
//                       row-major little-endian
// dtype names: F32 F16 BF16 I64 I32 I16 I8 U8 BOOL are read; F64, U16, U32, U64, F8_E4M3,
// F8_E5M2 and anything else are rejected by name.
//
// ---- Checks (load_error "safetensors '<path>': ..." naming the tensor and values) --------------
//   - file >= 8 bytes; N <= limits.max_header_bytes (100 MB, the spec's bound); 8 + N <= file size
//   - the header parses as JSON, is an object, has no duplicate keys, at most max_tensors entries
//   - __metadata__, if present, is an object of string values
//   - each tensor entry: an object with exactly dtype (known name), shape (array of ints >= 0,
//     rank <= 6) and data_offsets ([begin, end], ints, begin <= end <= data section size);
//     end - begin == numel * element size, computed without overflow
//   - sorted by begin, the byte ranges do not overlap and cover the data section exactly
//     (first begins at 0, each begins where the previous ended, the last ends at the file end)
// A tensor whose start is misaligned for its dtype is copied once into aligned memory
// (`copied_bytes()` reports it); otherwise the views point into the mapping.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <new>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lav2/core/error.hpp"
#include "lav2/io/bytes.hpp"
#include "lav2/io/limits.hpp"
#include "lav2/io/mmap.hpp"
#include "lav2/io/tensor_map.hpp"

namespace lav2::io {

/// \brief An opened .safetensors file: checked tensor views into its mapping, and its metadata.
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path, const SafetensorsLimits& limits = {})
      : SafetensorsFile(MappedFile::open(path, "safetensors"), limits) {}
  /// \brief Reads an already mapped file, or bytes held in memory (MappedFile::from_buffer).
  explicit SafetensorsFile(std::shared_ptr<const MappedFile> file, const SafetensorsLimits& limits = {}) {
    file_ = std::move(file);
    ctx_ = "safetensors '" + file_->path() + "'";
    parse_(limits);
  }

  const std::string& path() const { return file_->path(); }
  /// Every tensor, by name.
  const TensorMap& tensors() const { return tensors_; }
  /// The optional __metadata__ object (string -> string).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  /// Keeps the mapping (and realigned copies) alive after this object is gone.
  std::shared_ptr<const void> keep_alive() const { return keep_; }
  std::uint64_t copied_bytes() const { return copied_bytes_; }

 private:
  static bool dtype_from_name_(const std::string& s, DType& out) {
    static const std::pair<const char*, DType> kNames[] = {
        {"F32", DType::f32}, {"F16", DType::f16}, {"BF16", DType::bf16}, {"I64", DType::i64},     {"I32", DType::i32},
        {"I16", DType::i16}, {"I8", DType::i8},   {"U8", DType::u8},     {"BOOL", DType::boolean}};
    for (const auto& [n, t] : kNames)
      if (s == n) {
        out = t;
        return true;
      }
    return false;
  }

  void parse_(const SafetensorsLimits& lim) {
    const std::uint64_t fsize = file_->size();
    if (fsize < 8) LAV2_THROW(load_error, ctx_, ": ", fsize, " bytes is too short (the header length needs 8)");
    const std::uint64_t n = detail::le64(file_->data());
    if (n > lim.max_header_bytes)
      LAV2_THROW(limit_error, ctx_, ": header length ", n, " exceeds the limit ", lim.max_header_bytes);
    if (n > fsize - 8)
      LAV2_THROW(load_error, ctx_, ": header length ", n, " runs past the file end (", fsize - 8, " bytes follow)");
    const char* h = reinterpret_cast<const char*>(file_->data() + 8);
    const std::uint64_t data_start = 8 + n, data_size = fsize - data_start;

    // Parse, rejecting duplicate top-level keys (nlohmann would silently keep the last one).
    std::set<std::string> top_keys;
    std::string dup;
    nlohmann::json::parser_callback_t cb = [&](int depth, nlohmann::json::parse_event_t ev, nlohmann::json& parsed) {
      // Deep nesting would make dump() and the destructor recurse: stop at the limit.
      if (std::size_t(depth) > lim.max_json_depth)
        LAV2_THROW(limit_error, ctx_, ": header nests deeper than ", lim.max_json_depth, " levels (the limit)");
      if (ev == nlohmann::json::parse_event_t::key && depth == 1 && !top_keys.insert(parsed.get<std::string>()).second)
        dup = parsed.get<std::string>();
      return true;
    };
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(h, h + n, cb);
    } catch (const nlohmann::json::exception& e) {
      LAV2_THROW(load_error, ctx_, ": header is not valid JSON: ", e.what());
    }
    if (!dup.empty()) LAV2_THROW(load_error, ctx_, ": header names ", detail::quoted(dup), " twice");
    if (!j.is_object()) LAV2_THROW(load_error, ctx_, ": header is a JSON ", j.type_name(), ", expected an object");
    if (j.size() > lim.max_tensors + 1)
      LAV2_THROW(limit_error, ctx_, ": ", j.size(), " header entries exceed the limit ", lim.max_tensors);

    struct Range {
      std::uint64_t begin, end;
      const std::string* name;
    };
    std::vector<Range> ranges;
    std::vector<std::pair<std::string, AnyTensorView>> views;
    for (auto it = j.begin(); it != j.end(); ++it) {
      const std::string& name = it.key();
      const nlohmann::json& v = it.value();
      if (name == "__metadata__") {
        if (!v.is_object())
          LAV2_THROW(load_error, ctx_, ": __metadata__ is a JSON ", v.type_name(), ", expected an object");
        for (auto m = v.begin(); m != v.end(); ++m) {
          if (!m.value().is_string())
            LAV2_THROW(load_error, ctx_, ": __metadata__ ", detail::quoted(m.key()), " is a JSON ",
                       m.value().type_name(), ", expected a string");
          metadata_[m.key()] = m.value().get<std::string>();
        }
        continue;
      }
      const std::string where = ctx_ + ": tensor " + detail::quoted(name);
      if (!v.is_object()) LAV2_THROW(load_error, where, ": entry is a JSON ", v.type_name(), ", expected an object");
      for (auto f = v.begin(); f != v.end(); ++f)
        if (f.key() != "dtype" && f.key() != "shape" && f.key() != "data_offsets")
          LAV2_THROW(load_error, where, ": unknown field ", detail::quoted(f.key()),
                     " (expected dtype, shape, data_offsets)");
      if (!v.contains("dtype") || !v["dtype"].is_string())
        LAV2_THROW(load_error, where, ": dtype is missing or not a string");
      AnyTensorView view;
      const std::string dt = v["dtype"].get<std::string>();
      if (!dtype_from_name_(dt, view.dtype))
        LAV2_THROW(load_error, where, ": dtype ", detail::quoted(dt),
                   " is not supported (F32 F16 BF16 I64 I32 I16 I8 U8 BOOL)");
      if (!v.contains("shape") || !v["shape"].is_array())
        LAV2_THROW(load_error, where, ": shape is missing or not an array");
      const auto& shape = v["shape"];
      if (shape.size() > std::size_t(kMaxRank))
        LAV2_THROW(load_error, where, ": rank ", shape.size(), " exceeds ", kMaxRank);
      std::uint64_t numel = 1;
      view.shape.rank = int(shape.size());
      for (std::size_t i = 0; i < shape.size(); ++i) {
        if (!shape[i].is_number_unsigned())
          LAV2_THROW(load_error, where, ": shape[", i, "] is ", shape[i].dump(), ", expected an int >= 0");
        const std::uint64_t d = shape[i].get<std::uint64_t>();
        if (d > std::uint64_t(INT64_MAX) || !detail::mul_ok(numel, d, numel) || numel > std::uint64_t(INT64_MAX))
          LAV2_THROW(load_error, where, ": shape overflows int64");
        view.shape.dims[i] = std::int64_t(d);
      }
      view.strides = contiguous_strides(view.shape);
      if (!v.contains("data_offsets") || !v["data_offsets"].is_array() || v["data_offsets"].size() != 2 ||
          !v["data_offsets"][0].is_number_unsigned() || !v["data_offsets"][1].is_number_unsigned())
        LAV2_THROW(load_error, where, ": data_offsets is not [begin, end] of ints >= 0");
      const std::uint64_t b = v["data_offsets"][0].get<std::uint64_t>(), e = v["data_offsets"][1].get<std::uint64_t>();
      if (b > e || e > data_size)
        LAV2_THROW(load_error, where, ": data_offsets [", b, ", ", e, "] are not ordered within the data section of ",
                   data_size, " bytes");
      std::uint64_t bytes = 0;
      if (detail::mul_ok(numel, dtype_size(view.dtype), bytes) && bytes > lim.max_tensor_bytes)
        LAV2_THROW(limit_error, where, ": ", bytes, " bytes exceed the tensor limit ", lim.max_tensor_bytes);
      if (!detail::mul_ok(numel, dtype_size(view.dtype), bytes) || bytes != e - b)
        LAV2_THROW(load_error, where, ": data_offsets span ", e - b, " bytes, shape ", view.shape.to_string(), " of ",
                   dt, " needs ", numel, " x ", dtype_size(view.dtype));
      view.data = file_->data() + data_start + b;
      ranges.push_back({b, e, &name});
      views.emplace_back(name, view);
    }
    std::sort(ranges.begin(), ranges.end(),
              [](const Range& a, const Range& c) { return a.begin != c.begin ? a.begin < c.begin : a.end < c.end; });
    std::uint64_t at = 0;
    for (const Range& r : ranges) {
      if (r.begin < at)
        LAV2_THROW(load_error, ctx_, ": tensor ", detail::quoted(*r.name), " at bytes [", r.begin, ", ", r.end,
                   ") overlaps the previous tensor, which ends at ", at);
      if (r.begin > at)
        LAV2_THROW(load_error, ctx_, ": bytes [", at, ", ", r.begin,
                   ") of the data section belong to no tensor (before ", detail::quoted(*r.name), ")");
      at = r.end;
    }
    if (at != data_size)
      LAV2_THROW(load_error, ctx_, ": bytes [", at, ", ", data_size,
                 ") at the end of the data section belong to no tensor");

    auto owned = std::make_shared<std::pair<std::shared_ptr<const MappedFile>,
                                            std::vector<std::unique_ptr<unsigned char[], void (*)(unsigned char*)>>>>();
    owned->first = file_;
    for (auto& [name, view] : views) {
      const std::size_t es = dtype_size(view.dtype);
      if (reinterpret_cast<std::uintptr_t>(view.data) % es != 0) {
        const std::size_t bytes = std::size_t(view.numel()) * es;
        auto* q = static_cast<unsigned char*>(::operator new(bytes ? bytes : 1, std::align_val_t(64)));
        std::memcpy(q, view.data, bytes);
        owned->second.emplace_back(q, [](unsigned char* x) { ::operator delete(x, std::align_val_t(64)); });
        copied_bytes_ += bytes;
        view.data = q;
      }
      tensors_.emplace(name, view);
    }
    keep_ = owned;
  }

  std::shared_ptr<const MappedFile> file_;
  std::string ctx_;
  TensorMap tensors_;
  std::map<std::string, std::string> metadata_;
  std::shared_ptr<const void> keep_;
  std::uint64_t copied_bytes_ = 0;
};

}  // namespace lav2::io
