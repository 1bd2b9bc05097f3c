// The F16C / AVX-512 / integer SIMD conversions equal the scalar specification of
// tensor/dtype.hpp bit for bit: every 16-bit pattern when widening, and every rounding boundary
// (each f16/bf16 value, the midpoints and their f32 neighbours) plus specials when narrowing.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include <lav2/tensor/dtype.hpp>

#include "kernels/levels.hpp"

using namespace lav2;
using namespace lav2::kernels;
using lav2::kernels::test::for_each_level;
using lav2::kernels::test::level_attention;
using lav2::kernels::test::level_matmul;

namespace {

// Every f32 that decides a rounding of f32 -> 16 bits: for each pair of adjacent 16-bit values
// (given by widen), both values, their midpoint and the midpoint's two f32 neighbours; plus
// zeros, infinities, NaNs with payloads, the largest finite f32, and the smallest subnormals.
template <class Widen>
std::vector<float> boundary_cases(Widen widen) {
  std::vector<float> v;
  for (std::uint32_t h = 0; h < 0xffff; ++h) {
    const float a = widen(std::uint16_t(h)), b = widen(std::uint16_t(h + 1));
    if (!std::isfinite(a) || !std::isfinite(b)) continue;
    const float mid = float((double(a) + double(b)) / 2);
    v.insert(v.end(), {a, b, mid, std::nextafter(mid, -INFINITY), std::nextafter(mid, INFINITY)});
  }
  const float specials[] = {0.0f,
                            -0.0f,
                            INFINITY,
                            -INFINITY,
                            std::numeric_limits<float>::max(),
                            -std::numeric_limits<float>::max(),
                            std::numeric_limits<float>::denorm_min(),
                            std::numeric_limits<float>::min(),
                            65504.0f,
                            65519.99f,
                            65520.0f,
                            1e-8f,
                            -1e-8f,
                            f32_from_bits(0x7fc00000u),
                            f32_from_bits(0xffc00001u),
                            f32_from_bits(0x7f800001u),
                            f32_from_bits(0x7fbfffffu),
                            f32_from_bits(0xff812345u)};
  v.insert(v.end(), std::begin(specials), std::end(specials));
  return v;
}
}  // namespace

TEST_CASE("SIMD f16 -> f32 equals the scalar conversion for all 65,536 patterns") {
  for_each_level([&](const KernelTable& L) {
    [[maybe_unused]] const std::int64_t kLanes = L.float_lanes;
    std::vector<f16_t> in(65536);
    for (std::uint32_t h = 0; h < 65536; ++h) in[h].bits = std::uint16_t(h);
    std::vector<float> out(in.size());
    L.convert_f16_to_f32(out.data(), in.data(), std::int64_t(in.size()));
    for (std::uint32_t h = 0; h < 65536; ++h) REQUIRE(f32_bits(out[h]) == f32_bits(f16_to_f32(std::uint16_t(h))));
  });
}

TEST_CASE("SIMD bf16 -> f32 equals the scalar conversion for all 65,536 patterns") {
  for_each_level([&](const KernelTable& L) {
    [[maybe_unused]] const std::int64_t kLanes = L.float_lanes;
    std::vector<bf16_t> in(65536);
    for (std::uint32_t h = 0; h < 65536; ++h) in[h].bits = std::uint16_t(h);
    std::vector<float> out(in.size());
    L.convert_bf16_to_f32(out.data(), in.data(), std::int64_t(in.size()));
    for (std::uint32_t h = 0; h < 65536; ++h) REQUIRE(f32_bits(out[h]) == f32_bits(bf16_to_f32(std::uint16_t(h))));
  });
}

TEST_CASE_TEMPLATE("SIMD f32 -> 16-bit equals the scalar conversion at every rounding boundary", T, f16_t, bf16_t) {
  for_each_level([&](const KernelTable& L) {
    [[maybe_unused]] const std::int64_t kLanes = L.float_lanes;
    constexpr bool kHalf = std::is_same_v<T, f16_t>;
    const auto in = kHalf ? boundary_cases(f16_to_f32) : boundary_cases(bf16_to_f32);
    std::vector<T> out(in.size());
    if constexpr (kHalf) {
      L.convert_f32_to_f16(out.data(), in.data(), std::int64_t(in.size()));
    } else {
      L.convert_f32_to_bf16(out.data(), in.data(), std::int64_t(in.size()));
    }
    for (std::size_t i = 0; i < in.size(); ++i) {
      INFO(dtype_name(dtype_of_v<T>), " input bits 0x", std::hex, f32_bits(in[i]));
      REQUIRE(out[i].bits == (kHalf ? f32_to_f16(in[i]) : f32_to_bf16(in[i])));
    }
  });
}

TEST_CASE("SIMD conversions handle every tail length") {
  for_each_level([&](const KernelTable& L) {
    [[maybe_unused]] const std::int64_t kLanes = L.float_lanes;
    for (std::int64_t n = 0; n <= 40; ++n) {
      std::vector<f16_t> h(static_cast<std::size_t>(n));
      std::vector<bf16_t> b(static_cast<std::size_t>(n));
      std::vector<float> x(static_cast<std::size_t>(n)), y(std::size_t(n), -1.0f);
      for (std::int64_t i = 0; i < n; ++i) x[std::size_t(i)] = float(i) * 0.25f - 3.0f;
      L.convert_f32_to_f16(h.data(), x.data(), n);
      L.convert_f16_to_f32(y.data(), h.data(), n);
      CHECK(x == y);  // quarters of small integers are exact in f16
      L.convert_f32_to_bf16(b.data(), x.data(), n);
      L.convert_bf16_to_f32(y.data(), b.data(), n);
      CHECK(x == y);
    }
  });
}
