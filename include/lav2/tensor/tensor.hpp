// Tensors: TensorView<T> (non-owning, strided), Tensor<T> (owning, aligned, contiguous)
// and AnyTensorView (type-erased view, what the io readers return).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <type_traits>

#include "lav2/core/aligned_alloc.hpp"
#include "lav2/core/error.hpp"
#include "lav2/tensor/dtype.hpp"
#include "lav2/tensor/shape.hpp"

namespace lav2 {

/// \brief Non-owning view of `T` elements with a shape and element strides.
/// \tparam T element type; use `const T` for read-only views.
template <class T>
class TensorView {
 public:
  TensorView() = default;
  TensorView(T* data, const Shape& shape) : data_(data), shape_(shape), strides_(contiguous_strides(shape)) {}
  TensorView(T* data, const Shape& shape, const Strides& strides) : data_(data), shape_(shape), strides_(strides) {}
  /// A read-only view converts from a writable one.
  template <class U, class = std::enable_if_t<std::is_same_v<const U, T> && !std::is_same_v<U, T>>>
  TensorView(const TensorView<U>& v) : data_(v.data()), shape_(v.shape()), strides_(v.strides()) {}

  T* data() const { return data_; }
  const Shape& shape() const { return shape_; }
  const Strides& strides() const { return strides_; }
  int rank() const { return shape_.rank; }
  std::int64_t dim(int i) const { return shape_[i]; }
  std::int64_t stride(int i) const { return strides_[std::size_t(i)]; }
  std::int64_t numel() const { return shape_.numel(); }
  bool empty() const { return data_ == nullptr; }

  /// True when the elements are dense in C order (size-1 dims may have any stride).
  bool is_contiguous() const {
    std::int64_t expect = 1;
    for (int i = shape_.rank - 1; i >= 0; --i) {
      if (shape_[i] != 1 && strides_[std::size_t(i)] != expect) return false;
      expect *= shape_[i];
    }
    return true;
  }
  /// Pointer to row `r` of a rank-2 view (rows x cols); no bounds check.
  T* row(std::int64_t r) const { return data_ + r * strides_[0]; }
  /// Element (i, j) of a rank-2 view; no bounds check.
  T& operator()(std::int64_t i, std::int64_t j) const { return data_[i * strides_[0] + j * strides_[1]]; }
  /// Element i of a rank-1 view; no bounds check.
  T& operator[](std::int64_t i) const { return data_[i * strides_[0]]; }

 private:
  T* data_ = nullptr;
  Shape shape_;
  Strides strides_{};
};

/// \brief Owning, contiguous tensor, zero-initialised; 64-byte aligned, and in huge pages from
/// 2 MiB up (core/aligned_alloc.hpp).
template <class T>
class Tensor {
  static_assert(std::is_trivially_copyable_v<T>, "Tensor holds trivially copyable elements only");

 public:
  Tensor() = default;
  explicit Tensor(const Shape& shape) : shape_(shape) {
    const std::int64_t n = shape.numel();
    if (n > std::int64_t(PTRDIFF_MAX / std::int64_t(sizeof(T))))
      LAV2_THROW(limit_error, "tensor of shape ", shape.to_string(), " is too large to allocate");
    if (n > 0) {
      const std::size_t bytes = std::size_t(n) * sizeof(T);
      void* p = aligned_alloc_bytes(bytes);
      std::memset(p, 0, bytes);
      data_ = std::unique_ptr<T, AlignedDeleter>(static_cast<T*>(p), AlignedDeleter{bytes});
    }
  }
  Tensor(Tensor&&) noexcept = default;
  Tensor& operator=(Tensor&&) noexcept = default;

  T* data() { return data_.get(); }
  const T* data() const { return data_.get(); }
  const Shape& shape() const { return shape_; }
  std::int64_t dim(int i) const { return shape_[i]; }
  std::int64_t numel() const { return shape_.rank ? shape_.numel() : 0; }
  TensorView<T> view() { return TensorView<T>(data(), shape_); }
  TensorView<const T> view() const { return TensorView<const T>(data(), shape_); }
  T* begin() { return data(); }
  T* end() { return data() + numel(); }
  const T* begin() const { return data(); }
  const T* end() const { return data() + numel(); }
  T& operator[](std::int64_t i) { return data_.get()[i]; }
  const T& operator[](std::int64_t i) const { return data_.get()[i]; }

 private:
  Shape shape_;
  std::unique_ptr<T, AlignedDeleter> data_;
};

/// \brief A type-erased read-only view: what the checkpoint readers hand out.
struct AnyTensorView {
  DType dtype = DType::f32;
  const void* data = nullptr;
  Shape shape;
  Strides strides{};

  std::int64_t numel() const { return shape.numel(); }
  /// Typed view; throws input_error when `T` is not `dtype`.
  template <class T>
  TensorView<const T> as() const {
    if (dtype_of_v<T> != dtype)
      LAV2_THROW(input_error, "tensor holds ", dtype_name(dtype), ", requested as ", dtype_name(dtype_of_v<T>));
    return TensorView<const T>(static_cast<const T*>(data), shape, strides);
  }
};

}  // namespace lav2
