// Scalar reference matrix products: the specification of kernels::matmul.
#pragma once

#include <cstdint>

#include "lav2/core/thread_pool.hpp"
#include "lav2/kernels/epilogue.hpp"
#include "lav2/tensor/dtype.hpp"

namespace lav2::kernels::ref {

/// \brief out = x · w^T, the product of nn.Linear without bias.
///   out[m, n] = sum_k x[m, k] * w[n, k]
/// \tparam W weight element type: float, f16_t or bf16_t; widened to f32 exactly, then multiplied.
/// \param out (M, N) row-major, \param x (M, K) row-major activations,
/// \param w (N, K) row-major, as PyTorch stores a Linear's weight ([out_features, in_features]).
/// Each sum accumulates in double from k = 0 up (see ops.hpp), is rounded to f32, then goes
/// through `ep` (bias, residual; epilogue.hpp). Work is split over the N output features, so
/// every output is computed by one thread: the result is the same for any pool size.
template <class W>
void matmul(ThreadPool& pool, float* out, const float* x, const W* w, std::int64_t M, std::int64_t N, std::int64_t K,
            Epilogue ep = {}) {
  pool.parallel_for(
      N,
      [&](std::int64_t n_begin, std::int64_t n_end) {
        for (std::int64_t m = 0; m < M; ++m) {
          const float* xm = x + m * K;  // (K)
          for (std::int64_t n = n_begin; n < n_end; ++n) {
            const W* wn = w + n * K;  // (K): row n of the weight
            double sum = 0.0;
            for (std::int64_t k = 0; k < K; ++k) sum += double(xm[k]) * double(to_f32(wn[k]));
            out[m * N + n] = ep.apply(float(sum), n, out[m * N + n]);
          }
        }
      },
      /*min_chunk=*/16);
}

}  // namespace lav2::kernels::ref
