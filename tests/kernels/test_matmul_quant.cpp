// q8_0 / q4_0 weights (tensor/quant.hpp, ref/matmul_quant.hpp): the block formats' arithmetic,
// and every SIMD level's quantised matmul against the scalar reference on both paths (decode:
// q8_0 activations and integer dots; prefill: the dequantised GEMM), bit-identical for any thread
// count and for a row alone or in a group. The last two also run q4_K / q6_K (q8_K activations);
// test_matmul_kquant.cpp has their formats against llama.cpp's values.
#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

#include <lav2/kernels/ref/matmul_quant.hpp>
#include <lav2/kernels/selfcheck.hpp>
#include <lav2/tensor/quant.hpp>

#include "kernels/levels.hpp"

using namespace lav2;
using namespace lav2::kernels;
using lav2::kernels::test::for_each_level;
using lav2::kernels::test::quantized;

TEST_CASE("q8_0 and q4_0 blocks hold ggml's values") {
  // q4_0: the value of largest magnitude maps to -8 (d = max / -8), so x = -8..7 times a power of
  // two is exact; q8_0: multiples of amax / 127 are exact when d is exact in f16.
  std::vector<float> x(32);
  for (int j = 0; j < 32; ++j) x[std::size_t(j)] = float((j % 16) - 8) * 0.25f;  // max |x| = 2 at x = -2
  BlockQ4_0 b4;
  quantize_row_q4_0(x.data(), &b4, 32);
  CHECK(f16_to_f32(b4.d) == 0.25f);
  std::vector<float> y(32);
  dequantize_row_q4_0(&b4, y.data(), 32);
  CHECK(y == x);
  CHECK((b4.qs[0] & 15) == 0);                                            // -8 -> 0
  CHECK((b4.qs[0] >> 4) == 0);                                            // value 16 is also -8
  for (int j = 0; j < 32; ++j) x[std::size_t(j)] = float(j - 16) * 0.5f;  // amax 8 -> d = 8/127
  BlockQ8_0 b8;
  quantize_row_q8_0(x.data(), &b8, 32);
  CHECK(b8.q[0] == -127);  // -8 / (8/127)
  CHECK(b8.q[16] == 0);
  CHECK(b8.q[17] == std::int8_t(std::roundf(0.5f * 127.0f / 8.0f)));  // 7.9375 -> 8
  // An all-zero block: d = 0, every code the zero point.
  std::vector<float> zero(32, 0.0f);
  quantize_row_q4_0(zero.data(), &b4, 32);
  quantize_row_q8_0(zero.data(), &b8, 32);
  CHECK(f16_to_f32(b4.d) == 0.0f);  // -0: ggml's d = max / -8 with max = 0
  CHECK(b4.qs[5] == 0x88);
  CHECK(b8.q[5] == 0);
}

// q8_0 rounds to the nearest step. q4_0 too, but its 16 codes reach -8 d on the side of the
// largest magnitude and only +7 d on the other, so a value near -max lands one full step away.
TEST_CASE_TEMPLATE("quantisation error is within half a step (q4_0: a step on its short side)", Block, BlockQ8_0,
                   BlockQ4_0) {
  const std::int64_t K = 4096;
  const auto x = check::random_vector(K, 7, -3.0f, 3.0f);
  const auto q = quantized<Block>(x, 1, K);
  std::vector<float> y(static_cast<std::size_t>(K));
  dequantize_row(q.data(), y.data(), K);
  for (std::int64_t b = 0; b < K / 32; ++b) {
    const float d = std::fabs(f16_to_f32(q[std::size_t(b)].d));
    // Half a step, plus what rounding d to f16 moves the largest code (127 or 8) by.
    constexpr bool kQ8 = std::is_same_v<Block, BlockQ8_0>;
    const double limit = (kQ8 ? 0.5 : 1.0) * d + (kQ8 ? 127.0 : 8.0) * d * std::ldexp(1.0, -11);
    for (int j = 0; j < 32; ++j) {
      INFO("block ", b, " value ", j);
      CHECK(std::fabs(double(x[std::size_t(b * 32 + j)]) - double(y[std::size_t(b * 32 + j)])) <= limit * 1.0001);
    }
  }
}

TEST_CASE_TEMPLATE("quantised matmul: every level against the reference, both paths", Block, BlockQ8_0, BlockQ4_0,
                   BlockQ4_K, BlockQ6_K) {
  ThreadPool pool(2);
  for_each_level([&](const KernelTable& L) {
    const KernelTable& R = ref::ref_table();
    // Decode (M < 4): K at one block, at three (pairs and a single at 512 bits), the 7B sizes; N
    // around the row group of 4. Prefill (M >= 4): M around the GEMM tile, K across several blocks
    // with a ragged one (K = 800 = 3 x 256 + 32).
    // The K-quants round K up to their 256 (32 -> 256, 800 -> 1024, 544 -> 768).
    for (const auto& mnk : {std::array<std::int64_t, 3>{1, 37, 32}, std::array<std::int64_t, 3>{2, 9, 96},
                            std::array<std::int64_t, 3>{1, 4096, 512}, std::array<std::int64_t, 3>{1, 41, 11008},
                            std::array<std::int64_t, 3>{3, 45, 4096}, std::array<std::int64_t, 3>{4, 30, 800},
                            std::array<std::int64_t, 3>{13, 70, 544}, std::array<std::int64_t, 3>{64, 64, 4096}}) {
      constexpr std::int64_t kValues = quant_block_values_v<Block>;
      const std::int64_t M = mnk[0], N = mnk[1], K = (mnk[2] + kValues - 1) / kValues * kValues;
      const auto r =
          check::detail::check_matmul_quant<Block>("quant", L.matmul<Block>(), R.matmul<Block>(), pool, M, N, K, 91);
      INFO("M=", M, " N=", N, " K=", K, " error/bound=", r.max_diff);
      CHECK(r.ok());
    }
  });
}

TEST_CASE_TEMPLATE("quantised matmul is bit-identical for 1, 2, 3 threads and for a row alone", Block, BlockQ8_0,
                   BlockQ4_0, BlockQ4_K, BlockQ6_K) {
  for_each_level([&](const KernelTable& L) {
    for (std::int64_t M : {1, 2, 19}) {
      const std::int64_t N = 53, K = 1024;
      const auto x = check::random_vector(M * K, 5);
      const auto w = quantized<Block>(check::random_vector(N * K, 6), N, K);
      std::vector<float> first;
      for (int threads : {1, 2, 3}) {
        ThreadPool pool(threads);
        std::vector<float> out(std::size_t(M * N));
        L.matmul<Block>()(pool, out.data(), x.data(), w.data(), M, N, K, Epilogue{});
        if (first.empty()) first = out;
        INFO("M=", M, " threads=", threads);
        CHECK(std::memcmp(first.data(), out.data(), out.size() * sizeof(float)) == 0);
      }
      if (M == 1) {  // each row alone gives the bits it got in its group
        ThreadPool pool(1);
        for (std::int64_t n = 0; n < N; ++n) {
          float alone = 0;
          L.matmul<Block>()(pool, &alone, x.data(), w.data() + n * (K / quant_block_values_v<Block>), 1, 1, K,
                            Epilogue{});
          CHECK(std::memcmp(&alone, &first[std::size_t(n)], sizeof(float)) == 0);
        }
      }
    }
  });
}
