// Element types and exact scalar conversions between f32 and the 16-bit float formats.
//
// f16 is IEEE 754 binary16 (1 sign, 5 exponent, 10 mantissa bits); bf16 is the top half of an
// IEEE binary32 (1, 8, 7). Widening to f32 is exact for every bit pattern. Narrowing rounds to
// nearest, ties to even, as torch's `.half()` / `.bfloat16()` and F16C's _cvtps_ph(.., 0) do:
// overflow becomes infinity, tiny values become f16 subnormals, NaN stays a (quiet) NaN.
// These scalar functions are the specification; kernels/simd has the F16C/AVX2 versions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace lav2 {

/// \brief The element types lav2 can hold. The integer types exist for checkpoint contents
/// (token ids, masks); compute is f32 throughout. q8_0 and q4_0 are GGML's block-quantised weight
/// formats (tensor/quant.hpp): 32 values share one f16 scale, so they have a block size, not an
/// element size. q4_k and q6_k are GGML's K-quants Q4_K and Q6_K (tensor/quant_k.hpp), read from
/// GGUF files: super-blocks of 256 values. q4_0_x8 is q4_0 with eight rows interleaved block by
/// block (tensor/quant_x8.hpp), a layout the model makes at load; no file holds it.
enum class DType : std::uint8_t { f32, f16, bf16, i64, i32, i16, i8, u8, boolean, q8_0, q4_0, q4_k, q6_k, q4_0_x8 };

/// \brief Values per block: 32 for q8_0 and q4_0, 256 for q4_k and q6_k, 1 for the others.
constexpr std::int64_t dtype_block_size(DType t) {
  if (t == DType::q8_0 || t == DType::q4_0 || t == DType::q4_0_x8) return 32;
  if (t == DType::q4_k || t == DType::q6_k) return 256;
  return 1;
}

/// \brief Size in bytes of one element of `t`; 0 for the block types (use dtype_row_bytes).
constexpr std::size_t dtype_size(DType t) {
  switch (t) {
    case DType::f32:
    case DType::i32: return 4;
    case DType::f16:
    case DType::bf16:
    case DType::i16: return 2;
    case DType::i64: return 8;
    case DType::i8:
    case DType::u8:
    case DType::boolean: return 1;
    case DType::q8_0:
    case DType::q4_0:
    case DType::q4_k:
    case DType::q6_k:
    case DType::q4_0_x8: return 0;
  }
  return 0;
}

/// \brief Bytes of `n` values of `t` (n a multiple of the block size for the block types):
/// q8_0 is 34 bytes per 32 values (f16 scale + 32 int8), q4_0 18 (f16 scale + 16 bytes of nibbles),
/// q4_k 144 per 256 (4.5 bits per value), q6_k 210 per 256 (6.5625 bits).
constexpr std::size_t dtype_row_bytes(DType t, std::int64_t n) {
  if (t == DType::q8_0) return std::size_t(n / 32) * 34;
  if (t == DType::q4_0 || t == DType::q4_0_x8) return std::size_t(n / 32) * 18;
  if (t == DType::q4_k) return std::size_t(n / 256) * 144;
  if (t == DType::q6_k) return std::size_t(n / 256) * 210;
  return std::size_t(n) * dtype_size(t);
}

/// \brief The dtype a file stores for `t`: q4_0 for q4_0_x8 (a layout of q4_0), else `t`.
constexpr DType stored_dtype(DType t) { return t == DType::q4_0_x8 ? DType::q4_0 : t; }

/// \brief Lower-case name of `t`, as used in messages and file formats ("f32", "f16", ...).
constexpr std::string_view dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "f32";
    case DType::f16: return "f16";
    case DType::bf16: return "bf16";
    case DType::i64: return "i64";
    case DType::i32: return "i32";
    case DType::i16: return "i16";
    case DType::i8: return "i8";
    case DType::u8: return "u8";
    case DType::boolean: return "bool";
    case DType::q8_0: return "q8_0";
    case DType::q4_0: return "q4_0";
    case DType::q4_k: return "q4_k";
    case DType::q6_k: return "q6_k";
    case DType::q4_0_x8: return "q4_0_x8";
  }
  return "?";
}

/// \brief Storage types for 16-bit floats: distinct types so overloads and templates can tell
/// them apart from integers. Layout is the raw bit pattern.
struct f16_t {
  std::uint16_t bits;
};
struct bf16_t {
  std::uint16_t bits;
};

