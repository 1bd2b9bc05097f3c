#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>

#include <lav2/tensor/dtype.hpp>

using namespace lav2;

namespace {
// Independent f16 decoding through ldexp, the textbook formula.
double f16_formula(std::uint16_t h) {
  const int sign = (h & 0x8000) ? -1 : 1;
  const int exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  if (exp == 0) return sign * std::ldexp(double(mant), -24);
  if (exp == 31) return mant ? std::numeric_limits<double>::quiet_NaN() : sign * INFINITY;
  return sign * std::ldexp(double(1024 + mant), exp - 25);
}
float next_up(float f) { return std::nextafter(f, INFINITY); }
float next_down(float f) { return std::nextafter(f, -INFINITY); }
}  // namespace

TEST_CASE("f16 -> f32 is exact for all 65,536 bit patterns") {
  for (std::uint32_t h = 0; h < 65536; ++h) {
    const float got = f16_to_f32(std::uint16_t(h));
    const double want = f16_formula(std::uint16_t(h));
    if (std::isnan(want)) {
      REQUIRE(std::isnan(got));
      REQUIRE(((f32_bits(got) >> 13) & 0x3ff) == (h & 0x3ff));  // payload kept
    } else {
      REQUIRE(double(got) == want);
      REQUIRE(std::signbit(got) == bool(h & 0x8000));
    }
  }
}

TEST_CASE("bf16 -> f32 is exact for all 65,536 bit patterns") {
  for (std::uint32_t b = 0; b < 65536; ++b) {
    const float got = bf16_to_f32(std::uint16_t(b));
    REQUIRE(f32_bits(got) == (b << 16));
  }
}

TEST_CASE("f32 -> f16 rounds to nearest even at every rounding boundary") {
  for (std::uint32_t sign : {0u, 0x8000u}) {
    // Every pair of adjacent finite f16 values a < b (magnitudes), subnormals included.
    for (std::uint32_t h = 0; h < 0x7bff; ++h) {
      const std::uint16_t ha = std::uint16_t(h | sign), hb = std::uint16_t((h + 1) | sign);
      const float a = f16_to_f32(ha), b = f16_to_f32(hb);
      const float mid = (a + b) / 2;  // exact: 12 significant bits
      REQUIRE(f32_to_f16(a) == ha);
      REQUIRE(f32_to_f16(b) == hb);
      const std::uint16_t even = (h & 1) ? hb : ha;
      REQUIRE(f32_to_f16(mid) == even);
      const float toward_a = sign ? next_up(mid) : next_down(mid);
      const float toward_b = sign ? next_down(mid) : next_up(mid);
      REQUIRE(f32_to_f16(toward_a) == ha);
      REQUIRE(f32_to_f16(toward_b) == hb);
    }
  }
  // Overflow: 65520 is the tie between 65504 (odd mantissa) and 65536, so it goes to infinity.
  CHECK(f32_to_f16(65504.0f) == 0x7bff);
  CHECK(f32_to_f16(next_down(65520.0f)) == 0x7bff);
  CHECK(f32_to_f16(65520.0f) == 0x7c00);
  CHECK(f32_to_f16(-65520.0f) == 0xfc00);
  CHECK(f32_to_f16(1e30f) == 0x7c00);
  CHECK(f32_to_f16(INFINITY) == 0x7c00);
  CHECK(f32_to_f16(-INFINITY) == 0xfc00);
  // Below half the smallest subnormal: zero with the sign kept; f32 subnormals too.
  CHECK(f32_to_f16(std::ldexp(1.0f, -25)) == 0x0000);  // tie with 0 -> even (0)
  CHECK(f32_to_f16(next_up(std::ldexp(1.0f, -25))) == 0x0001);
  CHECK(f32_to_f16(-std::ldexp(1.0f, -30)) == 0x8000);
  CHECK(f32_to_f16(std::numeric_limits<float>::denorm_min()) == 0x0000);
  CHECK(f32_to_f16(-0.0f) == 0x8000);
  // NaN stays NaN (quiet), with its sign.
  const std::uint16_t n = f32_to_f16(std::numeric_limits<float>::quiet_NaN());
  CHECK((n & 0x7c00) == 0x7c00);
  CHECK((n & 0x3ff) != 0);
  CHECK((f32_to_f16(f32_from_bits(0xff800001u)) & 0xfe00) == 0xfe00);  // signalling -> quiet, negative
}

TEST_CASE("f32 -> bf16 rounds to nearest even at every rounding boundary") {
  for (std::uint32_t sign : {0u, 0x8000u}) {
    for (std::uint32_t h = 0; h < 0x7f7f; ++h) {
      const std::uint16_t ba = std::uint16_t(h | sign), bb = std::uint16_t((h + 1) | sign);
      const std::uint32_t a = std::uint32_t(ba) << 16;
      const std::uint32_t mid = a + 0x8000u;  // bit pattern halfway between ba and bb
      REQUIRE(f32_to_bf16(f32_from_bits(a)) == ba);
      REQUIRE(f32_to_bf16(f32_from_bits(mid)) == ((h & 1) ? bb : ba));
      REQUIRE(f32_to_bf16(f32_from_bits(mid - 1)) == ba);
      REQUIRE(f32_to_bf16(f32_from_bits(mid + 1)) == bb);
    }
  }
  CHECK(f32_to_bf16(f32_from_bits(0x7f7fffffu)) == 0x7f80);  // FLT_MAX rounds up to inf
  CHECK(f32_to_bf16(INFINITY) == 0x7f80);
  CHECK(f32_to_bf16(-INFINITY) == 0xff80);
  const std::uint16_t n = f32_to_bf16(f32_from_bits(0x7f800001u));  // NaN with only a low payload bit
  CHECK((n & 0x7f80) == 0x7f80);
  CHECK((n & 0x7f) != 0);  // still a NaN, not infinity
}
