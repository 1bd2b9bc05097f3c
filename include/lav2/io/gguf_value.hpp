// GGUF's vocabulary: metadata value types, metadata values, and ggml's tensor types with the
// lav2 dtype each is read as. Shared by the reader (gguf.hpp) and the writer (gguf_writer.hpp).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "lav2/tensor/dtype.hpp"

namespace lav2::io {

/// \brief gguf_type: the metadata value types, numbered as in the GGUF spec.
enum class GgufType : std::uint32_t {
  u8 = 0,
  i8 = 1,
  u16 = 2,
  i16 = 3,
  u32 = 4,
  i32 = 5,
  f32 = 6,
  boolean = 7,
  string = 8,
  array = 9,
  u64 = 10,
  i64 = 11,
  f64 = 12,
};
inline constexpr std::uint32_t kGgufTypeCount = 13;

/// Bytes of one value of a fixed-size type; 0 for string and array.
constexpr std::uint64_t gguf_type_size(GgufType t) {
  switch (t) {
    case GgufType::u8:
    case GgufType::i8:
    case GgufType::boolean: return 1;
    case GgufType::u16:
    case GgufType::i16: return 2;
    case GgufType::u32:
    case GgufType::i32:
    case GgufType::f32: return 4;
    case GgufType::u64:
    case GgufType::i64:
    case GgufType::f64: return 8;
    case GgufType::string:
    case GgufType::array: return 0;
  }
  return 0;
}

constexpr const char* gguf_type_name(GgufType t) {
  constexpr const char* kNames[] = {"u8",   "i8",     "u16",   "i16", "u32", "i32", "f32",
                                    "bool", "string", "array", "u64", "i64", "f64"};
  return std::uint32_t(t) < kGgufTypeCount ? kNames[std::uint32_t(t)] : "invalid";
}

/// \brief One metadata value. Numbers keep their exact value: integers in `i` (u64 above
/// INT64_MAX in `u`), floats in `f`. Arrays hold their elements' type in `element` and the
/// elements in `items` (GGUF arrays do not nest here: llama.cpp refuses nested arrays too).
struct GgufValue {
  GgufType type = GgufType::u32;
  GgufType element = GgufType::u8;  ///< arrays only
  std::int64_t i = 0;
  std::uint64_t u = 0;
  double f = 0;
  bool b = false;
  std::string str;
  std::vector<GgufValue> items;

  bool is_integer() const {
    return type != GgufType::f32 && type != GgufType::f64 && type != GgufType::boolean && type != GgufType::string &&
           type != GgufType::array;
  }
  bool is_float() const { return type == GgufType::f32 || type == GgufType::f64; }

  static GgufValue of_string(std::string s) {
    GgufValue v;
    v.type = GgufType::string;
    v.str = std::move(s);
    return v;
  }
  static GgufValue of_int(GgufType t, std::int64_t x) {
    GgufValue v;
    v.type = t;
    v.i = x;
    v.u = std::uint64_t(x);
    return v;
  }
  static GgufValue of_float(GgufType t, double x) {
    GgufValue v;
    v.type = t;
    v.f = x;
    return v;
  }
  static GgufValue of_bool(bool x) {
    GgufValue v;
    v.type = GgufType::boolean;
    v.b = x;
    return v;
  }
  static GgufValue of_array(GgufType element, std::vector<GgufValue> items) {
    GgufValue v;
    v.type = GgufType::array;
    v.element = element;
    v.items = std::move(items);
    return v;
  }
};

/// \brief A ggml tensor type: its number in GGUF, name, values per block and bytes per block,
/// and whether lav2 reads it (as `dtype`).
struct GgmlType {
  std::uint32_t id;
  const char* name;
  std::int64_t block_size;
  std::uint64_t block_bytes;
  bool supported;
  DType dtype;
};

/// Every ggml type llama.cpp defines (ggml.h's enum ggml_type; 4, 5 and 31-33 are retired).
inline constexpr GgmlType kGgmlTypes[] = {
    {0, "F32", 1, 4, true, DType::f32},          {1, "F16", 1, 2, true, DType::f16},
    {2, "Q4_0", 32, 18, true, DType::q4_0},      {3, "Q4_1", 32, 20, false, DType::f32},
    {6, "Q5_0", 32, 22, false, DType::f32},      {7, "Q5_1", 32, 24, false, DType::f32},
    {8, "Q8_0", 32, 34, true, DType::q8_0},      {9, "Q8_1", 32, 36, false, DType::f32},
    {10, "Q2_K", 256, 84, false, DType::f32},    {11, "Q3_K", 256, 110, false, DType::f32},
    {12, "Q4_K", 256, 144, true, DType::q4_k},   {13, "Q5_K", 256, 176, false, DType::f32},
    {14, "Q6_K", 256, 210, true, DType::q6_k},   {15, "Q8_K", 256, 292, false, DType::f32},
    {16, "IQ2_XXS", 256, 66, false, DType::f32}, {17, "IQ2_XS", 256, 74, false, DType::f32},
    {18, "IQ3_XXS", 256, 98, false, DType::f32}, {19, "IQ1_S", 256, 50, false, DType::f32},
    {20, "IQ4_NL", 32, 18, false, DType::f32},   {21, "IQ3_S", 256, 110, false, DType::f32},
    {22, "IQ2_S", 256, 82, false, DType::f32},   {23, "IQ4_XS", 256, 136, false, DType::f32},
    {24, "I8", 1, 1, true, DType::i8},           {25, "I16", 1, 2, true, DType::i16},
    {26, "I32", 1, 4, true, DType::i32},         {27, "I64", 1, 8, true, DType::i64},
    {28, "F64", 1, 8, false, DType::f32},        {29, "IQ1_M", 256, 56, false, DType::f32},
    {30, "BF16", 1, 2, true, DType::bf16},       {34, "TQ1_0", 256, 54, false, DType::f32},
    {35, "TQ2_0", 256, 66, false, DType::f32},
};

/// The ggml type numbered `id`, or null when ggml defines none.
inline const GgmlType* find_ggml_type(std::uint32_t id) {
  for (const GgmlType& t : kGgmlTypes)
    if (t.id == id) return &t;
  return nullptr;
}

/// The ggml type lav2 writes for `dtype`, or null when GGUF has none.
inline const GgmlType* ggml_type_for(DType dtype) {
  for (const GgmlType& t : kGgmlTypes)
    if (t.supported && t.dtype == dtype) return &t;
  return nullptr;
}

}  // namespace lav2::io
