// The key/value cache of one sequence: per layer, keys and values of every position so far.
#pragma once

#include <cstdint>
#include <vector>

#include "lav2/tensor/tensor.hpp"

namespace lav2::model {

/// \brief K and V for `n_layers` layers, each (max_seq_len, dim) in f32, row = position.
/// Keys are stored after RoPE. Positions [0, length) are valid.
class KvCache {
 public:
  KvCache() = default;
  KvCache(int n_layers, int max_seq_len, int dim) : max_seq_len_(max_seq_len), dim_(dim) {
    for (int l = 0; l < n_layers; ++l) {
      keys_.emplace_back(Shape{max_seq_len, dim});
      values_.emplace_back(Shape{max_seq_len, dim});
    }
  }
  float* key_row(int layer, std::int64_t pos) { return keys_[std::size_t(layer)].data() + pos * dim_; }
  float* value_row(int layer, std::int64_t pos) { return values_[std::size_t(layer)].data() + pos * dim_; }
  int max_seq_len() const { return max_seq_len_; }
  std::int64_t length = 0;  ///< positions filled so far

 private:
  int max_seq_len_ = 0;
  std::int64_t dim_ = 0;
  std::vector<Tensor<float>> keys_, values_;
};

}  // namespace lav2::model
