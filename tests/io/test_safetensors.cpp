// safetensors reader: a valid file and one file per spec check.
#include <doctest/doctest.h>

#include <cstdint>

#include "io/io_test_util.hpp"
#include "lav2/io/safetensors.hpp"

using lav2::DType;
using lav2::Shape;
using lav2::io::SafetensorsFile;
using lav2_test::io_data;

TEST_CASE("safetensors: tensors, dtypes and __metadata__") {
  SafetensorsFile f(io_data("good.safetensors"));
  const auto& t = f.tensors();
  REQUIRE(t.size() == 5);
  CHECK(f.metadata().at("format") == "pt");
  CHECK(f.copied_bytes() == 0);
  const auto a = t.at("f32").as<float>();
  CHECK(a.shape() == Shape{2, 3});
  CHECK(a(1, 2) == 5.0f);
  CHECK(lav2::to_f32(t.at("f16").as<lav2::f16_t>()[0]) == 1.5f);
  CHECK(lav2::to_f32(t.at("bf16").as<lav2::bf16_t>()[1]) == -2.0f);
  CHECK(t.at("i64").as<std::int64_t>()[0] == -5);
  CHECK(t.at("empty").numel() == 0);
}

TEST_CASE("safetensors: a misaligned data section is copied to aligned memory") {
  SafetensorsFile f(io_data("misaligned.safetensors"));
  CHECK(f.copied_bytes() > 0);
  CHECK(f.tensors().at("f32").as<float>()(0, 1) == 1.0f);
  CHECK(reinterpret_cast<std::uintptr_t>(f.tensors().at("f32").data) % 4 == 0);
}

TEST_CASE("safetensors: every spec violation is a load_error naming the file and the tensor") {
  using lav2::load_error;
  LAV2_CHECK_THROWS_WITH_ALL(load_error, SafetensorsFile(io_data("st_bad_dtype.safetensors")),
                             "st_bad_dtype.safetensors", "tensor 'x'", "dtype 'Q4' is not supported");
  LAV2_CHECK_THROWS_WITH_ALL(load_error, SafetensorsFile(io_data("st_f64.safetensors")),
                             "dtype 'F64' is not supported");
  LAV2_CHECK_THROWS_WITH_ALL(load_error, SafetensorsFile(io_data("st_shape_mismatch.safetensors")), "tensor 'x'",
                             "data_offsets span 8 bytes, shape (3,) of F32 needs 3 x 4");
  LAV2_CHECK_THROWS_WITH_ALL(load_error, SafetensorsFile(io_data("st_overlap.safetensors")), "st_overlap.safetensors",
                             "tensor 'b'", "overlaps");
  LAV2_CHECK_THROWS_WITH_ALL(load_error, SafetensorsFile(io_data("st_hole.safetensors")), "bytes [4, 8)",
                             "belong to no tensor");
  LAV2_CHECK_THROWS_WITH_ALL(load_error, SafetensorsFile(io_data("st_out_of_range.safetensors")), "tensor 'a'",
                             "data_offsets [8, 16]");
  LAV2_CHECK_THROWS_WITH_ALL(load_error, SafetensorsFile(io_data("st_bad_metadata.safetensors")), "__metadata__ 'n'",
                             "expected a string");
  LAV2_CHECK_THROWS_WITH_ALL(load_error, SafetensorsFile(io_data("st_header_too_long.safetensors")),
                             "st_header_too_long.safetensors", "header length 1000 runs past the file end");
  LAV2_CHECK_THROWS_WITH_ALL(load_error, SafetensorsFile(io_data("st_not_json.safetensors")), "not valid JSON");
  LAV2_CHECK_THROWS_WITH_ALL(load_error, SafetensorsFile(io_data("st_duplicate.safetensors")), "names 'a' twice");
  LAV2_CHECK_THROWS_WITH_ALL(load_error, SafetensorsFile(io_data("empty.pth")), "too short");
  lav2::io::SafetensorsLimits lim;
  lim.max_header_bytes = 16;
  LAV2_CHECK_THROWS_WITH_ALL(lav2::limit_error, SafetensorsFile(io_data("good.safetensors"), lim),
                             "exceeds the limit 16");
}
