// Helpers shared by the model tests.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <lav2/core/error.hpp>
#include <lav2/model/llama_weights.hpp>
#include <lav2/tensor/tensor.hpp>

#include "common/compare.hpp"

namespace lav2::test {

/// The message of the lav2::error that fn() throws, or "(no error)".
template <class Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const lav2::error& e) {
    return e.what();
  }
  return "(no error)";
}

/// A dense copy of `src` in dtype T (values rounded to T), kept alive by the returned pointer;
/// `view` is pointed at it.
template <class T>
std::shared_ptr<Tensor<T>> convert_view(AnyTensorView& view) {
  auto t = std::make_shared<Tensor<T>>(view.shape);
  io::detail::walk_c_order(view, [&](std::int64_t i, float v) { (*t)[i] = from_f32<T>(v); });
  view = AnyTensorView{dtype_of_v<T>, t->data(), t->shape(), contiguous_strides(t->shape())};
  return t;
}

}  // namespace lav2::test
