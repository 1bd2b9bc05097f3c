// Image loading: PNG and JPEG files -> 8-bit, 3-channel, HWC pixels, as cv2.imread(path) gives them.
//
// The official LLaMA-Adapter V2 pipeline reads images with `cv2.imread(path)` (IMREAD_COLOR), so
// the released weights saw BGR pixels. load_image() reproduces what that call returns:
//   - gray -> three equal channels; alpha dropped (not composited); 16-bit samples -> v >> 8;
//   - JPEG EXIF orientation (APP1 "Exif", TIFF IFD0 tag 0x0112, both byte orders, values 1..8)
//     applied, so the pixels are upright;
//   - channel order BGR by default (ChannelOrder::rgb on request).
// Decoding is stb_image (see detail/stb_image.hpp). PNG is lossless, so PNG pixels equal
// OpenCV's/Pillow's exactly; stb's JPEG IDCT and chroma upsampling differ from libjpeg-turbo's by a
// few levels (docs/vision.md gives the measured bound).
//
// Hostile input: the file is read with a byte limit; the declared dimensions are parsed by lav2
// (PNG IHDR, JPEG SOFn) and checked against ImageLimits before the decoder allocates anything;
// a JPEG must reach its EOI marker (a truncated file is rejected, where libjpeg would pad it with
// gray). Every failure throws load_error or limit_error naming the file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "lav2/core/api.hpp"
#include "lav2/vision/image_limits.hpp"

namespace lav2::vision {

/// \brief Order of the three channels of an Image.
enum class ChannelOrder {
  bgr,  ///< cv2.imread's order; what the released weights were trained on (the default)
  rgb,  ///< Pillow's order
};

/// \brief An 8-bit, 3-channel image, rows top to bottom, pixels interleaved (HWC).
struct Image {
  int width = 0;
  int height = 0;
  ChannelOrder order = ChannelOrder::bgr;
  std::vector<std::uint8_t> pixels;  // (height, width, 3)

  Image() = default;
  Image(int w, int h, ChannelOrder o = ChannelOrder::bgr)
      : width(w), height(h), order(o), pixels(std::size_t(w) * std::size_t(h) * 3u) {}

  std::uint8_t* row(int y) { return pixels.data() + std::size_t(y) * std::size_t(width) * 3u; }
  const std::uint8_t* row(int y) const { return pixels.data() + std::size_t(y) * std::size_t(width) * 3u; }
  /// Channel `c` of pixel (x, y); no bounds check.
  std::uint8_t& at(int x, int y, int c) { return row(y)[std::size_t(x) * 3u + std::size_t(c)]; }
  std::uint8_t at(int x, int y, int c) const { return row(y)[std::size_t(x) * 3u + std::size_t(c)]; }
  bool empty() const { return pixels.empty(); }
};

/// \brief Decodes a PNG or JPEG held in memory; see load_image().
/// \param name used in error messages (the file name, or a description).
LAV2_API Image decode_image(const std::uint8_t* data, std::size_t size, const std::string& name,
                            const ImageLimits& limits = {}, ChannelOrder order = ChannelOrder::bgr);

/// \brief Loads a PNG or JPEG file as cv2.imread(path) would: 8-bit, 3 channels, upright.
/// \param path file to read (at most `limits.max_file_bytes`).
/// \param limits checked against the declared dimensions before decoding.
/// \param order BGR (the default, what the released weights expect) or RGB.
/// \throws load_error for unreadable, unsupported, truncated or corrupt files; limit_error when a
///         limit would be exceeded. Messages name the file.
LAV2_API Image load_image(const std::string& path, const ImageLimits& limits = {},
                          ChannelOrder order = ChannelOrder::bgr);

}  // namespace lav2::vision

#if LAV2_DEFINE_API
#include "lav2/vision/image-inl.hpp"
#endif
