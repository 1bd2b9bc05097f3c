// Definitions of image.hpp's decoders, over stb_image (see lav2/core/api.hpp for why they are apart).
#pragma once

#include "lav2/core/api.hpp"
#if !LAV2_DEFINE_API
#error "an -inl.hpp is included by its header only (lav2/core/api.hpp)"
#endif

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "lav2/core/error.hpp"
// stb_image's JPEG bit reader shifts by a negative count once a corrupt entropy stream has driven
// its bit counter below zero (stbi__grow_buffer_unsafe, found by tests/fuzz/fuzz_image under UBSan:
// "shift exponent 38 is too large for 32-bit type"). The result only garbles the pixels of a file
// that is corrupt anyway; it touches no memory. So UBSan's shift check is switched off inside stb
// (and only there, under clang); its memory accesses stay checked by ASan.
#if defined(__clang__)
#pragma clang attribute push(__attribute__((no_sanitize("shift"))), apply_to = function)
#endif
#include "lav2/vision/detail/stb_image.hpp"
#if defined(__clang__)
#pragma clang attribute pop
#endif
#include "lav2/vision/detail/image_probe.hpp"
#include "lav2/vision/image.hpp"

namespace lav2::vision {

static_assert(ImageLimits{}.max_side == LAV2_STBI_MAX_DIMENSIONS, "ImageLimits::max_side default is stb's cap");

namespace detail {

/// Inflates a PNG's image data (its IDAT chunks, concatenated) into a buffer twice the size its
/// header implies, plus 1 KiB, and throws load_error when it does not fit. stb_image grows its
/// inflate buffer without bound, so a deflate bomb (1032:1) in a 4 MB file made it allocate 4 GB;
/// this bounds that allocation by the image size. Called after walk_png() accepted the chunks.
inline void check_png_inflate(const std::uint8_t* p, std::size_t n, const ImageHeader& h, const std::string& name) {
  if (n < 29) return;
  const int channels[] = {1, 0, 3, 1, 2, 0, 4};  // by colour type; 0: invalid, stb rejects it
  const std::uint8_t depth = p[24], color = p[25];
  if (color > 6 || channels[color] == 0 || depth == 0 || depth > 16) return;
  const std::uint64_t bpl = (h.width * depth + 7) / 8;
  const std::uint64_t limit = 2 * (bpl * h.height * std::uint64_t(channels[color]) + h.height) + 1024;
  if (limit > std::uint64_t(INT32_MAX))
    LAV2_THROW(limit_error, "image '", name, "': PNG image data of ", limit / 2,
               " bytes exceed the decoder's 2 GiB limit");
  std::string idat;
  for (std::size_t pos = 8; n - pos >= 12;) {
    const std::size_t len = read_be32(p + pos);  // walk_png checked it lies inside the file
    if (std::memcmp(p + pos + 4, "IDAT", 4) == 0) idat.append(reinterpret_cast<const char*>(p + pos + 8), len);
    if (std::memcmp(p + pos + 4, "IEND", 4) == 0) break;
    pos += 12 + len;
  }
  std::unique_ptr<char[]> out(new char[std::size_t(limit)]);
  if (stbi_zlib_decode_buffer(out.get(), int(limit), idat.data(), int(idat.size())) < 0) {
    const char* why = stbi_failure_reason();
    if (why && std::strcmp(why, "output buffer limit") == 0)
      LAV2_THROW(load_error, "image '", name, "': PNG image data inflates past ", limit, " bytes, twice what its ",
                 h.width, " x ", h.height, " header allows (a deflate bomb)");
    LAV2_THROW(load_error, "image '", name, "': cannot decode the PNG data (", why ? why : "bad zlib stream", ")");
  }
}

struct StbFree {
  void operator()(stbi_uc* p) const { stbi_image_free(p); }
};

}  // namespace detail

LAV2_API Image decode_image(const std::uint8_t* data, std::size_t size, const std::string& name,
                            const ImageLimits& limits, ChannelOrder order) {
  if (size > limits.max_file_bytes)
    LAV2_THROW(limit_error, "image '", name, "': ", size, " bytes exceed the limit of ", limits.max_file_bytes);
  const detail::ImageHeader h = detail::probe_image(data, size);
  if (h.format == detail::ImageFormat::unknown)
    LAV2_THROW(load_error, "image '", name, "': not a PNG or JPEG file (unrecognised signature)");
  const char* fmt = h.format == detail::ImageFormat::png ? "PNG" : "JPEG";
  if (h.width == 0 || h.height == 0)
    LAV2_THROW(load_error, "image '", name, "': ", fmt, " header declares no valid dimensions (truncated or corrupt)");
  if (h.width > limits.max_side || h.height > limits.max_side || h.width * h.height > limits.max_pixels)
    LAV2_THROW(limit_error, "image '", name, "': ", fmt, " declares ", h.width, " x ", h.height,
               " pixels, over the limit of ", limits.max_pixels, " pixels or ", limits.max_side, " per side");
  if (h.format == detail::ImageFormat::jpeg && !h.jpeg_complete)
    LAV2_THROW(load_error, "image '", name, "': JPEG ends before its EOI marker (truncated)");
  if (h.format == detail::ImageFormat::png && h.png_bad_chunk != 0)
    LAV2_THROW(load_error, "image '", name, "': PNG chunk at byte ", h.png_bad_chunk, " declares ",
               detail::read_be32(data + h.png_bad_chunk), " bytes, past the end of the file (truncated or corrupt)");
  if (h.format == detail::ImageFormat::png && !h.png_complete)
    LAV2_THROW(load_error, "image '", name, "': PNG ends before its IEND chunk (truncated)");
  if (h.format == detail::ImageFormat::png) detail::check_png_inflate(data, size, h, name);
  if (h.format == detail::ImageFormat::jpeg && h.jpeg_bad_dht != 0)
    LAV2_THROW(load_error, "image '", name, "': JPEG Huffman table segment (DHT) at byte ", h.jpeg_bad_dht,
               " declares more than 256 codes or runs past its segment (corrupt)");
  if (h.format == detail::ImageFormat::jpeg && h.jpeg_bad_scan != 0)
    LAV2_THROW(load_error, "image '", name, "': JPEG scan (SOS) at byte ", h.jpeg_bad_scan,
               " decodes with a Huffman table that no earlier DHT segment defines (corrupt)");
  if (size > std::size_t(INT32_MAX))
    LAV2_THROW(limit_error, "image '", name, "': ", size, " bytes exceed the decoder's 2 GiB limit");

  // A second, independent gate: stb's own header parse must agree before it allocates pixels.
  int w = 0, hgt = 0, comp = 0;
  if (!stbi_info_from_memory(data, int(size), &w, &hgt, &comp) || std::uint64_t(w) != h.width ||
      std::uint64_t(hgt) != h.height)
    LAV2_THROW(load_error, "image '", name, "': ", fmt, " header rejected by the decoder (",
               stbi_failure_reason() ? stbi_failure_reason() : "dimension mismatch", ")");
  // req_comp = 3: gray is replicated, alpha dropped; 16-bit samples are reduced with >> 8.
  std::unique_ptr<stbi_uc, detail::StbFree> px(stbi_load_from_memory(data, int(size), &w, &hgt, &comp, 3));
  if (!px)
    LAV2_THROW(load_error, "image '", name, "': cannot decode the ", fmt, " data (",
               stbi_failure_reason() ? stbi_failure_reason() : "unknown error", ")");
  Image img(w, hgt, ChannelOrder::rgb);
  std::memcpy(img.pixels.data(), px.get(), img.pixels.size());
  px.reset();
  if (h.format == detail::ImageFormat::jpeg && h.exif_orientation != 1)
    img = detail::apply_exif_orientation(img, h.exif_orientation);
  if (order == ChannelOrder::bgr) {
    for (std::size_t i = 0; i < img.pixels.size(); i += 3) std::swap(img.pixels[i], img.pixels[i + 2]);
  }
  img.order = order;
  return img;
}

LAV2_API Image load_image(const std::string& path, const ImageLimits& limits, ChannelOrder order) {
  const std::vector<std::uint8_t> bytes = detail::read_file_limited(path, limits.max_file_bytes);
  return decode_image(bytes.data(), bytes.size(), path, limits, order);
}

}  // namespace lav2::vision
