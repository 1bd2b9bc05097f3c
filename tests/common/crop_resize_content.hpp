// The test images of tests/data/images/crop_resize.json, made at test time by the rule of
// tools/reference/make_crop_resize_fixture.py, and the checksum that file stores for Pillow's result.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

#include <lav2/vision/image.hpp>

namespace lav2::test {

/// The content rule, for sample i = (y * w + x) * 3 + c in uint32 arithmetic (RGB order):
///   noise: h = i * 0x9E3779B1 ^ seed; h ^= h >> 16; h *= 0x85EBCA6B; h ^= h >> 13; value = h >> 24
///   bands: value = ((x / 3 + y / 2) * 37 + c * 85) & 255
inline vision::Image crop_resize_content(int w, int h, const std::string& kind, std::uint32_t seed) {
  vision::Image img(w, h, vision::ChannelOrder::rgb);
  for (std::size_t i = 0; i < img.pixels.size(); ++i) {
    if (kind == "noise") {
      std::uint32_t v = std::uint32_t(i) * 0x9E3779B1u ^ seed;
      v ^= v >> 16;
      v *= 0x85EBCA6Bu;
      v ^= v >> 13;
      img.pixels[i] = std::uint8_t(v >> 24);
    } else {
      const std::int64_t px = std::int64_t(i / 3), x = px % w, y = px / w, c = std::int64_t(i % 3);
      img.pixels[i] = std::uint8_t(((x / 3 + y / 2) * 37 + c * 85) & 255);
    }
  }
  return img;
}

/// FNV-1a 64 of the image's bytes (HWC), as 16 hex digits.
inline std::string fnv1a64(const vision::Image& img) {
  std::uint64_t h = 0xCBF29CE484222325ull;
  for (std::uint8_t b : img.pixels) h = (h ^ b) * 0x100000001B3ull;
  char s[17];
  std::snprintf(s, sizeof s, "%016llx", static_cast<unsigned long long>(h));
  return s;
}

}  // namespace lav2::test
