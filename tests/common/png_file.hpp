// Writes an Image as a PNG file (stb_image_write, Debian's libstb-dev), for tests that need an image
// file of a shape made at test time instead of a stored fixture.
#pragma once

#include <string>

#include <lav2/vision/image.hpp>

#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#endif
#if __has_include(<stb/stb_image_write.h>)
#include <stb/stb_image_write.h>
#else
#include <stb_image_write.h>
#endif
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

namespace lav2::test {

/// Writes `img`'s bytes as an 8-bit, 3-channel PNG (in the image's channel order); false on failure.
inline bool write_png(const std::string& path, const lav2::vision::Image& img) {
  return stbi_write_png(path.c_str(), img.width, img.height, 3, img.pixels.data(), img.width * 3) != 0;
}

}  // namespace lav2::test
