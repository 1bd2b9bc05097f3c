// matmul (matvec and GEMM paths) for f32, f16 and bf16 weights against the scalar reference and
// against Eigen's GEMM (an implementation that shares no code with lav2), and bit-identical results
// for 1, 2 and 3 threads.
#include <doctest/doctest.h>

#include <Eigen/Core>

#include <array>
#include <cstring>
#include <vector>

#include <lav2/kernels/ref/matmul.hpp>
#include <lav2/kernels/selfcheck.hpp>

#include "kernels/levels.hpp"

using namespace lav2;
using namespace lav2::kernels;
using lav2::kernels::test::for_each_level;
using lav2::kernels::test::kSanitized;
using lav2::kernels::test::level_attention;
using lav2::kernels::test::level_matmul;

namespace {

template <class W>
void check_against_ref(const KernelTable& L, ThreadPool& pool, std::int64_t M, std::int64_t N, std::int64_t K) {
  const auto x = check::random_vector(M * K, 21);
  const auto w = check::random_weights<W>(N * K, 22);
  std::vector<float> got(std::size_t(M * N)), want(std::size_t(M * N));
  level_matmul(L, pool, got.data(), x.data(), w.data(), M, N, K);
  ref::matmul(pool, want.data(), x.data(), w.data(), M, N, K);
  // Per output, the dot-product error bound 2 gamma_K sum|x w| (check::compare_matmul).
  const auto r = check::compare_matmul("matmul", got.data(), want.data(), x.data(), w.data(), M, N, K);
  INFO(dtype_name(dtype_of_v<W>), " M=", M, " N=", N, " K=", K, " error/bound=", r.max_diff);
  CHECK(r.ok());
}
}  // namespace

TEST_CASE_TEMPLATE("matmul: simd vs ref over edge and LLaMA sizes", W, float, f16_t, bf16_t) {
  for_each_level([&](const KernelTable& L) {
    [[maybe_unused]] const std::int64_t kLanes = L.float_lanes;
    ThreadPool pool(2);
    // Matvec (M = 1) with K at the lane edges and the 7B sizes.
    for (std::int64_t K :
         {std::int64_t(1), kLanes - 1, kLanes, kLanes + 1, 2 * kLanes + 1, std::int64_t(4096), std::int64_t(11008)}) {
      if (K < 1) continue;
      check_against_ref<W>(L, pool, 1, 37, K);
    }
    check_against_ref<W>(L, pool, 1, 4096, 512);  // many rows: both row groups and single rows
    // Every matvec loop in one row: 512-byte steps, then a 2-batch step, one batch, a scalar tail.
    check_against_ref<W>(L, pool, 1, 41, 4096 + 3 * kLanes + 5);
    // GEMM: M around the micro-tile height, N around the panel width, K across several blocks.
    for (std::int64_t M : {2, 3, 4, 6, 7, 13}) check_against_ref<W>(L, pool, M, 2 * kLanes + 3, 300);
    check_against_ref<W>(L, pool, 8, 100, 11008);
    check_against_ref<W>(L, pool, 64, 64, 4096);
    // The AVX-512 blocking: a last panel of <= 16 rows (M = 33, 257), several k blocks with a tail
    // (K = 600, 1030), weight chunks of 8 x 14 rows with a ragged end (N = 250).
    check_against_ref<W>(L, pool, 33, 250, 600);
    check_against_ref<W>(L, pool, 257, 40, 1030);
  });
}

TEST_CASE_TEMPLATE("matmul agrees with Eigen's f32 GEMM", W, float, f16_t, bf16_t) {
  for_each_level([&](const KernelTable& L) {
    [[maybe_unused]] const std::int64_t kLanes = L.float_lanes;
    // out (M, N) = x (M, K) * W^T with W (N, K) row-major, as lav2 stores a linear's weight. Eigen
    // gets the weights widened to f32 (exact for f16 and bf16), so only the summation order differs.
    using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    ThreadPool pool(2);
    using Mnk = std::array<std::int64_t, 3>;
    // Under a sanitizer, fewer rows and K blocks (kKc = 256) with the same edges: 11x less work.
    const std::array<Mnk, 4> full{Mnk{1, 4096, 4096}, Mnk{1, 300, 11008}, Mnk{7, 129, 1030}, Mnk{64, 256, 4096}};
    const std::array<Mnk, 4> small{Mnk{1, 512, 4096}, Mnk{1, 37, 11008}, Mnk{7, 129, 1030}, Mnk{64, 64, 1030}};
    for (const auto& mnk : kSanitized ? small : full) {
      const std::int64_t M = mnk[0], N = mnk[1], K = mnk[2];
      const auto x = check::random_vector(M * K, 61);
      const auto w = check::random_weights<W>(N * K, 62);
      std::vector<float> w32(w.size());
      for (std::size_t i = 0; i < w.size(); ++i) w32[i] = to_f32(w[i]);
      std::vector<float> got(std::size_t(M * N));
      level_matmul(L, pool, got.data(), x.data(), w.data(), M, N, K);
      RowMajor want =
          Eigen::Map<const RowMajor>(x.data(), M, K) * Eigen::Map<const RowMajor>(w32.data(), N, K).transpose();
      // The bound of the test against the scalar reference above.
      const auto r = check::compare_matmul("matmul vs Eigen", got.data(), want.data(), x.data(), w32.data(), M, N, K);
      INFO(dtype_name(dtype_of_v<W>), " M=", M, " N=", N, " K=", K, " error/bound=", r.max_diff);
      CHECK(r.ok());
    }
  });
}

