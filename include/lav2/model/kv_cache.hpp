// The key/value cache of one sequence: per layer, the keys (after RoPE) and values of every
// position so far, as rows of `dim` values in f32 or f16.
//
// It grows with the sequence: capacity doubles (from 64 positions) up to max_seq_len, so a short
// request holds a short cache. Each layer's keys are one dense block, which the attention kernel
// walks with a fixed row stride; growing copies the filled rows once (amortised O(1) per token).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "lav2/core/error.hpp"
#include "lav2/kernels/dispatch.hpp"
#include "lav2/tensor/dtype.hpp"
#include "lav2/tensor/tensor.hpp"

namespace lav2::model {

/// \brief The element type of the cache: f32 (default, exact) or f16 (half the memory; keys and
/// values are rounded to nearest even as they are stored).
enum class KvDType { f32, f16 };

inline std::size_t kv_dtype_size(KvDType t) { return t == KvDType::f16 ? 2 : 4; }

class KvCache {
 public:
  KvCache() = default;
  KvCache(int n_layers, std::int64_t max_seq_len, std::int64_t dim, KvDType dtype)
      : n_layers_(n_layers),
        max_seq_len_(max_seq_len),
        dim_(dim),
        dtype_(dtype),
        keys_(std::size_t(n_layers)),
        values_(std::size_t(n_layers)) {}

  KvDType dtype() const { return dtype_; }
  std::int64_t max_seq_len() const { return max_seq_len_; }
  std::int64_t capacity() const { return capacity_; }
  /// Bytes the cache holds now.
  std::size_t bytes() const { return std::size_t(2 * n_layers_ * capacity_ * dim_) * kv_dtype_size(dtype_); }
  /// Bytes it would hold at max_seq_len.
  static std::size_t bytes_at(int n_layers, std::int64_t positions, std::int64_t dim, KvDType dtype) {
    return std::size_t(2 * std::int64_t(n_layers) * positions * dim) * kv_dtype_size(dtype);
  }

  /// Makes room for positions [0, n) (n <= max_seq_len), keeping the filled ones.
  void reserve(std::int64_t n) {
    LAV2_ASSERT(n <= max_seq_len_);
    if (n <= capacity_) return;
    std::int64_t cap = std::max<std::int64_t>(capacity_, 64);
    while (cap < n) cap *= 2;
    cap = std::min(cap, max_seq_len_);
    const std::size_t row = std::size_t(dim_) * kv_dtype_size(dtype_);
    for (auto* blocks : {&keys_, &values_})
      for (auto& b : *blocks) {
        Tensor<unsigned char> grown(Shape{cap * std::int64_t(row)});
        if (length > 0) std::memcpy(grown.data(), b.data(), std::size_t(length) * row);
        b = std::move(grown);
      }
    capacity_ = cap;
  }

  /// Row `pos` of layer `layer`'s keys / values, as T (float for f32, f16_t for f16).
  template <class T>
  T* key_row(int layer, std::int64_t pos) {
    return reinterpret_cast<T*>(keys_[std::size_t(layer)].data()) + pos * dim_;
  }
  template <class T>
  T* value_row(int layer, std::int64_t pos) {
    return reinterpret_cast<T*>(values_[std::size_t(layer)].data()) + pos * dim_;
  }

  /// Stores rows [pos, pos + n) of layer `layer` from f32 keys and values (n, dim).
  void store(int layer, std::int64_t pos, std::int64_t n, const float* k, const float* v) {
    const std::int64_t count = n * dim_;
    if (dtype_ == KvDType::f32) {
      std::memcpy(key_row<float>(layer, pos), k, std::size_t(count) * sizeof(float));
      std::memcpy(value_row<float>(layer, pos), v, std::size_t(count) * sizeof(float));
      return;
    }
    kernels::convert_f32_to_f16(key_row<f16_t>(layer, pos), k, count);
    kernels::convert_f32_to_f16(value_row<f16_t>(layer, pos), v, count);
  }

  std::int64_t length = 0;  ///< positions filled so far

 private:
  int n_layers_ = 0;
  std::int64_t max_seq_len_ = 0, dim_ = 0, capacity_ = 0;
  KvDType dtype_ = KvDType::f32;
  std::vector<Tensor<unsigned char>> keys_, values_;
};

}  // namespace lav2::model
