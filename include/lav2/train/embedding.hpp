// Embedding lookup and its backward (training). The lookup is a row gather, so its gradient is a
// scatter-add: rows that share an id add up.
//   forward:  y[m, :] = table[ids[m], :]
//   backward: d_table[ids[m], :] += dy[m, :]
#pragma once

#include <cstdint>

#include "lav2/core/error.hpp"

namespace lav2::train {

namespace detail {
inline void check_ids(const std::int32_t* ids, std::int64_t M, std::int64_t vocab_size) {
  for (std::int64_t m = 0; m < M; ++m)
    if (ids[m] < 0 || ids[m] >= vocab_size)
      LAV2_THROW(input_error, "embedding: token ", m, " has id ", ids[m], ", expected 0..", vocab_size - 1);
}
}  // namespace detail

/// \brief y (M, dim) = rows `ids` (M) of `table` (vocab_size, dim); throws input_error on an id
/// outside the table.
template <class T>
void embedding_forward(T* y, const T* table, const std::int32_t* ids, std::int64_t M, std::int64_t vocab_size,
                       std::int64_t dim) {
  detail::check_ids(ids, M, vocab_size);
  for (std::int64_t m = 0; m < M; ++m)
    for (std::int64_t d = 0; d < dim; ++d) y[m * dim + d] = table[std::int64_t(ids[m]) * dim + d];
}

/// \brief d_table (vocab_size, dim) += dy (M, dim) scattered to rows `ids` (M), in order m = 0..M-1.
template <class T>
void embedding_backward(T* d_table, const T* dy, const std::int32_t* ids, std::int64_t M, std::int64_t vocab_size,
                        std::int64_t dim) {
  detail::check_ids(ids, M, vocab_size);
  for (std::int64_t m = 0; m < M; ++m)
    for (std::int64_t d = 0; d < dim; ++d) d_table[std::int64_t(ids[m]) * dim + d] += dy[m * dim + d];
}

}  // namespace lav2::train
