// GGUF reader and writer: a round trip of every value type and tensor dtype, then one hostile
// file per check of the reader, made by editing the bytes of a valid file (so each differs from
// a good file in exactly the field under test), and every truncation of a small file.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "io/io_test_util.hpp"
#include "lav2/io/gguf.hpp"
#include "lav2/io/gguf_writer.hpp"
#include "lav2/tensor/quant.hpp"

namespace fs = std::filesystem;
using lav2::DType;
using lav2::Shape;
using lav2::io::GgufFile;
using lav2::io::GgufType;
using lav2::io::GgufValue;
using lav2::io::GgufWriter;

namespace {

std::string temp_path(const std::string& name) {
  return (fs::temp_directory_path() / ("lav2_test_gguf_" + std::to_string(::getpid()) + "_" + name)).string();
}

std::vector<unsigned char> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), {}};
}

GgufFile open_bytes(const std::vector<unsigned char>& b, const lav2::io::GgufLimits& lim = {}) {
  return GgufFile(lav2::io::MappedFile::from_buffer(b.data(), b.size(), "t.gguf"), lim);
}

// A small valid file: two keys and two tensors (f32 (2, 3), q8_0 (1, 32)).
struct Small {
  std::vector<float> f32 = {1, 2, 3, 4, 5, 6};
  std::vector<lav2::BlockQ8_0> q8 = std::vector<lav2::BlockQ8_0>(1);
  std::vector<unsigned char> bytes;
  Small() {
    std::vector<float> row(32);
    for (int i = 0; i < 32; ++i) row[std::size_t(i)] = float(i) - 16.0f;
    lav2::quantize_row(row.data(), q8.data(), 32);
    GgufWriter w;
    w.set("general.architecture", GgufValue::of_string("llama"));
    w.set("n", GgufValue::of_int(GgufType::u32, 7));
    w.add_tensor("a", DType::f32, Shape{2, 3}, f32.data());
    w.add_tensor("b", DType::q8_0, Shape{1, 32}, q8.data());
    const std::string p = temp_path("small.gguf");
    w.write(p);
    bytes = read_bytes(p);
    fs::remove(p);
  }
};

void put_u32(std::vector<unsigned char>& b, std::size_t at, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) b[at + std::size_t(i)] = (v >> (8 * i)) & 0xffu;
}
void put_u64(std::vector<unsigned char>& b, std::size_t at, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) b[at + std::size_t(i)] = (v >> (8 * i)) & 0xffu;
}
// Byte offset of the first occurrence of `s` (a key or tensor name) in the file.
std::size_t find(const std::vector<unsigned char>& b, const std::string& s) {
  for (std::size_t i = 0; i + s.size() <= b.size(); ++i)
    if (std::memcmp(b.data() + i, s.data(), s.size()) == 0) return i;
  FAIL("not found: ", s);
  return 0;
}

}  // namespace

