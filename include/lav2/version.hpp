// lav2 version. CMake parses these three macros; keep them on their own lines.
#pragma once

#define LAV2_VERSION_MAJOR 0
#define LAV2_VERSION_MINOR 1
#define LAV2_VERSION_PATCH 0

namespace lav2 {
/// \brief The library version as "MAJOR.MINOR.PATCH".
inline constexpr const char* kVersion = "0.1.0";
}  // namespace lav2
