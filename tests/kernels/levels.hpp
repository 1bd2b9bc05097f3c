// The kernel tests run every SIMD level this CPU supports (dispatch.hpp's available_isas): each
// test body is a lambda over the level's KernelTable `L`, with the level in every failure message.
#pragma once

#include <doctest/doctest.h>

#include <cstdint>
#include <vector>

#include <lav2/kernels/dispatch.hpp>
#include <lav2/tensor/quant.hpp>

// Under AddressSanitizer (scripts/sanitize.sh) instrumented code runs about 10x slower, and the
// sanitizer looks for bad accesses, which depend on a shape's loop structure (lane and block
// edges, tails, thread splits), not on its size: the slowest cases then use smaller shapes with
// the same structure (kSanitized below). The normal build runs the full LLaMA shapes.
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LAV2_TEST_SANITIZED 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(LAV2_TEST_SANITIZED)
#define LAV2_TEST_SANITIZED 1
#endif

namespace lav2::kernels::test {

#ifdef LAV2_TEST_SANITIZED
inline constexpr bool kSanitized = true;
#else
inline constexpr bool kSanitized = false;
#endif

/// \brief Calls f(table) for each SIMD level this program has and this CPU runs (not ref).
template <class F>
void for_each_level(F&& f) {
  for (Isa isa : available_isas()) {
    if (isa == Isa::ref) continue;
    const KernelTable& L = table_for(isa);
    INFO("kernel level ", isa_name(isa), " (", L.arch_name, ")");
    f(L);
  }
}

/// \brief The level's matmul for weights W, with the dispatch API's default epilogue.
template <class W>
void level_matmul(const KernelTable& L, ThreadPool& pool, float* out, const float* x, const W* w, std::int64_t M,
                  std::int64_t N, std::int64_t K, Epilogue ep = {}) {
  L.matmul<W>()(pool, out, x, w, M, N, K, ep);
}

/// \brief The level's attention head over a float or f16 KV cache.
template <class KV>
void level_attention(const KernelTable& L, float* out, const float* q, const KV* k, const KV* v, std::int64_t n_keys,
                     std::int64_t head_dim, std::int64_t kv_stride, float scale, float* scratch) {
  L.attention<KV>()(out, q, k, v, n_keys, head_dim, kv_stride, scale, scratch);
}

/// \brief The (N, K) row-major `w` quantised row by row to `Block`s (K a multiple of its block).
template <class Block>
std::vector<Block> quantized(const std::vector<float>& w, std::int64_t N, std::int64_t K) {
  const std::int64_t nb = K / quant_block_values_v<Block>;
  std::vector<Block> q(static_cast<std::size_t>(N * nb));
  for (std::int64_t n = 0; n < N; ++n) quantize_row(w.data() + n * K, q.data() + n * nb, K);
  return q;
}

}  // namespace lav2::kernels::test