TEST_CASE_TEMPLATE("matmul is bit-identical for 1, 2 and 3 threads", W, float, f16_t, bf16_t) {
  for_each_level([&](const KernelTable& L) {
    [[maybe_unused]] const std::int64_t kLanes = L.float_lanes;
    // 1, 2: matvec; 19, 40: a last panel on a one-batch micro-kernel; 34: on the tail-row dot path.
    // K: several kKc = 256 blocks and a tail (under a sanitizer 4 blocks, not 16).
    for (std::int64_t M : {1, 2, 19, 34, 40}) {
      const std::int64_t N = 253, K = (kSanitized ? 1024 : 4096) + 7;
      const auto x = check::random_vector(M * K, 31);
      const auto w = check::random_weights<W>(N * K, 32);
      std::vector<float> first;
      for (int threads : {1, 2, 3}) {
        ThreadPool pool(threads);
        std::vector<float> out(std::size_t(M * N));
        level_matmul(L, pool, out.data(), x.data(), w.data(), M, N, K);
        if (first.empty()) {
          first = out;
        } else {
          INFO("M=", M, " threads=", threads);
          CHECK(std::memcmp(first.data(), out.data(), out.size() * sizeof(float)) == 0);
        }
      }
    }
  });
}

TEST_CASE_TEMPLATE("matvec: a row gets the same bits in a row group as alone", W, float, f16_t, bf16_t) {
  for_each_level([&](const KernelTable& L) {
    [[maybe_unused]] const std::int64_t kLanes = L.float_lanes;
    // K hits every loop of matvec_rows (512-byte steps, a 2-batch step, one batch, a scalar tail);
    // N = 45 runs 8-row (or 4-row) groups and then single rows.
    const std::int64_t N = 45, K = 2048 + 3 * kLanes + 5;
    const auto x = check::random_vector(K, 51);
    const auto w = check::random_weights<W>(N * K, 52);
    ThreadPool pool(1);
    std::vector<float> grouped(static_cast<std::size_t>(N)), alone(static_cast<std::size_t>(N));
    level_matmul(L, pool, grouped.data(), x.data(), w.data(), 1, N, K);
    for (std::int64_t n = 0; n < N; ++n) level_matmul(L, pool, alone.data() + n, x.data(), w.data() + n * K, 1, 1, K);
    CHECK(std::memcmp(grouped.data(), alone.data(), grouped.size() * sizeof(float)) == 0);
  });
}

TEST_CASE("matmul with an empty dimension writes nothing / zeros") {
  for_each_level([&](const KernelTable& L) {
    [[maybe_unused]] const std::int64_t kLanes = L.float_lanes;
    ThreadPool pool(2);
    std::vector<float> out(6, 5.0f), x(1), w(1);
    level_matmul(L, pool, out.data(), x.data(), w.data(), 2, 3, 0);  // K = 0: sums are 0
    for (float v : out) CHECK(v == 0.0f);
    level_matmul(L, pool, out.data(), x.data(), w.data(), 0, 3, 1);  // M = 0: no-op
  });
}

TEST_CASE_TEMPLATE("matmul's epilogue (bias, residual) gives the bits of separate adds, on both paths", W, float, f16_t,
                   bf16_t) {
  for_each_level([&](const KernelTable& L) {
    [[maybe_unused]] const std::int64_t kLanes = L.float_lanes;
    ThreadPool pool(2);
    for (std::int64_t M : {1, 3, 40, 257}) {
      const std::int64_t N = 75, K = 300;
      const auto x = check::random_vector(M * K, 41);
      const auto w = check::random_weights<W>(N * K, 42);
      const auto bias = check::random_vector(N, 43);
      const auto residual = check::random_vector(M * N, 44);
      // Separately: product, + bias, then residual + that.
      std::vector<float> plain(std::size_t(M * N)), want = residual;
      level_matmul(L, pool, plain.data(), x.data(), w.data(), M, N, K);
      for (std::int64_t m = 0; m < M; ++m)
        for (std::int64_t n = 0; n < N; ++n) {
          const float v = plain[std::size_t(m * N + n)] + bias[std::size_t(n)];
          want[std::size_t(m * N + n)] = residual[std::size_t(m * N + n)] + v;
        }
      std::vector<float> got = residual;
      level_matmul(L, pool, got.data(), x.data(), w.data(), M, N, K, Epilogue{bias.data(), true});
      INFO("M=", M);
      CHECK(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)) == 0);
      // Bias only, overwriting whatever was there; and the reference agrees within its tolerance.
      std::vector<float> biased(std::size_t(M * N), 123.0f), ref_biased(std::size_t(M * N), -7.0f);
      level_matmul(L, pool, biased.data(), x.data(), w.data(), M, N, K, Epilogue{bias.data(), false});
      ref::matmul(pool, ref_biased.data(), x.data(), w.data(), M, N, K, Epilogue{bias.data(), false});
      for (std::int64_t i = 0; i < M * N; ++i)
        CHECK(biased[std::size_t(i)] == plain[std::size_t(i)] + bias[std::size_t(i % N)]);
      const auto r =
          check::compare("matmul+bias", biased.data(), ref_biased.data(), M * N, 1e-6 * double(K) + 1e-6, 0.0);
      CHECK(r.ok());
    }
  });
}