TEST_CASE("gguf: every metadata type and tensor dtype survives a write and a read") {
  GgufWriter w;
  w.set("general.architecture", GgufValue::of_string("llama"));
  w.set("u8", GgufValue::of_int(GgufType::u8, 200));
  w.set("i8", GgufValue::of_int(GgufType::i8, -100));
  w.set("u16", GgufValue::of_int(GgufType::u16, 65000));
  w.set("i16", GgufValue::of_int(GgufType::i16, -32000));
  w.set("u32", GgufValue::of_int(GgufType::u32, 4000000000LL));
  w.set("i32", GgufValue::of_int(GgufType::i32, -2000000000));
  w.set("i64", GgufValue::of_int(GgufType::i64, -(1LL << 60)));
  GgufValue big = GgufValue::of_int(GgufType::u64, 0);
  big.u = 18000000000000000000ull;
  w.set("u64", big);
  w.set("f32", GgufValue::of_float(GgufType::f32, 1e-5));
  w.set("f64", GgufValue::of_float(GgufType::f64, 0.1));
  w.set("yes", GgufValue::of_bool(true));
  w.set("tokens", GgufValue::of_array(GgufType::string, {GgufValue::of_string("<s>"), GgufValue::of_string("▁a")}));
  w.set("scores", GgufValue::of_array(GgufType::f32, {GgufValue::of_float(GgufType::f32, -1.5)}));
  w.set("empty", GgufValue::of_array(GgufType::i32, {}));

  std::vector<float> f32(3 * 64);
  for (std::size_t i = 0; i < f32.size(); ++i) f32[i] = float(i) * 0.25f - 7.0f;
  std::vector<lav2::f16_t> f16(f32.size());
  std::vector<lav2::bf16_t> bf16(f32.size());
  for (std::size_t i = 0; i < f32.size(); ++i)
    f16[i] = lav2::from_f32<lav2::f16_t>(f32[i]), bf16[i] = lav2::from_f32<lav2::bf16_t>(f32[i]);
  std::vector<lav2::BlockQ8_0> q8(3 * 2);
  std::vector<lav2::BlockQ4_0> q4(3 * 2);
  for (int r = 0; r < 3; ++r) {
    lav2::quantize_row(f32.data() + r * 64, q8.data() + r * 2, 64);
    lav2::quantize_row(f32.data() + r * 64, q4.data() + r * 2, 64);
  }
  const float norm[5] = {1, 2, 3, 4, 5};
  w.add_tensor("m.f32", DType::f32, Shape{3, 64}, f32.data());
  w.add_tensor("m.f16", DType::f16, Shape{3, 64}, f16.data());
  w.add_tensor("m.bf16", DType::bf16, Shape{3, 64}, bf16.data());
  w.add_tensor("m.q8_0", DType::q8_0, Shape{3, 64}, q8.data());
  w.add_tensor("m.q4_0", DType::q4_0, Shape{3, 64}, q4.data());
  w.add_tensor("norm", DType::f32, Shape{5}, norm);
  const std::string p = temp_path("roundtrip.gguf");
  w.write(p);

  const GgufFile f(p);
  CHECK(f.version() == 3);
  CHECK(f.alignment() == 32);
  CHECK(f.get_string("general.architecture", "") == "llama");
  CHECK(f.get_int("u8", 0, 0, 255) == 200);
  CHECK(f.get_int("i8", 0, -128, 127) == -100);
  CHECK(f.get_int("u16", 0, 0, 65535) == 65000);
  CHECK(f.get_int("i16", 0, -32768, 0) == -32000);
  CHECK(f.get_int("u32", 0, 0, 1LL << 32) == 4000000000LL);
  CHECK(f.get_int("i32", 0, INT32_MIN, 0) == -2000000000);
  CHECK(f.get_int("i64", 0, INT64_MIN, 0) == -(1LL << 60));
  CHECK(f.find("u64")->u == 18000000000000000000ull);
  CHECK(f.get_float("f32", 0) == double(1e-5f));
  CHECK(f.get_float("f64", 0) == 0.1);
  CHECK(f.get_bool("yes", false));
  const auto* tokens = f.get_array("tokens", GgufType::string);
  REQUIRE(tokens);
  REQUIRE(tokens->size() == 2);
  CHECK((*tokens)[1].str == "▁a");
  CHECK(f.get_array("scores", GgufType::f32)->at(0).f == -1.5);
  CHECK(f.get_array("empty", GgufType::i32)->empty());
  CHECK(f.get_int("absent", 42, 0, 100) == 42);

  REQUIRE(f.tensors().size() == 6);
  CHECK(f.tensor_infos()[0].name == "m.f32");
  CHECK(f.tensor_infos()[0].ne == std::vector<std::int64_t>{64, 3});
  for (const char* name : {"m.f32", "m.f16", "m.bf16", "m.q8_0", "m.q4_0"}) {
    CAPTURE(name);
    CHECK(f.tensors().at(name).shape == Shape{3, 64});
  }
  CHECK(std::memcmp(f.tensors().at("m.f32").data, f32.data(), f32.size() * 4) == 0);
  CHECK(std::memcmp(f.tensors().at("m.f16").data, f16.data(), f16.size() * 2) == 0);
  CHECK(std::memcmp(f.tensors().at("m.bf16").data, bf16.data(), bf16.size() * 2) == 0);
  CHECK(std::memcmp(f.tensors().at("m.q8_0").data, q8.data(), q8.size() * sizeof(lav2::BlockQ8_0)) == 0);
  CHECK(std::memcmp(f.tensors().at("m.q4_0").data, q4.data(), q4.size() * sizeof(lav2::BlockQ4_0)) == 0);
  CHECK(f.tensors().at("norm").as<float>()[4] == 5.0f);
  for (const auto& t : f.tensor_infos()) CHECK(t.offset % 32 == 0);
  // Typed accessors name the key and both types.
  LAV2_CHECK_THROWS_WITH_ALL(lav2::load_error, f.get_string("u8", ""), "key 'u8' is u8, expected a string");
  LAV2_CHECK_THROWS_WITH_ALL(lav2::load_error, f.get_int("u8", 0, 0, 100), "key 'u8' is 200, expected 0..100");
  LAV2_CHECK_THROWS_WITH_ALL(lav2::load_error, f.get_array("tokens", GgufType::f32),
                             "key 'tokens' is array of string, expected an array of f32");
  fs::remove(p);
}

