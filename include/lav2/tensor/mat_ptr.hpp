// A weight matrix handle: the dtype, shape and row stride of a matrix travel with its data, and
// are read at run time (gemma.cpp's MatPtr "by design is not templated"). The model holds every
// frozen matrix as a MatPtr in the dtype the checkpoint stored it in; kernels::matmul holds the
// one closed switch that maps the dtype to a kernel. A new dtype adds kernels, never models.
#pragma once

#include <cstdint>
#include <string>

#include "lav2/core/error.hpp"
#include "lav2/tensor/dtype.hpp"
#include "lav2/tensor/quant.hpp"
#include "lav2/tensor/quant_x8.hpp"
#include "lav2/tensor/shape.hpp"
#include "lav2/tensor/tensor.hpp"

namespace lav2 {

/// \brief A read-only (rows, cols) matrix of any weight dtype, rows `stride` elements apart.
/// Non-owning: whoever made it keeps the storage alive (the model's keep-alive list).
struct MatPtr {
  DType dtype = DType::f32;
  const void* data = nullptr;
  std::int64_t rows = 0, cols = 0;
  std::int64_t stride = 0;  ///< elements between the starts of two rows (>= cols; a whole number of
                            ///< blocks for the quantised dtypes)

  MatPtr() = default;
  MatPtr(DType t, const void* p, std::int64_t r, std::int64_t c, std::int64_t s)
      : dtype(t), data(p), rows(r), cols(c), stride(s) {}
  /// A contiguous matrix of `T` (float, f16_t, bf16_t).
  template <class T>
  static MatPtr of(const T* p, std::int64_t r, std::int64_t c) {
    return MatPtr(dtype_of_v<T>, p, r, c, c);
  }
  /// A contiguous owning tensor of rank 2 (or rank >= 2 viewed as (dim 0, the rest)).
  template <class T>
  static MatPtr of(const Tensor<T>& t) {
    const std::int64_t r = t.shape().rank ? t.dim(0) : 0;
    return of(t.data(), r, r ? t.numel() / r : 0);
  }

  bool empty() const { return data == nullptr; }
  bool contiguous() const { return stride == cols; }
  Shape shape() const { return Shape{rows, cols}; }
  std::size_t bytes() const { return std::size_t(rows) * dtype_row_bytes(dtype, stride); }
  /// Row `r` as raw bytes; no bounds check. Not for q4_0_x8, whose rows are interleaved.
  const void* row(std::int64_t r) const {
    return static_cast<const unsigned char*>(data) + std::size_t(r) * dtype_row_bytes(dtype, stride);
  }
  /// The data as `T`; throws internal_error if the dtype is another (a caller's bug).
  template <class T>
  const T* as() const {
    if (dtype_of_v<T> != dtype)
      LAV2_THROW(internal_error, "MatPtr holds ", dtype_name(dtype), ", read as ", dtype_name(dtype_of_v<T>));
    return static_cast<const T*>(data);
  }
};

/// \brief Widens (or dequantises) row `r` of `m` into out[0, cols): an embedding lookup.
inline void mat_row_to_f32(const MatPtr& m, std::int64_t r, float* out) {
  if (m.dtype == DType::q4_0_x8) {
    const std::int64_t nb = m.stride / kQuantBlock;
    return dequantize_x8_lane(static_cast<const BlockQ4_0x8*>(m.data) + (r / kX8Rows) * nb, int(r % kX8Rows), out,
                              m.cols);
  }
  const void* p = m.row(r);
  switch (m.dtype) {
    case DType::f32:
      for (std::int64_t i = 0; i < m.cols; ++i) out[i] = static_cast<const float*>(p)[i];
      return;
    case DType::f16:
      for (std::int64_t i = 0; i < m.cols; ++i) out[i] = f16_to_f32(static_cast<const std::uint16_t*>(p)[i]);
      return;
    case DType::bf16:
      for (std::int64_t i = 0; i < m.cols; ++i) out[i] = bf16_to_f32(static_cast<const std::uint16_t*>(p)[i]);
      return;
    case DType::q8_0: return dequantize_row(static_cast<const BlockQ8_0*>(p), out, m.cols);
    case DType::q4_0: return dequantize_row(static_cast<const BlockQ4_0*>(p), out, m.cols);
    case DType::q4_k: return dequantize_row(static_cast<const BlockQ4_K*>(p), out, m.cols);
    case DType::q6_k: return dequantize_row(static_cast<const BlockQ6_K*>(p), out, m.cols);
    default: break;
  }
  LAV2_THROW(internal_error, "mat_row_to_f32: dtype ", dtype_name(m.dtype), " is not a float type");
}

/// \brief True for the dtypes kernels::matmul multiplies (the closed list).
constexpr bool is_matmul_dtype(DType t) {
  return t == DType::f32 || t == DType::f16 || t == DType::bf16 || t == DType::q8_0 || t == DType::q4_0 ||
         t == DType::q4_k || t == DType::q6_k || t == DType::q4_0_x8;
}

}  // namespace lav2
