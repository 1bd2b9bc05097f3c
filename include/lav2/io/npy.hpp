// .npy files (NumPy format version 1.0): the CLI's --dump output and the tests' golden arrays.
//
// ---- The format --------------------------------------------------------------------------------
//   bytes [0, 6)     magic "\x93NUMPY"
//   bytes [6, 8)     version: major 1, minor 0 (2.0 and 3.0 differ only in a u32 header length
//                    and, for 3.0, a UTF-8 header; both are read)
//   bytes [8, 10)    HEADER_LEN: u16 little-endian
//   HEADER_LEN bytes an ASCII Python dict literal, space-padded, ending in '\n':
//                    {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
//   then             the array, numel * itemsize bytes, C order
// descr read and written: '<f4' f32, '<f2' f16, '<i8' i64, '<i4' i32, '<i2' i16, '|i1' i8,
// '|u1' u8, '|b1' bool ('=' is taken as '<' on this little-endian target; '>' is rejected).
// The writer produces the same bytes as numpy.save (numpy >= 1.23 pads 21 - len(str(shape[0]))
// growth spaces, then to a multiple of 64 bytes).
//
// ---- Reader checks (load_error "npy '<path>': ...") ---------------------------------------------
//   magic; version 1.0/2.0/3.0; header inside the file and <= limits; the dict has exactly descr,
//   fortran_order, shape; descr known and little-endian; fortran_order False; shape ints >= 0,
//   rank <= 6; numel * itemsize without overflow, <= limits.max_data_bytes and == the bytes left.
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <new>
#include <string>

#include "lav2/core/error.hpp"
#include "lav2/io/bytes.hpp"
#include "lav2/io/limits.hpp"
#include "lav2/io/mmap.hpp"
#include "lav2/tensor/tensor.hpp"

namespace lav2::io {

/// \brief An array read from a .npy file: owned, contiguous, 64-byte aligned.
struct NpyArray {
  DType dtype = DType::f32;
  Shape shape;
  std::shared_ptr<unsigned char> bytes;  ///< numel * dtype_size(dtype) bytes

  std::int64_t numel() const { return shape.numel(); }
  /// A view of the data (valid while this array lives).
  AnyTensorView view() const { return AnyTensorView{dtype, bytes.get(), shape, contiguous_strides(shape)}; }
  /// Typed view; throws input_error when T is not the file's dtype.
  template <class T>
  TensorView<const T> as() const {
    return view().as<T>();
  }
};

namespace detail {
inline const char* npy_descr(DType t) {
  switch (t) {
    case DType::f32: return "<f4";
    case DType::f16: return "<f2";
    case DType::i64: return "<i8";
    case DType::i32: return "<i4";
    case DType::i16: return "<i2";
    case DType::i8: return "|i1";
    case DType::u8: return "|u1";
    case DType::boolean: return "|b1";
    case DType::bf16:  // no numpy type
    case DType::q8_0:
    case DType::q4_0:
    case DType::q4_k:
    case DType::q6_k:
    case DType::q4_0_x8: return nullptr;
  }
  return nullptr;
}

/// Parser of the header's Python dict literal (only the forms numpy writes).
struct NpyHeaderParser {
  const std::string& s;
  const std::string& ctx;
  std::size_t i = 0;
  [[noreturn]] void fail(const std::string& what) const {
    LAV2_THROW(load_error, ctx, ": header ", detail::quoted(s), ": ", what, " at character ", i);
  }
  void ws() {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n')) ++i;
  }
  bool eat(char c) {
    ws();
    if (i < s.size() && s[i] == c) {
      ++i;
      return true;
    }
    return false;
  }
  std::string str() {
    ws();
    if (i >= s.size() || (s[i] != '\'' && s[i] != '"')) fail("expected a string");
    const char q = s[i++];
    const std::size_t start = i;
    while (i < s.size() && s[i] != q) ++i;
    if (i >= s.size()) fail("unterminated string");
    return s.substr(start, i++ - start);
  }
  std::int64_t integer() {
    ws();
    const std::size_t start = i;
    std::uint64_t v = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      if (v > (std::uint64_t(INT64_MAX) - 9) / 10) fail("dimension overflows int64");
      v = v * 10 + std::uint64_t(s[i++] - '0');
    }
    if (i == start) fail("expected a non-negative integer");
    if (i < s.size() && s[i] == 'L') ++i;  // Python 2 long suffix
    return std::int64_t(v);
  }
};
}  // namespace detail

