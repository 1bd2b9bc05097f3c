// q4_K / q6_K weights (tensor/quant_k.hpp, ref/matmul_quant.hpp): the formats against values
// computed by llama.cpp's own code (tests/data/kquant/README.md): q8_K bytes and dequantised
// values bit for bit, every level's dot within f32 rounding. test_matmul_quant.cpp runs every
// level's K-quant matmul against the scalar reference on both paths, and across thread counts.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <type_traits>
#include <vector>

#include <lav2/kernels/ref/matmul_quant.hpp>
#include <lav2/kernels/selfcheck.hpp>
#include <lav2/tensor/dtype.hpp>
#include <lav2/tensor/quant.hpp>

#include "kernels/levels.hpp"

using namespace lav2;
using namespace lav2::kernels;
using lav2::kernels::test::for_each_level;
using lav2::kernels::test::quantized;

namespace {

/// tests/data/kquant/kquant_golden.bin, parsed (layout in its README).
struct Golden {
  std::int64_t K = 0, N = 0;
  std::vector<float> x;
  std::vector<BlockQ8_K> xq;
  template <class Block>
  struct Row {
    std::vector<Block> blocks;
    std::vector<float> values;  // llama.cpp's dequantize_row_*
    float dot = 0;              // llama.cpp's ggml_vec_dot_*_q8_K with xq
  };
  std::vector<Row<BlockQ4_K>> q4;
  std::vector<Row<BlockQ6_K>> q6;
};

Golden read_golden() {
  std::ifstream f(std::string(LAV2_TEST_DATA_DIR) + "/kquant/kquant_golden.bin", std::ios::binary);
  REQUIRE(f);
  const std::vector<char> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::size_t pos = 0;
  const auto take = [&](void* dst, std::size_t n) {
    REQUIRE(pos + n <= bytes.size());
    std::memcpy(dst, bytes.data() + pos, n);
    pos += n;
  };
  char magic[4];
  take(magic, 4);
  REQUIRE(std::string(magic, 4) == "LKQ1");
  std::int32_t kn[2];
  take(kn, 8);
  Golden g;
  g.K = kn[0], g.N = kn[1];
  REQUIRE(g.K % kQuantBlockK == 0);
  const std::size_t nb = std::size_t(g.K / kQuantBlockK);
  g.x.resize(std::size_t(g.K));
  take(g.x.data(), g.x.size() * 4);
  g.xq.resize(nb);
  take(g.xq.data(), nb * sizeof(BlockQ8_K));
  const auto rows = [&](auto& out) {
    out.resize(std::size_t(g.N));
    for (auto& r : out) {
      r.blocks.resize(nb);
      take(r.blocks.data(), nb * sizeof(r.blocks[0]));
      r.values.resize(std::size_t(g.K));
      take(r.values.data(), r.values.size() * 4);
      take(&r.dot, 4);
    }
  };
  rows(g.q4);
  rows(g.q6);
  REQUIRE(pos == bytes.size());
  return g;
}

/// sum_k |x_k| * |terms of w_k| for a dot of the golden data: the scale of its rounding error.
template <class Block>
double abs_sum(const std::vector<float>& x, const std::vector<Block>& w, std::int64_t K) {
  std::vector<float> mag(static_cast<std::size_t>(K));
  if constexpr (std::is_same_v<Block, BlockQ4_K>) {
    check::detail::q4_k_term_magnitudes(w.data(), mag.data(), K);
  } else {
    dequantize_row(w.data(), mag.data(), K);
  }
  double s = 0;
  for (std::int64_t k = 0; k < K; ++k) s += std::fabs(double(x[std::size_t(k)]) * double(mag[std::size_t(k)]));
  return s;
}

}  // namespace

static_assert(sizeof(BlockQ4_K) == 144 && sizeof(BlockQ6_K) == 210 && sizeof(BlockQ8_K) == 292);
static_assert(quant_block_values_v<BlockQ4_K> == 256 && quant_block_values_v<BlockQ6_K> == 256);
static_assert(std::is_same_v<quant_activation_t<BlockQ4_K>, BlockQ8_K> &&
              std::is_same_v<quant_activation_t<BlockQ6_K>, BlockQ8_K> &&
              std::is_same_v<quant_activation_t<BlockQ4_0>, BlockQ8_0>);