TEST_CASE("gguf: Q4_K and Q6_K tensors are read in place as q4_k / q6_k; a row not of 256 is refused") {
  // Rows of 512 values: 2 super-blocks of 144 (Q4_K) or 210 (Q6_K) bytes each.
  std::vector<float> f32(3 * 512);
  for (std::size_t i = 0; i < f32.size(); ++i) f32[i] = std::sin(float(i) * 0.37f);
  std::vector<lav2::BlockQ4_K> q4(3 * 2);
  std::vector<lav2::BlockQ6_K> q6(3 * 2);
  for (int r = 0; r < 3; ++r) {
    lav2::quantize_row(f32.data() + r * 512, q4.data() + r * 2, 512);
    lav2::quantize_row(f32.data() + r * 512, q6.data() + r * 2, 512);
  }
  GgufWriter w;
  w.set("general.architecture", GgufValue::of_string("llama"));
  w.add_tensor("m.q4_k", DType::q4_k, Shape{3, 512}, q4.data());
  w.add_tensor("m.q6_k", DType::q6_k, Shape{3, 512}, q6.data());
  const std::string p = temp_path("kquant.gguf");
  w.write(p);
  const std::vector<unsigned char> bytes = read_bytes(p);
  fs::remove(p);
  const GgufFile f = open_bytes(bytes);
  REQUIRE(f.tensors().size() == 2);
  CHECK(f.tensor_infos()[0].type->id == 12);
  CHECK(f.tensor_infos()[1].type->id == 14);
  CHECK(f.tensor_infos()[0].bytes == 3 * 2 * 144);
  CHECK(f.tensor_infos()[1].bytes == 3 * 2 * 210);
  const auto& t4 = f.tensors().at("m.q4_k");
  const auto& t6 = f.tensors().at("m.q6_k");
  CHECK(t4.dtype == DType::q4_k);
  CHECK(t6.dtype == DType::q6_k);
  CHECK(t4.shape == Shape{3, 512});
  CHECK(std::memcmp(t4.data, q4.data(), q4.size() * sizeof(lav2::BlockQ4_K)) == 0);
  CHECK(std::memcmp(t6.data, q6.data(), q6.size() * sizeof(lav2::BlockQ6_K)) == 0);
  // ne[0] = 128 (half a super-block) for each type in turn.
  for (const char* name : {"m.q4_k", "m.q6_k"}) {
    std::vector<unsigned char> b = bytes;
    const std::size_t ne0 = find(b, name) + std::strlen(name) + 4;  // after the name: u32 n_dims, then ne[0]
    put_u64(b, ne0, 128);
    const std::string tensor = std::string("tensor '") + name + "'";
    const std::string why = std::string("rows of 128 elements are not a multiple of ") +
                            (tensor.find("q4_k") != std::string::npos ? "Q4_K" : "Q6_K") + "'s block of 256";
    LAV2_CHECK_THROWS_WITH_ALL(lav2::load_error, open_bytes(b), tensor.c_str(), "ne[0] = 128", why.c_str());
  }
}