/// \brief Reads a .npy file into memory. Throws load_error / limit_error naming the file.
inline NpyArray read_npy(const std::string& path, const NpyLimits& limits = {}) {
  using namespace detail;
  auto file = MappedFile::open(path, "npy");
  const std::string ctx = "npy '" + path + "'";
  const unsigned char* p = file->data();
  const std::uint64_t size = file->size();
  if (size < 10 || std::memcmp(p, "\x93NUMPY", 6) != 0) LAV2_THROW(load_error, ctx, ": missing the \\x93NUMPY magic");
  const int major = p[6], minor = p[7];
  if (!((major == 1 || major == 2 || major == 3) && minor == 0))
    LAV2_THROW(load_error, ctx, ": format version ", major, ".", minor, " (supported: 1.0, 2.0, 3.0)");
  std::uint64_t hlen = 0, hstart = 0;
  if (major == 1) {
    hlen = le16(p + 8);
    hstart = 10;
  } else {
    if (size < 12) LAV2_THROW(load_error, ctx, ": truncated header length");
    hlen = le32(p + 8);
    hstart = 12;
  }
  if (hlen > limits.max_header_bytes)
    LAV2_THROW(limit_error, ctx, ": header of ", hlen, " bytes exceeds the limit ", limits.max_header_bytes);
  if (!in_range(hstart, hlen, size))
    LAV2_THROW(load_error, ctx, ": header of ", hlen, " bytes runs past the file end (", size - hstart,
               " bytes follow)");
  const std::string h(reinterpret_cast<const char*>(p + hstart), std::size_t(hlen));

  NpyHeaderParser ps{h, ctx};
  std::string descr;
  bool have_descr = false, have_fortran = false, have_shape = false;
  NpyArray a;
  if (!ps.eat('{')) ps.fail("expected '{'");
  while (!ps.eat('}')) {
    const std::string key = ps.str();
    if (!ps.eat(':')) ps.fail("expected ':'");
    if (key == "descr" && !have_descr) {
      descr = ps.str();
      have_descr = true;
    } else if (key == "fortran_order" && !have_fortran) {
      ps.ws();
      if (h.compare(ps.i, 5, "False") == 0) ps.i += 5;
      else if (h.compare(ps.i, 4, "True") == 0)
        LAV2_THROW(load_error, ctx, ": fortran_order is True; only C order is read");
      else ps.fail("fortran_order is not False/True");
      have_fortran = true;
    } else if (key == "shape" && !have_shape) {
      if (!ps.eat('(')) ps.fail("shape is not a tuple");
      while (!ps.eat(')')) {
        if (a.shape.rank >= kMaxRank) LAV2_THROW(load_error, ctx, ": shape has more than ", kMaxRank, " dimensions");
        a.shape.dims[std::size_t(a.shape.rank++)] = ps.integer();
        if (!ps.eat(',')) {
          if (!ps.eat(')')) ps.fail("expected ',' or ')' in shape");
          break;
        }
      }
      have_shape = true;
    } else {
      ps.fail("unexpected or repeated key " + detail::quoted(key));
    }
    if (!ps.eat(',')) {
      if (!ps.eat('}')) ps.fail("expected ',' or '}'");
      break;
    }
  }
  if (!have_descr || !have_fortran || !have_shape) ps.fail("descr, fortran_order and shape are all required");
  if (descr.size() == 3 && descr[0] == '=') descr[0] = '<';
  static const DType kTypes[] = {DType::f32, DType::f16, DType::i64, DType::i32,
                                 DType::i16, DType::i8,  DType::u8,  DType::boolean};
  bool known = false;
  for (DType t : kTypes)
    if (descr == npy_descr(t) || (dtype_size(t) == 1 && descr.size() == 3 && descr[0] == '<' &&
                                  descr.substr(1) == std::string(npy_descr(t) + 1))) {
      a.dtype = t;
      known = true;
    }
  if (!known)
    LAV2_THROW(load_error, ctx, ": dtype descr ", detail::quoted(descr),
               " is not supported (<f4 <f2 <i8 <i4 <i2 |i1 |u1 |b1)");

  std::uint64_t n = 1, bytes = 0;
  for (int d = 0; d < a.shape.rank; ++d)
    if (!mul_ok(n, std::uint64_t(a.shape[d]), n) || n > std::uint64_t(INT64_MAX))
      LAV2_THROW(load_error, ctx, ": shape ", a.shape.to_string(), " overflows int64");
  if (!mul_ok(n, dtype_size(a.dtype), bytes) || bytes > limits.max_data_bytes)
    LAV2_THROW(limit_error, ctx, ": shape ", a.shape.to_string(), " of ", descr, " exceeds the data limit ",
               limits.max_data_bytes, " bytes");
  const std::uint64_t left = size - hstart - hlen;
  if (left != bytes)
    LAV2_THROW(load_error, ctx, ": data holds ", left, " bytes, shape ", a.shape.to_string(), " of ", descr, " needs ",
               bytes);
  auto* q = static_cast<unsigned char*>(::operator new(std::size_t(bytes ? bytes : 1), std::align_val_t(64)));
  a.bytes.reset(q, [](unsigned char* x) { ::operator delete(x, std::align_val_t(64)); });
  if (bytes) std::memcpy(q, p + hstart + hlen, std::size_t(bytes));
  return a;
}