template <class T>
struct dtype_of;
template <>
struct dtype_of<float> {
  static constexpr DType value = DType::f32;
};
template <>
struct dtype_of<f16_t> {
  static constexpr DType value = DType::f16;
};
template <>
struct dtype_of<bf16_t> {
  static constexpr DType value = DType::bf16;
};
template <>
struct dtype_of<std::int64_t> {
  static constexpr DType value = DType::i64;
};
template <>
struct dtype_of<std::int32_t> {
  static constexpr DType value = DType::i32;
};
template <>
struct dtype_of<std::int16_t> {
  static constexpr DType value = DType::i16;
};
template <>
struct dtype_of<std::int8_t> {
  static constexpr DType value = DType::i8;
};
template <>
struct dtype_of<std::uint8_t> {
  static constexpr DType value = DType::u8;
};
template <>
struct dtype_of<bool> {
  static constexpr DType value = DType::boolean;
};
template <class T>
struct dtype_of<const T> : dtype_of<T> {};
template <class T>
inline constexpr DType dtype_of_v = dtype_of<T>::value;

inline std::uint32_t f32_bits(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float f32_from_bits(std::uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

/// \brief Exact f16 -> f32 (every f16 value is representable in f32). NaN payloads are kept.
inline float f16_to_f32(std::uint16_t h) {
  const std::uint32_t sign = std::uint32_t(h & 0x8000u) << 16;
  std::uint32_t exp = (h >> 10) & 0x1fu;
  std::uint32_t mant = h & 0x3ffu;
  if (exp == 0x1f) return f32_from_bits(sign | 0x7f800000u | (mant << 13));  // inf / NaN
  if (exp == 0) {
    if (mant == 0) return f32_from_bits(sign);  // +-0
    // Subnormal: value = mant * 2^-24. Normalise so the leading 1 moves to bit 10.
    exp = 127 - 14;
    while (!(mant & 0x400u)) {
      mant <<= 1;
      --exp;
    }
    return f32_from_bits(sign | (exp << 23) | ((mant & 0x3ffu) << 13));
  }
  return f32_from_bits(sign | ((exp + 127 - 15) << 23) | (mant << 13));
}

/// \brief f32 -> f16, round to nearest even; overflow -> inf; NaN -> quiet NaN (payload's top bits).
inline std::uint16_t f32_to_f16(float f) {
  const std::uint32_t x = f32_bits(f);
  const std::uint16_t sign = std::uint16_t((x >> 16) & 0x8000u);
  const std::uint32_t ax = x & 0x7fffffffu;
  if (ax >= 0x7f800000u) {  // inf or NaN
    if (ax == 0x7f800000u) return sign | 0x7c00u;
    return std::uint16_t(sign | 0x7e00u | ((ax >> 13) & 0x3ffu));
  }
  // 65520 is halfway between 65504 (max f16, odd mantissa) and 65536: ties-to-even goes up, to inf.
  if (ax >= 0x477ff000u) return sign | 0x7c00u;
  if (ax < 0x38800000u) {  // below 2^-14: an f16 subnormal (or zero); unit 2^-24
    const std::uint32_t e = ax >> 23;
    if (e < 102) return sign;                                 // < 2^-25 even at the largest mantissa: rounds to zero
    const std::uint32_t mant = (ax & 0x7fffffu) | 0x800000u;  // value = mant * 2^(e-150)
    const std::uint32_t shift = 126 - e;                      // value / 2^-24 = mant >> shift
    std::uint32_t r = mant >> shift;
    const std::uint32_t rem = mant & ((1u << shift) - 1);
    const std::uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (r & 1u))) ++r;  // may carry into the smallest normal
    return std::uint16_t(sign | r);
  }
  // Normal: rebias the exponent and round the 13 dropped mantissa bits to nearest even.
  const std::uint32_t odd = (ax >> 13) & 1u;
  const std::uint32_t rounded = ax + 0xfffu + odd - ((127u - 15u) << 23);
  return std::uint16_t(sign | (rounded >> 13));
}

/// \brief Exact bf16 -> f32.
inline float bf16_to_f32(std::uint16_t b) { return f32_from_bits(std::uint32_t(b) << 16); }

/// \brief f32 -> bf16, round to nearest even; NaN -> quiet NaN with the same sign.
inline std::uint16_t f32_to_bf16(float f) {
  const std::uint32_t x = f32_bits(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return std::uint16_t((x >> 16) | 0x0040u);
  const std::uint32_t odd = (x >> 16) & 1u;
  return std::uint16_t((x + 0x7fffu + odd) >> 16);
}

inline float to_f32(float v) { return v; }
inline float to_f32(f16_t v) { return f16_to_f32(v.bits); }
inline float to_f32(bf16_t v) { return bf16_to_f32(v.bits); }
template <class T>
T from_f32(float v);
template <>
inline float from_f32<float>(float v) {
  return v;
}
template <>
inline f16_t from_f32<f16_t>(float v) {
  return f16_t{f32_to_f16(v)};
}
template <>
inline bf16_t from_f32<bf16_t>(float v) {
  return bf16_t{f32_to_bf16(v)};
}

}  // namespace lav2
