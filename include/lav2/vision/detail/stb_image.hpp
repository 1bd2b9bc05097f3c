// Internal: compiles stb_image (PNG and JPEG decoders only) into the including translation unit.
//
// lav2 is header-only, so there is no .cpp in which stb_image could be compiled exactly once.
// Instead every function of stb_image gets internal linkage (STB_IMAGE_STATIC): each TU that
// includes lav2/vision/image.hpp owns a private copy of the decoder. Consequences:
//   - no symbol clashes with a program that compiles its own stb_image elsewhere (ours are static);
//   - stb's global settings (flip on load, failure reason) are private to lav2, so a caller's
//     stbi_set_flip_vertically_on_load() cannot change what load_image() returns;
//   - the cost is code size: about 60 KB of object code per TU that decodes images.
// Including stb_image.h yourself *before* this header in the same TU cannot work (its extern
// declarations would clash with the static definitions), so that is rejected at compile time;
// include lav2's header first or keep your own stb use in another TU.
//
// Hardening: only PNG and JPEG are compiled in (STBI_ONLY_*), no stdio (lav2 reads the file itself
// under a size limit), and STBI_MAX_DIMENSIONS caps either side before stb allocates anything.
// lav2 additionally checks the declared area against ImageLimits before calling the decoder.
#pragma once

#if defined(STBI_INCLUDE_STB_IMAGE_H)
#error "lav2/vision/image.hpp must be included before stb_image.h in the same translation unit"
#endif

/// Largest width or height stb_image accepts (JPEG itself stops at 65535).
#define LAV2_STBI_MAX_DIMENSIONS (1 << 17)

#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_NO_STDIO
#define STBI_NO_LINEAR
#define STBI_NO_HDR
#define STBI_MAX_DIMENSIONS LAV2_STBI_MAX_DIMENSIONS

#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wdouble-promotion"
#pragma GCC diagnostic ignored "-Wconversion"
#pragma GCC diagnostic ignored "-Wshadow"
#endif

#if __has_include(<stb/stb_image.h>)
#include <stb/stb_image.h>  // Debian/Ubuntu libstb-dev layout
#else
#include <stb_image.h>
#endif

#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

// Keep stb's configuration macros from leaking into the user's code (stb's own guard stays).
#undef STB_IMAGE_STATIC
#undef STB_IMAGE_IMPLEMENTATION
#undef STBI_ONLY_PNG
#undef STBI_ONLY_JPEG
#undef STBI_NO_STDIO
#undef STBI_NO_LINEAR
#undef STBI_NO_HDR