/// \brief Reads a .npy file as a Tensor<T>; throws load_error when the file's dtype is not T.
template <class T>
Tensor<T> read_npy_as(const std::string& path, const NpyLimits& limits = {}) {
  NpyArray a = read_npy(path, limits);
  if (a.dtype != dtype_of_v<T>)
    LAV2_THROW(load_error, "npy '", path, "': holds ", dtype_name(a.dtype), ", expected ", dtype_name(dtype_of_v<T>));
  Tensor<T> t(a.shape);
  if (a.numel() > 0) std::memcpy(t.data(), a.bytes.get(), std::size_t(a.numel()) * sizeof(T));
  return t;
}

/// \brief The header bytes numpy.save writes for `dtype` and `shape` (format 1.0).
inline std::string npy_header(DType dtype, const Shape& shape) {
  const char* descr = detail::npy_descr(dtype);
  if (!descr) LAV2_THROW(input_error, "npy: dtype ", dtype_name(dtype), " has no .npy type");
  std::string sh = "(";
  for (int i = 0; i < shape.rank; ++i) sh += (i ? ", " : "") + std::to_string(shape[i]);
  sh += shape.rank == 1 ? ",)" : ")";
  std::string h = std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': " + sh + ", }";
  if (shape.rank > 0) {  // numpy's growth space (GROWTH_AXIS_MAX_DIGITS = 21)
    const std::size_t digits = std::to_string(shape[0]).size();
    if (digits < 21) h.append(21 - digits, ' ');
  }
  const std::size_t total = 10 + h.size() + 1;
  h.append((64 - total % 64) % 64, ' ');
  h += '\n';
  if (h.size() > 65535) LAV2_THROW(input_error, "npy: header of ", h.size(), " bytes does not fit format 1.0");
  std::string out = "\x93NUMPY";
  out += char(1);
  out += char(0);
  out += char(h.size() & 0xff);
  out += char(h.size() >> 8);
  return out + h;
}

/// \brief Writes `v` (any strides; written in C order) to `path` as .npy 1.0.
/// Throws input_error when the file cannot be written or the dtype has no .npy type (bf16).
inline void write_npy(const std::string& path, const AnyTensorView& v) {
  const std::string header = npy_header(v.dtype, v.shape);
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "wb"), &std::fclose);
  if (!f) LAV2_THROW(input_error, "npy '", path, "': cannot open for writing: ", std::strerror(errno));
  bool ok = std::fwrite(header.data(), 1, header.size(), f.get()) == header.size();
  const std::size_t es = dtype_size(v.dtype);
  const std::int64_t n = v.numel();
  bool dense = true;
  for (std::int64_t expect = 1, i = v.shape.rank - 1; i >= 0; --i) {
    if (v.shape[int(i)] != 1 && v.strides[std::size_t(i)] != expect) dense = false;
    expect *= v.shape[int(i)];
  }
  if (n > 0 && dense) {
    ok = ok && std::fwrite(v.data, es, std::size_t(n), f.get()) == std::size_t(n);
  } else if (n > 0) {
    std::int64_t idx[kMaxRank] = {};
    const auto* base = static_cast<const unsigned char*>(v.data);
    for (std::int64_t k = 0; k < n && ok; ++k) {
      std::int64_t off = 0;
      for (int d = 0; d < v.shape.rank; ++d) off += idx[d] * v.strides[std::size_t(d)];
      ok = std::fwrite(base + off * std::int64_t(es), es, 1, f.get()) == 1;
      for (int d = v.shape.rank - 1; d >= 0; --d) {
        if (++idx[d] < v.shape[d]) break;
        idx[d] = 0;
      }
    }
  }
  if (std::fclose(f.release()) != 0) ok = false;
  if (!ok) LAV2_THROW(input_error, "npy '", path, "': write failed: ", std::strerror(errno));
}

/// \brief Writes a typed view (f32, f16, i64, i32, ...) to `path` as .npy 1.0.
template <class T>
void write_npy(const std::string& path, const TensorView<const T>& v) {
  write_npy(path, AnyTensorView{dtype_of_v<T>, v.data(), v.shape(), v.strides()});
}

}  // namespace lav2::io