TEST_CASE("gguf: every check of the reader refuses its file with the field and the values") {
  using lav2::limit_error;
  using lav2::load_error;
  const Small s;
  REQUIRE_NOTHROW(open_bytes(s.bytes));
  const std::size_t n_kv_at = 16, key_a = find(s.bytes, "general.architecture") - 8;
  const std::size_t name_b = find(s.bytes, std::string("\x01\0\0\0\0\0\0\0b", 9));  // length 1 + "b"
  const std::size_t b_dims = name_b + 9, b_ne0 = b_dims + 4, b_type = b_dims + 4 + 16, b_offset = b_type + 4;
  auto edit = [&](auto fn) {
    std::vector<unsigned char> b = s.bytes;
    fn(b);
    return b;
  };
  LAV2_CHECK_THROWS_WITH_ALL(load_error, open_bytes(edit([](auto& b) { b[0] = 'X'; })), "t.gguf", "not a GGUF file");
  LAV2_CHECK_THROWS_WITH_ALL(load_error, open_bytes(edit([](auto& b) { put_u32(b, 4, 1); })), "version 1");
  LAV2_CHECK_THROWS_WITH_ALL(load_error, open_bytes(edit([](auto& b) { put_u32(b, 4, 0x03000000u); })), "big-endian");
  LAV2_CHECK_THROWS_WITH_ALL(load_error, open_bytes(edit([](auto& b) { put_u32(b, 4, 4); })), "version 4");
  LAV2_CHECK_THROWS_WITH_ALL(limit_error, open_bytes(edit([&](auto& b) { put_u64(b, n_kv_at, 1ull << 40); })),
                             "metadata keys, over the limit");
  LAV2_CHECK_THROWS_WITH_ALL(load_error, open_bytes(edit([&](auto& b) { put_u64(b, n_kv_at, 1000); })),
                             "cannot fit in the");
  LAV2_CHECK_THROWS_WITH_ALL(limit_error, open_bytes(edit([&](auto& b) { put_u64(b, key_a, 1ull << 62); })), "key 0",
                             "over the limit");
  LAV2_CHECK_THROWS_WITH_ALL(load_error, open_bytes(edit([&](auto& b) { put_u64(b, key_a, 1u << 20); })), "key 0",
                             "past the file end");
  const std::size_t key_n = find(s.bytes, std::string("\x01\0\0\0\0\0\0\0n", 9));
  LAV2_CHECK_THROWS_WITH_ALL(load_error, open_bytes(edit([&](auto& b) { put_u32(b, key_n + 9, 13); })),
                             "key 'n' value type is 13, not a GGUF type");
  LAV2_CHECK_THROWS_WITH_ALL(load_error, open_bytes(edit([&](auto& b) { put_u32(b, key_n + 9, 7); })),
                             "key 'n' is a bool of value 7");
  LAV2_CHECK_THROWS_WITH_ALL(load_error, open_bytes(edit([&](auto& b) { b[name_b + 8] = 'a'; })), "tensor 'a'",
                             "name appears twice");
  LAV2_CHECK_THROWS_WITH_ALL(load_error, open_bytes(edit([&](auto& b) { put_u32(b, b_dims, 5); })), "tensor 'b'",
                             "5 dimensions");
  LAV2_CHECK_THROWS_WITH_ALL(load_error, open_bytes(edit([&](auto& b) { put_u64(b, b_ne0, 1ull << 63); })),
                             "tensor 'b'", "overflow int64");
  LAV2_CHECK_THROWS_WITH_ALL(load_error, open_bytes(edit([&](auto& b) { put_u64(b, b_ne0, 16); })), "tensor 'b'",
                             "rows of 16 elements are not a multiple of Q8_0's block of 32");
  LAV2_CHECK_THROWS_WITH_ALL(load_error, open_bytes(edit([&](auto& b) { put_u32(b, b_type, 13); })), "tensor 'b'",
                             "Q5_K is not supported");
  LAV2_CHECK_THROWS_WITH_ALL(load_error, open_bytes(edit([&](auto& b) { put_u32(b, b_type, 4); })), "tensor 'b'",
                             "ggml type 4 is not a ggml type");
  LAV2_CHECK_THROWS_WITH_ALL(load_error, open_bytes(edit([&](auto& b) { put_u64(b, b_offset, 0); })), "tensor 'b'",
                             "offset 0, expected 32");
  LAV2_CHECK_THROWS_WITH_ALL(load_error, open_bytes(edit([&](auto& b) { put_u64(b, b_ne0 + 8, 2); })), "tensor 'b'",
                             "lies outside the file");
  lav2::io::GgufLimits small;
  small.max_tensor_bytes = 16;
  LAV2_CHECK_THROWS_WITH_ALL(limit_error, open_bytes(s.bytes, small), "tensor 'a'", "exceed the tensor limit of 16");
}