static_assert(dtype_block_size(DType::q4_k) == 256 && dtype_row_bytes(DType::q4_k, 512) == 288);
static_assert(dtype_block_size(DType::q6_k) == 256 && dtype_row_bytes(DType::q6_k, 512) == 420);
static_assert(dtype_name(DType::q4_k) == "q4_k" && dtype_name(DType::q6_k) == "q6_k");

TEST_CASE("k-quants: lav2's q8_K, dequantisation and dots match llama.cpp's on its own blocks") {
  const Golden g = read_golden();
  const std::int64_t K = g.K, nb = K / kQuantBlockK;
  // quantize_row_q8_K_ref: the same bytes.
  std::vector<BlockQ8_K> xq(static_cast<std::size_t>(nb));
  quantize_row_q8_k(g.x.data(), xq.data(), K);
  CHECK(std::memcmp(xq.data(), g.xq.data(), xq.size() * sizeof(BlockQ8_K)) == 0);
  std::vector<float> y(static_cast<std::size_t>(K));
  const auto check_rows = [&](const auto& rows, const char* type) {
    for (std::size_t r = 0; r < rows.size(); ++r) {
      INFO(type, " row ", r);
      // dequantize_row_q4_K / _q6_K: bit-identical.
      dequantize_row(rows[r].blocks.data(), y.data(), K);
      CHECK(std::memcmp(y.data(), rows[r].values.data(), y.size() * sizeof(float)) == 0);
      // vec_dot: the same integers, summed in another order: within f32 rounding of the terms.
      const double tol = 2.0 * double(K) * std::ldexp(1.0, -24) * abs_sum(g.x, rows[r].blocks, K);
      const float want = rows[r].dot;
      const float ref_dot = ref::quant_dot(rows[r].blocks.data(), xq.data(), nb);
      INFO("llama.cpp ", want, " ref ", ref_dot, " tolerance ", tol);
      CHECK(std::fabs(double(ref_dot) - double(want)) <= tol);
      ThreadPool pool(1);
      for (Isa isa : available_isas()) {
        float got = 0;
        table_for(isa).matmul<std::decay_t<decltype(rows[r].blocks[0])>>()(pool, &got, g.x.data(),
                                                                           rows[r].blocks.data(), 1, 1, K, Epilogue{});
        INFO("level ", isa_name(isa), " got ", got);
        CHECK(std::fabs(double(got) - double(want)) <= tol);
      }
    }
  };
  check_rows(g.q4, "q4_K");
  check_rows(g.q6, "q6_K");
  // The golden blocks use the high bits of the 6-bit scales (a scale or min >= 16 in sub-blocks 4-7
  // and 0-3 alike), so the packing is exercised, not just its low bits.
  bool high_lo = false, high_hi = false;
  for (const auto& r : g.q4)
    for (const auto& b : r.blocks) {
      std::uint8_t sc[8], mn[8];
      unpack_scales_min_q4_k(b.scales, sc, mn);
      for (int j = 0; j < 8; ++j) (j < 4 ? high_lo : high_hi) |= sc[j] >= 16 || mn[j] >= 16;
    }
  CHECK(high_lo);
  CHECK(high_hi);
}

