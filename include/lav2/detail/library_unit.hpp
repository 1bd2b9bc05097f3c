// The body of lav2's library unit: the source that lav2_add_library_unit()
// (cmake/lav2_library_unit.cmake) generates defines LAV2_LIBRARY_UNIT, includes this header and
// is compiled once per build tree. Each header below then includes its -inl.hpp, so the unit
// defines every LAV2_API function, non-inline (lav2/core/api.hpp).
#pragma once

#if !defined(LAV2_LIBRARY_UNIT) || !LAV2_COMPILED
#error "library_unit.hpp is included only by the source that lav2_add_library_unit() generates"
#endif

#include "lav2/model/gguf_llama.hpp"
#include "lav2/model/gguf_mm.hpp"
#include "lav2/model/llama_loader.hpp"
#include "lav2/model/model_loader.hpp"
#include "lav2/text/tokenizer.hpp"
#include "lav2/vision/clip_vit.hpp"
#include "lav2/vision/image.hpp"