TEST_CASE("gguf: general.alignment must be a u32 power of two, and is honoured") {
  std::vector<float> a(3, 1.0f);
  for (std::uint32_t align : {64u, 24u}) {
    GgufWriter w;
    w.set("general.alignment", GgufValue::of_int(GgufType::u32, align));
    w.add_tensor("a", DType::f32, Shape{3}, a.data());
    w.add_tensor("b", DType::f32, Shape{3}, a.data());
    const std::string p = temp_path("align.gguf");
    if (align == 24) {
      LAV2_CHECK_THROWS_WITH_ALL(lav2::input_error, w.write(p), "power of 2");
      continue;
    }
    w.write(p);
    const GgufFile f(p);
    CHECK(f.alignment() == 64);
    CHECK(f.tensor_infos()[1].offset == 64);
    fs::remove(p);
  }
  // A key one letter away from general.alignment, written as 7 (u32) or as a u64, then renamed.
  for (GgufType t : {GgufType::u32, GgufType::u64}) {
    GgufWriter w;
    w.set("general.alignmenX", GgufValue::of_int(t, 7));
    w.add_tensor("a", DType::f32, Shape{3}, a.data());
    const std::string p = temp_path("align_bad.gguf");
    w.write(p);
    std::vector<unsigned char> b = read_bytes(p);
    fs::remove(p);
    b[find(b, "general.alignmenX") + 16] = 't';
    if (t == GgufType::u32)
      LAV2_CHECK_THROWS_WITH_ALL(lav2::load_error, open_bytes(b), "general.alignment 7 is not a power of 2");
    else LAV2_CHECK_THROWS_WITH_ALL(lav2::load_error, open_bytes(b), "'general.alignment' is u64, expected u32");
  }
}

TEST_CASE("gguf: a key twice, and an array of arrays, are refused") {
  std::vector<float> a(3, 1.0f);
  GgufWriter w;
  w.set("ka", GgufValue::of_int(GgufType::u32, 1));
  w.set("kb", GgufValue::of_array(GgufType::u32, {GgufValue::of_int(GgufType::u32, 2)}));
  w.add_tensor("a", DType::f32, Shape{3}, a.data());
  const std::string p = temp_path("dup.gguf");
  w.write(p);
  const std::vector<unsigned char> good = read_bytes(p);
  fs::remove(p);
  std::vector<unsigned char> b = good;
  b[find(b, "kb") + 1] = 'a';
  LAV2_CHECK_THROWS_WITH_ALL(lav2::load_error, open_bytes(b), "t.gguf", "key 'ka' appears twice");
  b = good;
  put_u32(b, find(b, "kb") + 2 + 4, 9);  // the array's element type: array
  LAV2_CHECK_THROWS_WITH_ALL(lav2::load_error, open_bytes(b), "key 'kb' is an array of arrays");
  b = good;
  put_u64(b, find(b, "kb") + 2 + 8, 1ull << 30);  // the array's count
  LAV2_CHECK_THROWS_WITH_ALL(lav2::limit_error, open_bytes(b), "key 'kb' array of 1073741824 elements, over the limit");
  put_u64(b, find(b, "kb") + 2 + 8, 1000);
  LAV2_CHECK_THROWS_WITH_ALL(lav2::load_error, open_bytes(b), "key 'kb' array of 1000 u32 elements cannot fit");
}

