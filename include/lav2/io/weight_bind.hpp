// Binding one row of a weight table (weight_table.hpp) to its slot, shared by every table (LLaMA,
// the adapter, the CLIP tower, the visual projector). Two slot kinds, decided by each table:
// - MatPtr: a frozen matrix used in the dtype the checkpoint stored it in, in place in the mapping
//   (copied once into dense rows of the same dtype only when its strides are not dense);
// - TensorView<const float>: a small tensor (norm, bias, embedding row set) converted once to f32,
//   because the forward passes read these as f32 on every call.
// Errors name the file, the tensor, the expected and the actual shape or dtype.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "lav2/core/error.hpp"
#include "lav2/io/weight_table.hpp"
#include "lav2/tensor/mat_ptr.hpp"
#include "lav2/tensor/tensor.hpp"

namespace lav2::io {

namespace detail {
/// Reads element `off` of a float tensor as f32.
inline float read_f32(const AnyTensorView& src, std::int64_t off) {
  switch (src.dtype) {
    case DType::f32: return static_cast<const float*>(src.data)[off];
    case DType::f16: return f16_to_f32(static_cast<const std::uint16_t*>(src.data)[off]);
    case DType::bf16: return bf16_to_f32(static_cast<const std::uint16_t*>(src.data)[off]);
    default: return 0.0f;
  }
}

/// Walks `src` in C order through its strides, calling put(flat index, value as f32).
template <class Put>
void walk_c_order(const AnyTensorView& src, Put&& put) {
  const std::int64_t n = src.numel();
  std::array<std::int64_t, kMaxRank> idx{};
  for (std::int64_t flat = 0; flat < n; ++flat) {
    std::int64_t off = 0;
    for (int d = 0; d < src.shape.rank; ++d) off += idx[std::size_t(d)] * src.strides[std::size_t(d)];
    put(flat, read_f32(src, off));
    for (int d = src.shape.rank - 1; d >= 0; --d) {
      if (++idx[std::size_t(d)] < src.shape[d]) break;
      idx[std::size_t(d)] = 0;
    }
  }
}

inline void require_float(const AnyTensorView& src, const std::string& file, const std::string& name) {
  if (!is_matmul_dtype(src.dtype))
    LAV2_THROW(load_error, "checkpoint '", file, "': tensor '", name, "' has dtype ", dtype_name(src.dtype),
               ", expected a floating-point type (f32, f16, bf16) or a block-quantised matrix");
}

/// Norms, biases, gates and prompts are read as f32 on every call; a file (GGUF) that stores one
/// block-quantised is refused rather than dequantised, as llama.cpp's converters never do it.
inline void require_unquantised(const AnyTensorView& src, const std::string& file, const std::string& name) {
  require_float(src, file, name);
  if (dtype_block_size(src.dtype) > 1)
    LAV2_THROW(load_error, "checkpoint '", file, "': tensor '", name, "' has dtype ", dtype_name(src.dtype),
               ", expected f32, f16 or bf16 (only frozen matrices may be block-quantised)");
}

inline bool is_dense(const AnyTensorView& src) {
  std::int64_t expect = 1;
  for (int i = src.shape.rank - 1; i >= 0; --i) {
    if (src.shape[i] != 1 && src.strides[std::size_t(i)] != expect) return false;
    expect *= src.shape[i];
  }
  return true;
}

/// Binds a small tensor as f32: in place when it is dense f32, else through a converted copy.
inline void bind_tensor(TensorView<const float>& slot, const AnyTensorView& src, const std::string& file,
                        const std::string& name, std::vector<std::shared_ptr<const void>>& owned) {
  require_unquantised(src, file, name);
  if (src.dtype == DType::f32 && is_dense(src)) {
    slot = TensorView<const float>(static_cast<const float*>(src.data), src.shape);
    return;
  }
  auto copy = std::make_shared<Tensor<float>>(src.shape);
  walk_c_order(src, [&](std::int64_t i, float v) { (*copy)[i] = v; });
  slot = TensorView<const float>(copy->data(), copy->shape());
  owned.push_back(std::move(copy));
}

/// Binds a frozen matrix in its stored dtype: in place when its rows are dense; otherwise (a view
/// with padded or transposed strides, which the kernels cannot read) copied once into dense rows
/// of the same dtype, so no value changes.
inline void bind_tensor(MatPtr& slot, const AnyTensorView& src, const std::string& file, const std::string& name,
                        std::vector<std::shared_ptr<const void>>& owned) {
  require_float(src, file, name);
  const std::int64_t rows = src.shape[0], cols = src.shape.rank > 1 ? src.numel() / std::max<std::int64_t>(rows, 1) : 1;
  if (is_dense(src)) {
    slot = MatPtr(src.dtype, src.data, rows, cols, cols);
    return;
  }
  require_unquantised(src, file, name);  // a block matrix has no element strides to walk
  auto store = [&](auto tag) {
    using T = decltype(tag);
    auto copy = std::make_shared<Tensor<T>>(src.shape);
    walk_c_order(src, [&](std::int64_t i, float v) { (*copy)[i] = from_f32<T>(v); });  // exact: same dtype
    slot = MatPtr::of(copy->data(), rows, cols);
    owned.push_back(std::move(copy));
  };
  if (src.dtype == DType::f32) store(float{});
  else if (src.dtype == DType::f16) store(f16_t{});
  else store(bf16_t{});
}

/// Binds `slot` to a new tensor of `shape` filled with `value` (a missing optional tensor).
inline void bind_constant(TensorView<const float>& slot, const Shape& shape, float value,
                          std::vector<std::shared_ptr<const void>>& owned) {
  auto t = std::make_shared<Tensor<float>>(shape);
  for (auto& x : *t) x = value;
  slot = TensorView<const float>(t->data(), t->shape());
  owned.push_back(std::move(t));
}
inline void bind_constant(MatPtr&, const Shape&, float, std::vector<std::shared_ptr<const void>>&) {
  LAV2_ASSERT(false && "frozen matrices are never optional");
}
}  // namespace detail

/// \brief Binds `slot` to `src` (null: the sources lack it) as `spec` asks: a missing required
/// tensor or a shape other than spec.shape is a load_error naming `file` and `name` (the key as
/// the file spells it, prefix included); a missing optional one becomes zeros or ones.
/// `owned` receives the converted copies.
template <class Slot>
void bind_row(Slot& slot, const TensorSpec& spec, const std::string& name, const AnyTensorView* src,
              const std::string& file, std::vector<std::shared_ptr<const void>>& owned) {
  if (!src) {
    if (spec.missing == Missing::error)
      LAV2_THROW(load_error, "checkpoint '", file, "': tensor '", name, "' is missing (expected shape ",
                 spec.shape.to_string(), ")");
    detail::bind_constant(slot, spec.shape, spec.missing == Missing::ones ? 1.0f : 0.0f, owned);
    return;
  }
  if (src->shape != spec.shape)
    LAV2_THROW(load_error, "checkpoint '", file, "': tensor '", name, "' has shape ", src->shape.to_string(),
               ", expected ", spec.shape.to_string());
  detail::bind_tensor(slot, *src, file, name, owned);
}

}  // namespace lav2::io
