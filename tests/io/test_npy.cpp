// .npy reader and writer against files numpy.save wrote.
#include <doctest/doctest.h>

#include <unistd.h>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>

#include "io/io_test_util.hpp"
#include "lav2/io/npy.hpp"

using lav2::DType;
using lav2::Shape;
using lav2_test::io_data;

namespace {
std::string slurp(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}
// Writes `v` and checks the bytes equal numpy's file `golden`.
void check_roundtrip_bytes(const lav2::AnyTensorView& v, const std::string& golden) {
  const std::string out = std::string("/tmp/lav2_test_npy_") + std::to_string(::getpid()) + ".npy";
  lav2::io::write_npy(out, v);
  CHECK(slurp(out) == slurp(io_data(golden)));
  std::remove(out.c_str());
}
}  // namespace

TEST_CASE("npy: read numpy files of each dtype") {
  const auto a = lav2::io::read_npy(io_data("f32_2x3.npy"));
  CHECK(a.dtype == DType::f32);
  CHECK(a.shape == Shape{2, 3});
  CHECK(a.as<float>()(1, 2) == 1.25f);
  CHECK(lav2::to_f32(lav2::io::read_npy(io_data("f16_4.npy")).as<lav2::f16_t>()[3]) == 65504.0f);
  const auto i = lav2::io::read_npy_as<std::int64_t>(io_data("i64_3.npy"));
  CHECK(i[2] == (std::int64_t(1) << 40));
  const auto s = lav2::io::read_npy(io_data("i32_scalar.npy"));
  CHECK(s.shape.rank == 0);
  CHECK(*s.as<std::int32_t>().data() == -7);
  CHECK(lav2::io::read_npy_as<std::int64_t>(io_data("i64_1000.npy"))[999] == 999);
  LAV2_CHECK_THROWS_WITH_ALL(lav2::load_error, lav2::io::read_npy_as<float>(io_data("i64_3.npy")),
                             "holds i64, expected f32");
}

TEST_CASE("npy: the writer matches numpy.save byte for byte") {
  for (const char* g : {"f32_2x3.npy", "f16_4.npy", "i64_3.npy", "i32_scalar.npy", "i64_1000.npy"}) {
    INFO(g);
    const auto a = lav2::io::read_npy(io_data(g));
    check_roundtrip_bytes(a.view(), g);
  }
  // A strided (transposed) view is written in C order.
  const float data[6] = {0, 3, 1, 4, 2, 5};  // the transpose of [[0,1,2],[3,4,5]] / 4 scaled below
  float scaled[6];
  for (int k = 0; k < 6; ++k) scaled[k] = data[k] / 4;
  lav2::TensorView<const float> t(scaled, Shape{2, 3}, lav2::Strides{1, 2});
  const std::string out = std::string("/tmp/lav2_test_npy_t_") + std::to_string(::getpid()) + ".npy";
  lav2::io::write_npy(out, t);
  CHECK(slurp(out) == slurp(io_data("f32_2x3.npy")));
  std::remove(out.c_str());
  LAV2_CHECK_THROWS_WITH_ALL(lav2::input_error, lav2::io::write_npy("/nonexistent-dir/x.npy", t),
                             "cannot open for writing");
}

TEST_CASE("npy: broken and unsupported files are rejected naming the file") {
  using lav2::load_error;
  LAV2_CHECK_THROWS_WITH_ALL(load_error, lav2::io::read_npy(io_data("npy_fortran.npy")), "npy_fortran.npy",
                             "fortran_order");
  LAV2_CHECK_THROWS_WITH_ALL(load_error, lav2::io::read_npy(io_data("npy_big_endian.npy")), "'>f4' is not supported");
  LAV2_CHECK_THROWS_WITH_ALL(load_error, lav2::io::read_npy(io_data("npy_f64.npy")), "'<f8' is not supported");
  LAV2_CHECK_THROWS_WITH_ALL(load_error, lav2::io::read_npy(io_data("npy_truncated.npy")), "npy_truncated.npy",
                             "data holds 20 bytes", "needs 24");
  LAV2_CHECK_THROWS_WITH_ALL(load_error, lav2::io::read_npy(io_data("state_dict.pth")), "magic");
}