TEST_CASE("gguf: every truncation of a valid file that cuts a byte of a tensor is refused") {
  const Small s;
  const GgufFile whole = open_bytes(s.bytes);
  const auto& last = whole.tensor_infos().back();
  const std::size_t end = std::size_t(whole.data_offset() + last.offset + last.bytes);
  REQUIRE(end < s.bytes.size());  // the last tensor's padding follows
  for (std::size_t n = 0; n < s.bytes.size(); ++n) {
    CAPTURE(n);
    const std::vector<unsigned char> cut(s.bytes.begin(), s.bytes.begin() + std::ptrdiff_t(n));
    if (n < end) CHECK_THROWS_AS(open_bytes(cut), lav2::load_error);
    else CHECK(open_bytes(cut).tensors().size() == 2);  // only the trailing padding is missing
  }
}

TEST_CASE("gguf: llama.cpp's own writer (gguf-py) and lav2's agree byte for byte") {
  // tests/data/gguf/gguf_py.gguf: tools/reference/make_gguf_fixture.py, with llama.cpp's gguf-py.
  const std::string path = std::string(LAV2_TEST_DATA_DIR) + "/gguf/gguf_py.gguf";
  const GgufFile f(path);
  CHECK(f.get_string("general.architecture", "") == "llama");
  CHECK(f.get_int("lav2.test.u32", 0, 0, 1LL << 32) == 4000000000LL);
  CHECK(f.get_int("lav2.test.i32", 0, -100, 100) == -7);
  CHECK(f.get_float("lav2.test.f32", 0) == double(1e-5f));
  CHECK(f.get_bool("lav2.test.bool", false));
  CHECK(f.get_string("lav2.test.string", "") == "héllo ▁");
  CHECK(f.get_array("lav2.test.strings", GgufType::string)->at(2).str == "▁a");
  CHECK(f.get_array("lav2.test.f32s", GgufType::f32)->at(2).f == 2.25);
  CHECK(f.get_array("lav2.test.i32s", GgufType::i32)->at(3).i == 6);
  std::vector<float> m(6);
  for (int i = 0; i < 6; ++i) m[std::size_t(i)] = float(i) * 0.5f - 1.0f;
  std::vector<lav2::f16_t> v(5);
  for (int i = 0; i < 5; ++i) v[std::size_t(i)] = lav2::from_f32<lav2::f16_t>(float(i) * 0.25f);
  REQUIRE(f.tensors().size() == 2);
  CHECK(f.tensors().at("m.f32").shape == Shape{2, 3});
  CHECK(std::memcmp(f.tensors().at("m.f32").data, m.data(), 24) == 0);
  CHECK(std::memcmp(f.tensors().at("v.f16").data, v.data(), 10) == 0);

  GgufWriter w;
  // gguf-py's key order, which the file keeps (metadata() is sorted by name).
  w.set("general.architecture", GgufValue::of_string("llama"));
  w.set("lav2.test.u32", GgufValue::of_int(GgufType::u32, 4000000000LL));
  w.set("lav2.test.i32", GgufValue::of_int(GgufType::i32, -7));
  w.set("lav2.test.f32", GgufValue::of_float(GgufType::f32, 1e-5));
  w.set("lav2.test.bool", GgufValue::of_bool(true));
  w.set("lav2.test.string", GgufValue::of_string("héllo ▁"));
  w.set("lav2.test.strings",
        GgufValue::of_array(GgufType::string,
                            {GgufValue::of_string("<s>"), GgufValue::of_string("</s>"), GgufValue::of_string("▁a")}));
  w.set("lav2.test.f32s", GgufValue::of_array(GgufType::f32, {GgufValue::of_float(GgufType::f32, 0.0),
                                                              GgufValue::of_float(GgufType::f32, -1.5),
                                                              GgufValue::of_float(GgufType::f32, 2.25)}));
  std::vector<GgufValue> ints;
  for (int i : {1, 2, 3, 6}) ints.push_back(GgufValue::of_int(GgufType::i32, i));
  w.set("lav2.test.i32s", GgufValue::of_array(GgufType::i32, ints));
  w.add_tensor("m.f32", DType::f32, Shape{2, 3}, m.data());
  w.add_tensor("v.f16", DType::f16, Shape{5}, v.data());
  const std::string p = temp_path("same.gguf");
  w.write(p);
  CHECK(read_bytes(p) == read_bytes(path));
  fs::remove(p);
}