TEST_CASE("k-quants: q8_K of an all-zero block, rounding ties to even, bsums") {
  std::vector<float> x(256, 0.0f);
  BlockQ8_K b;
  std::memset(&b, 0x55, sizeof b);
  quantize_row_q8_k(x.data(), &b, 256);
  CHECK(b.d == 0.0f);
  CHECK(b.qs[17] == 0);
  CHECK(b.bsums[3] == 0);
  // max = -127 -> iscale = 1; 2.5 rounds to 2, 3.5 to 4, -0.5 to 0 (ggml's nearest_int).
  x[0] = -127.0f, x[1] = 2.5f, x[2] = 3.5f, x[3] = -0.5f, x[16] = 100.0f;
  quantize_row_q8_k(x.data(), &b, 256);
  CHECK(b.d == 1.0f);
  CHECK(b.qs[0] == -127);
  CHECK(b.qs[1] == 2);
  CHECK(b.qs[2] == 4);
  CHECK(b.qs[3] == 0);
  CHECK(b.bsums[0] == -127 + 2 + 4);
  CHECK(b.bsums[1] == 100);
  CHECK(round_half_even(-2.5f) == -2);
  CHECK(round_half_even(1e6f + 0.5f) == 1000000);
}

TEST_CASE_TEMPLATE("k-quants: the reference quantisers round to within a step of the stored scales", Block, BlockQ4_K,
                   BlockQ6_K) {
  const std::int64_t K = 4096;
  const auto x = check::random_vector(K, 17, -2.0f, 2.0f);
  const auto q = quantized<Block>(x, 1, K);
  std::vector<float> y(static_cast<std::size_t>(K));
  dequantize_row(q.data(), y.data(), K);
  for (std::int64_t b = 0; b < K / 256; ++b) {
    const auto& blk = q[std::size_t(b)];
    for (int j = 0; j < 256; ++j) {
      // The step of value j's sub-block: q4_K d * sc (its min is rounded too: one step more);
      // q6_K d * |sc| (-32..31 codes: a full step on the short side, as q4_0).
      double step = 0;
      if constexpr (std::is_same_v<Block, BlockQ4_K>) {
        std::uint8_t sc[8], mn[8];
        unpack_scales_min_q4_k(blk.scales, sc, mn);
        step = f16_to_f32(blk.d) * sc[j / 32] + f16_to_f32(blk.dmin) * 0.5;
      } else {
        step = f16_to_f32(blk.d) * std::fabs(double(blk.scales[j / 16]));
      }
      INFO("block ", b, " value ", j);
      CHECK(std::fabs(double(x[std::size_t(b * 256 + j)]) - double(y[std::size_t(b * 256 + j)])) <= 1.5 * step + 1e-6);
    }
  }
}

TEST_CASE("k-quant matmul through a MatPtr: the dtype switch, and the epilogue") {
  ThreadPool pool(2);
  const std::int64_t N = 9, K = 512;
  const auto x = check::random_vector(K, 3);
  const auto wf = check::random_vector(N * K, 4);
  const auto w4 = quantized<BlockQ4_K>(wf, N, K);
  const auto w6 = quantized<BlockQ6_K>(wf, N, K);
  std::vector<float> bias(std::size_t(N), 0.5f), a(static_cast<std::size_t>(N)), b(std::size_t(N), 1.0f);
  for (const auto& [dt_, p] : {std::pair<DType, const void*>{DType::q4_k, w4.data()}, {DType::q6_k, w6.data()}}) {
    const DType dt = dt_;  // a structured binding cannot be captured (CAPTURE) before C++20
    CAPTURE(dtype_name(dt));
    const MatPtr m(dt, p, N, K, K);
    CHECK(m.bytes() == std::size_t(N) * dtype_row_bytes(dt, K));
    matmul(pool, a.data(), x.data(), m, 1);
    std::vector<float> c = b;
    Epilogue ep;
    ep.bias = bias.data();
    ep.accumulate = true;
    matmul(pool, c.data(), x.data(), m, 1, ep);
    for (std::int64_t n = 0; n < N; ++n) CHECK(c[std::size_t(n)] == doctest::Approx(a[std::size_t(n)] + 1.5f));
    // mat_row_to_f32 (an embedding lookup) dequantises the row.
    std::vector<float> row(static_cast<std::size_t>(K)), want(static_cast<std::size_t>(K));
    mat_row_to_f32(m, 3, row.data());
    if (dt == DType::q4_k) dequantize_row(w4.data() + 3 * 2, want.data(), K);
    else dequantize_row(w6.data() + 3 * 2, want.data(), K);
    CHECK(row == want);
  }
}
