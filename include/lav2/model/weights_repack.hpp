// Frozen matrices rearranged for the CPU kernels when a model is built: q4_0 linears become
// q4_0_x8 (eight rows interleaved block by block, tensor/quant_x8.hpp), which the decode dot reads
// with about a third of the instructions. The values, and every integer block sum, stay those of
// the file; prefill's GEMM widens the very same values.
//
// The repacked copy lives in `owned`. Where the source was a file mapping, its pages are given back
// as each matrix is copied (io::MappedFile::release_pages), and a copy only the weights held is
// freed, so the resident set holds each weight once. LAV2_REPACK=0 in the environment keeps the file's layout (for comparisons).
#pragma once

#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "lav2/io/mmap.hpp"
#include "lav2/model/llama_weights.hpp"
#include "lav2/tensor/mat_ptr.hpp"
#include "lav2/tensor/quant_x8.hpp"

namespace lav2::model {

/// \brief Whether the model repacks at build time: unless LAV2_REPACK is "0".
inline bool repack_enabled() {
  const char* v = std::getenv("LAV2_REPACK");
  return !(v && std::strcmp(v, "0") == 0);
}

namespace detail {
/// Replaces a contiguous q4_0 matrix of rows % 8 == 0 by its q4_0_x8 copy.
inline void repack_matrix(MatPtr& m, std::vector<std::shared_ptr<const void>>& owned) {
  if (m.empty() || m.dtype != DType::q4_0 || m.rows % kX8Rows != 0 || !m.contiguous()) return;
  const std::int64_t nb = m.cols / kQuantBlock;
  auto copy = std::make_shared<std::vector<BlockQ4_0x8>>(std::size_t(m.rows / kX8Rows * nb));
  repack_q4_0_x8(static_cast<const BlockQ4_0*>(m.data), m.rows, nb, copy->data());
  // The source's memory: file pages go back to the page cache; a copy only the weights hold (a
  // converted or random matrix, owned from its first byte) is freed.
  if (!io::MappedFile::release_pages(m.data, m.bytes()))
    for (auto& e : owned)
      if (e.get() == m.data && e.use_count() == 1) e.reset();
  m = MatPtr(DType::q4_0_x8, copy->data(), m.rows, m.cols, m.stride);
  owned.push_back(std::move(copy));
}
}  // namespace detail

/// \brief Repacks the linears (every layer's seven and `output`) that a faster layout exists for.
/// tok_embeddings keeps its layout: it is read a row at a time, never multiplied.
inline void repack_for_cpu(LlamaWeights& w) {
  for (auto& layer : w.layers)
    for (LinearId id : kAllLinears) detail::repack_matrix(layer.linear(id).weight, w.owned);
  detail::repack_matrix(w.output, w.owned);
}

}  // namespace lav2::model
