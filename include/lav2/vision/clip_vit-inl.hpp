// Definition of ClipVisionModel::load, the file reader's entry (see lav2/core/api.hpp for why it is apart).
#pragma once

#include "lav2/core/api.hpp"
#if !LAV2_DEFINE_API
#error "an -inl.hpp is included by its header only (lav2/core/api.hpp)"
#endif

#include <string>

#include "lav2/io/tensor_file.hpp"
#include "lav2/vision/clip_vit.hpp"

namespace lav2::vision {

LAV2_API ClipVisionModel ClipVisionModel::load(const std::string& path) {
  const io::TensorFile f = io::open_tensor_file(path);
  return from_tensors(f.tensors, path, f.keep_alive);
}

}  // namespace lav2::vision
