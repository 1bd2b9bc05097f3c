// Writer of GGUF v3 files, laid out as llama.cpp's gguf_write_to_file does, so that llama.cpp
// and lav2's reader (gguf.hpp) take them: header, metadata in insertion order, tensor infos,
// zero padding to general.alignment (32), then each tensor's bytes padded to the alignment.
//
//   GgufWriter w;
//   w.set("general.architecture", GgufValue::of_string("llama"));
//   w.add_tensor("token_embd.weight", DType::f16, Shape{vocab, dim}, data);   // data kept alive by the caller
//   w.write("model.gguf");
#pragma once

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "lav2/core/error.hpp"
#include "lav2/io/gguf.hpp"
#include "lav2/io/gguf_value.hpp"
#include "lav2/tensor/shape.hpp"

namespace lav2::io {

class GgufWriter {
 public:
  /// Sets `key` (replacing an earlier value; the first position is kept).
  void set(const std::string& key, GgufValue value) {
    if (key.empty()) LAV2_THROW(input_error, "gguf writer: empty key");
    for (auto& kv : kv_)
      if (kv.first == key) {
        kv.second = std::move(value);
        return;
      }
    kv_.emplace_back(key, std::move(value));
  }

  /// Adds a tensor of lav2 shape `shape` (row-major; written as ne = shape reversed) whose
  /// bytes start at `data`, which must stay valid until write().
  void add_tensor(const std::string& name, DType dtype, const Shape& shape, const void* data) {
    const GgmlType* type = ggml_type_for(dtype);
    if (!type) LAV2_THROW(input_error, "gguf writer: tensor '", name, "': ", dtype_name(dtype), " has no GGUF type");
    if (name.empty() || name.size() > kGgufMaxNameBytes)
      LAV2_THROW(input_error, "gguf writer: tensor name '", name, "' must have 1..", kGgufMaxNameBytes, " bytes");
    if (!names_.insert(name).second) LAV2_THROW(input_error, "gguf writer: tensor '", name, "' added twice");
    if (shape.rank > 4) LAV2_THROW(input_error, "gguf writer: tensor '", name, "' has rank ", shape.rank, " > 4");
    const std::int64_t row = shape.rank ? shape[shape.rank - 1] : 1;
    if (row % type->block_size != 0)
      LAV2_THROW(input_error, "gguf writer: tensor '", name, "' rows of ", row, " are not a multiple of ",
                 type->block_size);
    Entry e{name, type, shape, data, 0};
    e.bytes = std::uint64_t(shape.numel() / type->block_size) * type->block_bytes;
    tensors_.push_back(std::move(e));
  }

  /// Writes the file; input_error naming `path` when it cannot be written.
  void write(const std::string& path) const {
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "wb"), &std::fclose);
    if (!f) LAV2_THROW(input_error, "gguf '", path, "': cannot open for writing: ", std::strerror(errno));
    Out out{f.get(), path};
    out.raw("GGUF", 4);
    out.u32(3);
    out.u64(tensors_.size());
    out.u64(kv_.size());
    for (const auto& [key, value] : kv_) {
      out.string(key);
      out.u32(std::uint32_t(value.type));
      if (value.type == GgufType::array) {
        out.u32(std::uint32_t(value.element));
        out.u64(value.items.size());
        for (const GgufValue& item : value.items) out.scalar(item, value.element);
      } else {
        out.scalar(value, value.type);
      }
    }
    const std::uint64_t align = alignment_();
    std::uint64_t offset = 0;
    for (const Entry& t : tensors_) {
      out.string(t.name);
      out.u32(std::uint32_t(t.shape.rank));
      for (int d = t.shape.rank - 1; d >= 0; --d) out.u64(std::uint64_t(t.shape[d]));
      out.u32(t.type->id);
      out.u64(offset);
      offset += pad_(t.bytes, align);
    }
    out.pad(align);
    for (const Entry& t : tensors_) {
      out.raw(t.data, t.bytes);
      out.pad(align);
    }
    if (std::fflush(f.get()) != 0) out.fail();
  }

 private:
  struct Entry {
    std::string name;
    const GgmlType* type;
    Shape shape;
    const void* data;
    std::uint64_t bytes;
  };

  // Sequential writes that remember the position (for padding) and throw on the first failure.
  struct Out {
    std::FILE* f;
    const std::string& path;
    std::uint64_t pos = 0;
    [[noreturn]] void fail() const {
      LAV2_THROW(input_error, "gguf '", path, "': write failed at byte ", pos, ": ", std::strerror(errno));
    }
    void raw(const void* p, std::uint64_t n) {
      if (n && std::fwrite(p, 1, std::size_t(n), f) != n) fail();
      pos += n;
    }
    void u32(std::uint32_t v) {
      unsigned char b[4];
      for (int i = 0; i < 4; ++i) b[i] = (v >> (8 * i)) & 0xffu;
      raw(b, 4);
    }
    void u64(std::uint64_t v) {
      unsigned char b[8];
      for (int i = 0; i < 8; ++i) b[i] = (v >> (8 * i)) & 0xffu;
      raw(b, 8);
    }
    void string(const std::string& s) {
      u64(s.size());
      raw(s.data(), s.size());
    }
    void pad(std::uint64_t align) {
      static const unsigned char zeros[64] = {};
      while (pos % align) raw(zeros, std::min<std::uint64_t>(align - pos % align, sizeof zeros));
    }
    void scalar(const GgufValue& v, GgufType t) {
      switch (t) {
        case GgufType::u8:
        case GgufType::i8: {
          const unsigned char b = static_cast<unsigned char>(v.i);
          raw(&b, 1);
          break;
        }
        case GgufType::boolean: {
          const unsigned char b = v.b ? 1 : 0;
          raw(&b, 1);
          break;
        }
        case GgufType::u16:
        case GgufType::i16: {
          const unsigned char b[2] = {static_cast<unsigned char>(v.i & 0xff),
                                      static_cast<unsigned char>((v.i >> 8) & 0xff)};
          raw(b, 2);
          break;
        }
        case GgufType::u32:
        case GgufType::i32: u32(std::uint32_t(v.i)); break;
        case GgufType::u64: u64(v.u); break;
        case GgufType::i64: u64(std::uint64_t(v.i)); break;
        case GgufType::f32: {
          const float x = float(v.f);
          std::uint32_t bits;
          std::memcpy(&bits, &x, 4);
          u32(bits);
          break;
        }
        case GgufType::f64: {
          std::uint64_t bits;
          std::memcpy(&bits, &v.f, 8);
          u64(bits);
          break;
        }
        case GgufType::string: string(v.str); break;
        case GgufType::array: LAV2_THROW(input_error, "gguf '", path, "': nested arrays cannot be written");
      }
    }
  };

  static std::uint64_t pad_(std::uint64_t n, std::uint64_t align) { return (n + align - 1) / align * align; }
  std::uint64_t alignment_() const {
    for (const auto& kv : kv_)
      if (kv.first == "general.alignment") {
        if (kv.second.type != GgufType::u32 || kv.second.i == 0 || (kv.second.i & (kv.second.i - 1)))
          LAV2_THROW(input_error, "gguf writer: general.alignment must be a u32 power of 2");
        return std::uint64_t(kv.second.i);
      }
    return kGgufDefaultAlignment;
  }

  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::vector<Entry> tensors_;
  std::set<std::string> names_;
};

}  // namespace lav2::io
