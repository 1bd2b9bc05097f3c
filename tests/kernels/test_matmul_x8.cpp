// q4_0 repacked by eight rows (tensor/quant_x8.hpp, q4_0_x8): the repack keeps every byte, the
// reference computes exactly what it computes for the q4_0 rows, and every SIMD level's decode
// dot (simd/quant_x8_dot.hpp) and prefill GEMM agree with the reference, bit-identically for any
// thread count.
#include <doctest/doctest.h>

#include <array>
#include <cstring>
#include <vector>

#include <lav2/kernels/ref/matmul_quant.hpp>
#include <lav2/kernels/ref/ref_table.hpp>
#include <lav2/kernels/selfcheck.hpp>
#include <lav2/tensor/mat_ptr.hpp>
#include <lav2/tensor/quant_x8.hpp>

#include "kernels/levels.hpp"

using namespace lav2;
using namespace lav2::kernels;
using lav2::kernels::test::for_each_level;
using lav2::kernels::test::quantized;

namespace {
std::vector<BlockQ4_0x8> repacked(const std::vector<BlockQ4_0>& rows, std::int64_t N, std::int64_t K) {
  std::vector<BlockQ4_0x8> w(std::size_t(N / kX8Rows * (K / kQuantBlock)));
  repack_q4_0_x8(rows.data(), N, K / kQuantBlock, w.data());
  return w;
}
}  // namespace

TEST_CASE("q4_0_x8 repack keeps every row's bytes; a row dequantises as before") {
  const std::int64_t N = 24, K = 96, nb = K / kQuantBlock;
  const auto rows = quantized<BlockQ4_0>(check::random_vector(N * K, 3), N, K);
  const auto w = repacked(rows, N, K);
  const MatPtr m(DType::q4_0_x8, w.data(), N, K, K);
  CHECK(m.bytes() == rows.size() * sizeof(BlockQ4_0));
  std::vector<BlockQ4_0> row(static_cast<std::size_t>(nb));
  std::vector<float> a(static_cast<std::size_t>(K)), b(static_cast<std::size_t>(K));
  for (std::int64_t n = 0; n < N; ++n) {
    x8_row(w.data(), nb, n, row.data());
    CHECK(std::memcmp(row.data(), rows.data() + n * nb, std::size_t(nb) * sizeof(BlockQ4_0)) == 0);
    mat_row_to_f32(m, n, a.data());
    dequantize_row(rows.data() + n * nb, b.data(), K);
    CHECK(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
  }
}

TEST_CASE("q4_0_x8 reference: the q4_0 reference's bits on both paths") {
  ThreadPool pool(2);
  const KernelTable& R = ref::ref_table();
  for (std::int64_t M : {1, 3, 5}) {
    const std::int64_t N = 40, K = 160;
    const auto x = check::random_vector(M * K, 8);
    const auto rows = quantized<BlockQ4_0>(check::random_vector(N * K, 9), N, K);
    const auto w = repacked(rows, N, K);
    std::vector<float> want(std::size_t(M * N)), got(std::size_t(M * N));
    R.matmul_q4_0(pool, want.data(), x.data(), rows.data(), M, N, K, Epilogue{});
    R.matmul_q4_0_x8(pool, got.data(), x.data(), w.data(), M, N, K, Epilogue{});
    INFO("M=", M);
    CHECK(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)) == 0);
  }
}

TEST_CASE("q4_0_x8 matmul: every level against the reference; prefill equals q4_0's GEMM") {
  ThreadPool pool(2);
  for_each_level([&](const KernelTable& L) {
    const KernelTable& R = ref::ref_table();
    // Decode: one group, a few, the 7B sizes; prefill: M around the GEMM tile, ragged K blocks.
    for (const auto& mnk : {std::array<std::int64_t, 3>{1, 8, 32}, std::array<std::int64_t, 3>{2, 16, 96},
                            std::array<std::int64_t, 3>{1, 4096, 512}, std::array<std::int64_t, 3>{1, 40, 11008},
                            std::array<std::int64_t, 3>{3, 48, 4096}, std::array<std::int64_t, 3>{4, 32, 800},
                            std::array<std::int64_t, 3>{13, 72, 544}, std::array<std::int64_t, 3>{64, 64, 4096}}) {
      const std::int64_t M = mnk[0], N = mnk[1], K = mnk[2];
      const auto r =
          check::detail::check_matmul_quant<BlockQ4_0x8>("x8", L.matmul_q4_0_x8, R.matmul_q4_0_x8, pool, M, N, K, 17);
      INFO("M=", M, " N=", N, " K=", K, " error/bound=", r.max_diff);
      CHECK(r.ok());
      if (M >= kQuantGemmMinRows) {  // the GEMM widens the same values: the same bits as q4_0 rows
        const auto x = check::random_vector(M * K, 18);
        const auto rows = quantized<BlockQ4_0>(check::random_vector(N * K, 19), N, K);
        const auto w = repacked(rows, N, K);
        std::vector<float> a(std::size_t(M * N)), b(std::size_t(M * N));
        L.matmul_q4_0(pool, a.data(), x.data(), rows.data(), M, N, K, Epilogue{});
        L.matmul_q4_0_x8(pool, b.data(), x.data(), w.data(), M, N, K, Epilogue{});
        CHECK(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
      }
    }
  });
}

TEST_CASE("q4_0_x8 matmul is bit-identical for 1, 2, 3 threads") {
  for_each_level([&](const KernelTable& L) {
    for (std::int64_t M : {1, 2, 19}) {
      const std::int64_t N = 152, K = 1024;  // 152 = 3 x 48 + 8: a thread block that ends mid-way
      const auto x = check::random_vector(M * K, 5);
      const auto w = repacked(quantized<BlockQ4_0>(check::random_vector(N * K, 6), N, K), N, K);
      std::vector<float> first;
      for (int threads : {1, 2, 3}) {
        ThreadPool pool(threads);
        std::vector<float> out(std::size_t(M * N));
        L.matmul_q4_0_x8(pool, out.data(), x.data(), w.data(), M, N, K, Epilogue{});
        if (first.empty()) first = out;
        INFO("M=", M, " threads=", threads);
        CHECK(std::memcmp(first.data(), out.data(), out.size() * sizeof(float)) == 0);
      }
    }
  });
}
