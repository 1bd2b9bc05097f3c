// TensorMap: what the checkpoint readers return, tensor name -> read-only view into a mapping.
#pragma once

#include <functional>
#include <map>
#include <string>

#include "lav2/tensor/tensor.hpp"

namespace lav2::io {

/// \brief Tensor name -> view, sorted by name; lookups take string_view (std::less<>).
/// The views point into a mapping owned by the reader that made the map: keep the reader (or
/// its `keep_alive()` handle) alive while the views are used.
using TensorMap = std::map<std::string, AnyTensorView, std::less<>>;

}  // namespace lav2::io
