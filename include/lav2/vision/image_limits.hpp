// Limits of the image reader (vision/image.hpp), apart from the decoder so that lav2::Limits
// (lav2/limits.hpp) can carry them without pulling stb_image in.
#pragma once

#include <cstdint>

namespace lav2::vision {

/// \brief Limits applied before decoding; exceeding one throws limit_error.
struct ImageLimits {
  std::uint64_t max_file_bytes = 256ull << 20;  ///< size of the file on disk
  std::uint64_t max_pixels = 1ull << 26;        ///< width * height as declared in the header (64 Mpx)
  /// Either side; stb_image itself stops at LAV2_STBI_MAX_DIMENSIONS (1 << 17, checked in image.hpp),
  /// so raising this further has no effect.
  std::uint32_t max_side = 1u << 17;
};

}  // namespace lav2::vision
