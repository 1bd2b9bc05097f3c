// Self-check: runs every kernel of a table against the scalar reference on random data and
// reports max |tested - reference| next to its tolerance. `lav2 selfcheck` runs it for every
// kernel level this CPU supports (dispatch.hpp's available_isas); tests pass a table with one
// deliberately broken kernel to show the check catches it.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "lav2/core/thread_pool.hpp"
#include "lav2/kernels/kernel_table.hpp"
#include "lav2/kernels/ref/ref_table.hpp"
#include "lav2/tensor/dtype.hpp"
#include "lav2/tensor/quant.hpp"

namespace lav2::kernels::check {

/// \brief The scalar reference table (ref/ref_table.hpp).
inline const KernelTable& ref_table() { return ref::ref_table(); }

// ---- helpers shared with the tests ------------------------------------------------------------

/// \brief (n) values uniform in [lo, hi) from a fixed seed.
inline std::vector<float> random_vector(std::int64_t n, std::uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(std::size_t(std::max<std::int64_t>(n, 0)));
  for (auto& x : v) x = dist(rng);
  return v;
}

/// \brief (n) random values rounded to W (f32, f16 or bf16).
template <class W>
std::vector<W> random_weights(std::int64_t n, std::uint32_t seed) {
  const std::vector<float> f = random_vector(n, seed);
  std::vector<W> w(f.size());
  for (std::size_t i = 0; i < f.size(); ++i) w[i] = from_f32<W>(f[i]);
  return w;
}

/// \brief max_i |a[i] - b[i]|, or NaN when any value of either side is NaN or infinite, so that
/// a non-finite result fails every tolerance (NaN <= tol and NaN >= tol are both false). This is
/// the one comparison every test and the self-check use.
inline double max_abs_diff(const float* a, const float* b, std::int64_t n) {
  double m = 0.0;
  for (std::int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(a[i]) || !std::isfinite(b[i])) return NAN;
    m = std::max(m, std::fabs(double(a[i]) - double(b[i])));
  }
  return m;
}

inline double max_abs(const float* a, std::int64_t n) {
  double m = 0.0;
  for (std::int64_t i = 0; i < n; ++i) m = std::max(m, std::fabs(double(a[i])));
  return m;
}

/// \brief One comparison: passes when max_diff <= tolerance (and is not NaN).
struct Result {
  std::string name;
  double max_diff = 0.0;
  double tolerance = 0.0;
  bool ok() const { return max_diff <= tolerance; }  // false for NaN
};

/// \brief Tolerance atol + rtol * max|reference| with the max |difference|, for outputs (n).
inline Result compare(std::string name, const float* tested, const float* reference, std::int64_t n, double atol,
                      double rtol) {
  return {std::move(name), max_abs_diff(tested, reference, n), atol + rtol * max_abs(reference, n)};
}

/// \brief Sizes of the self-check problems.
struct Options {
  std::int64_t n = 4096 + 3;                      ///< vector kernels (odd: exercises the scalar tail)
  std::int64_t head_dim = 128;                    ///< attention
  std::int64_t n_keys = 67;                       ///< attention keys / adapter prompts
  std::int64_t mv_n = 96, mv_k = 4096 + 5;        ///< matvec (M = 1)
  std::int64_t mm_m = 13, mm_n = 70, mm_k = 515;  ///< GEMM (edge tiles, several K blocks)
  std::uint32_t seed = 1234;
};

/// \brief A matmul's outputs against a reference under the a-priori bound of floating-point
/// dot products: |fl(x.w) - x.w| <= gamma_K * sum_k |x_k w_k|, gamma_K = K u / (1 - K u), u = 2^-24
/// (f32), whatever the summation order (blocked, lane-split, FMA). Both sides carry that error, so
/// an output passes when |tested - reference| <= 2 gamma_K sum_k |x_k w_k|, a bound per output that
/// follows the data (unlike a tolerance from K alone). Reports the worst ratio error / bound
/// (tolerance 1); NaN or Inf anywhere fails. x (M, K), w (N, K) row-major, outputs (M, N).
template <class W>
Result compare_matmul(std::string name, const float* tested, const float* reference, const float* x, const W* w,
                      std::int64_t M, std::int64_t N, std::int64_t K) {
  const double u = std::ldexp(1.0, -24), ku = double(K) * u, gamma = ku / (1.0 - ku);
  double worst = 0.0;
  for (std::int64_t m = 0; m < M; ++m)
    for (std::int64_t n = 0; n < N; ++n) {
      const float a = tested[m * N + n], b = reference[m * N + n];
      if (!std::isfinite(a) || !std::isfinite(b)) return {std::move(name), NAN, 1.0};
      double abs_sum = 0.0;
      for (std::int64_t k = 0; k < K; ++k) abs_sum += std::fabs(double(x[m * K + k]) * double(to_f32(w[n * K + k])));
      // The smallest subnormal keeps an all-zero row (bound 0) from dividing by zero.
      const double bound = 2.0 * gamma * abs_sum + 1e-45;
      worst = std::max(worst, std::fabs(double(a) - double(b)) / bound);
    }
  return {std::move(name), worst, 1.0};
}

namespace detail {
template <class W>
Result check_matmul(const char* name, KernelTable::MatmulFn<W> tested, KernelTable::MatmulFn<W> reference,
                    ThreadPool& pool, std::int64_t M, std::int64_t N, std::int64_t K, std::uint32_t seed) {
  const std::vector<float> x = random_vector(M * K, seed);
  const std::vector<W> w = random_weights<W>(N * K, seed + 1);
  std::vector<float> got(std::size_t(M * N)), want(std::size_t(M * N));
  tested(pool, got.data(), x.data(), w.data(), M, N, K, Epilogue{});
  reference(pool, want.data(), x.data(), w.data(), M, N, K, Epilogue{});
  return compare_matmul(name, got.data(), want.data(), x.data(), w.data(), M, N, K);
}
/// The magnitudes the decode path of a q4_K row sums: (d sc) q and (dmin mn) are summed apart
/// (ref/matmul_quant.hpp), so their rounding follows d sc q + dmin mn, not the (smaller) value.
inline void q4_k_term_magnitudes(const BlockQ4_K* w, float* out, std::int64_t K) {
  std::uint8_t sc[8], mn[8], q[kQuantBlockK];
  for (std::int64_t b = 0; b < K / kQuantBlockK; ++b) {
    unpack_scales_min_q4_k(w[b].scales, sc, mn);
    unpack_codes_q4_k(w[b], q);
    for (int j = 0; j < kQuantBlockK; ++j)
      out[b * kQuantBlockK + j] =
          f16_to_f32(w[b].d) * float(sc[j / 32]) * float(q[j]) + std::fabs(f16_to_f32(w[b].dmin)) * float(mn[j / 32]);
  }
}

/// The quantised matmul (K a multiple of the block's 32 or 256 values): weights quantised from
/// random f32, bounded as compare_matmul does with the dequantised weights and, on the decode path
/// (M < kQuantGemmMinRows, q8_0 / q8_K activations), the dequantised activations (and, for q4_K,
/// the magnitudes of its two sums): both sides then compute the same products and differ only in
/// how they sum them.
template <class Block>
Result check_matmul_quant(const char* name, KernelTable::MatmulFn<Block> tested, KernelTable::MatmulFn<Block> reference,
                          ThreadPool& pool, std::int64_t M, std::int64_t N, std::int64_t K, std::uint32_t seed) {
  using Act = quant_activation_t<Block>;
  constexpr bool kX8 = std::is_same_v<Block, BlockQ4_0x8>;  // q4_0 rows, then repacked
  using Row = std::conditional_t<kX8, BlockQ4_0, Block>;
  const std::int64_t nb = K / quant_block_values_v<Block>;
  std::vector<float> x = random_vector(M * K, seed), wf = random_vector(N * K, seed + 1);
  std::vector<Row> rows(std::size_t(N * nb));
  for (std::int64_t n = 0; n < N; ++n) {
    quantize_row(wf.data() + n * K, rows.data() + n * nb, K);
    dequantize_row(rows.data() + n * nb, wf.data() + n * K, K);
  }
  std::vector<Block> w;
  if constexpr (kX8) {
    w.resize(std::size_t(N * nb));  // N a multiple of 8
    repack_q4_0_x8(rows.data(), N, nb, w.data());
  } else {
    w = std::move(rows);
  }
  std::vector<float> got(std::size_t(M * N)), want(std::size_t(M * N)), xb = x;
  tested(pool, got.data(), x.data(), w.data(), M, N, K, Epilogue{});
  reference(pool, want.data(), x.data(), w.data(), M, N, K, Epilogue{});
  if (M < kQuantGemmMinRows) {
    std::vector<Act> xq(static_cast<std::size_t>(K / quant_block_values_v<Act>));
    for (std::int64_t m = 0; m < M; ++m) {
      quantize_row(x.data() + m * K, xq.data(), K);
      dequantize_row(xq.data(), xb.data() + m * K, K);
    }
    if constexpr (std::is_same_v<Block, BlockQ4_K>)
      for (std::int64_t n = 0; n < N; ++n) q4_k_term_magnitudes(w.data() + n * nb, wf.data() + n * K, K);
  }
  return compare_matmul(name, got.data(), want.data(), xb.data(), wf.data(), M, N, K);
}
}  // namespace detail

/// \brief Runs every kernel of `tested` and `reference` on the same random inputs.
inline std::vector<Result> run(const KernelTable& tested, const KernelTable& reference, ThreadPool& pool,
                               const Options& opt = {}) {
  std::vector<Result> results;
  const std::int64_t n = opt.n;
  const std::vector<float> a = random_vector(n, opt.seed), b = random_vector(n, opt.seed + 1);
  const std::vector<float> big = random_vector(n, opt.seed + 2, -8.0f, 8.0f);  // activation inputs
  std::vector<float> got(static_cast<std::size_t>(n)), want(static_cast<std::size_t>(n));
  const auto fresh = [&](const std::vector<float>& src) {
    got = src;
    want = src;
  };

  {  // dot: one number; tolerance relative to sum |a b| <= n
    const float g = tested.dot(a.data(), b.data(), n), r = reference.dot(a.data(), b.data(), n);
    results.push_back(compare("dot", &g, &r, 1, 1e-6 * std::sqrt(double(n)), 0.0));
  }
  fresh(a);
  tested.axpy(got.data(), 0.75f, b.data(), n);
  reference.axpy(want.data(), 0.75f, b.data(), n);
  results.push_back(compare("axpy", got.data(), want.data(), n, 1e-6, 0.0));
  fresh(a);
  tested.add(got.data(), b.data(), n);
  reference.add(want.data(), b.data(), n);
  results.push_back(compare("add", got.data(), want.data(), n, 0.0, 0.0));

  tested.rmsnorm(got.data(), a.data(), b.data(), n, 1e-5f);
  reference.rmsnorm(want.data(), a.data(), b.data(), n, 1e-5f);
  results.push_back(compare("rmsnorm", got.data(), want.data(), n, 0.0, 1e-5));
  tested.layernorm(got.data(), big.data(), a.data(), b.data(), n, 1e-5f);
  reference.layernorm(want.data(), big.data(), a.data(), b.data(), n, 1e-5f);
  results.push_back(compare("layernorm", got.data(), want.data(), n, 0.0, 1e-5));
  {  // rmsnorm_backward (training): dx, and dw accumulated onto a nonzero start
    std::vector<float> gw = b, rw = b;
    tested.rmsnorm_backward(got.data(), gw.data(), b.data(), big.data(), a.data(), n, 1e-5f);
    reference.rmsnorm_backward(want.data(), rw.data(), b.data(), big.data(), a.data(), n, 1e-5f);
    results.push_back(compare("rmsnorm_backward", got.data(), want.data(), n, 0.0, 1e-5));
    results.push_back(compare("rmsnorm_backward_dw", gw.data(), rw.data(), n, 0.0, 1e-5));
  }

  {  // RoPE over one head at a few angles
    const std::int64_t hd = opt.head_dim;
    std::vector<float> cs(std::size_t(hd / 2)), sn(std::size_t(hd / 2));
    for (std::int64_t i = 0; i < hd / 2; ++i) {
      const double theta = 37.0 * std::pow(10000.0, -2.0 * double(i) / double(hd));
      cs[std::size_t(i)] = float(std::cos(theta));
      sn[std::size_t(i)] = float(std::sin(theta));
    }
    fresh(big);
    tested.rope_interleaved(got.data(), hd, cs.data(), sn.data());
    reference.rope_interleaved(want.data(), hd, cs.data(), sn.data());
    results.push_back(compare("rope_interleaved", got.data(), want.data(), hd, 0.0, 1e-6));
  }

  fresh(big);
  tested.softmax(got.data(), n);
  reference.softmax(want.data(), n);
  results.push_back(compare("softmax", got.data(), want.data(), n, 0.0, 1e-5));
  fresh(big);
  tested.silu(got.data(), n);
  reference.silu(want.data(), n);
  results.push_back(compare("silu", got.data(), want.data(), n, 0.0, 1e-6));
  tested.swiglu(got.data(), big.data(), a.data(), n);
  reference.swiglu(want.data(), big.data(), a.data(), n);
  results.push_back(compare("swiglu", got.data(), want.data(), n, 0.0, 1e-6));
  fresh(big);
  tested.gelu_erf(got.data(), n);
  reference.gelu_erf(want.data(), n);
  results.push_back(compare("gelu_erf", got.data(), want.data(), n, 0.0, 1e-6));
  fresh(big);
  tested.quick_gelu(got.data(), n);
  reference.quick_gelu(want.data(), n);
  results.push_back(compare("quick_gelu", got.data(), want.data(), n, 0.0, 1e-6));

  {  // attention over a strided KV cache (two heads per row: stride = 2 * head_dim)
    const std::int64_t hd = opt.head_dim, nk = opt.n_keys, stride = 2 * hd;
    const std::vector<float> q = random_vector(hd, opt.seed + 3), k = random_vector(nk * stride, opt.seed + 4),
                             v = random_vector(nk * stride, opt.seed + 5);
    std::vector<float> scratch(static_cast<std::size_t>(nk)), out_g(static_cast<std::size_t>(hd)),
        out_r(static_cast<std::size_t>(hd));
    const float scale = 1.0f / std::sqrt(float(hd));
    tested.attention_head(out_g.data(), q.data(), k.data(), v.data(), nk, hd, stride, scale, scratch.data());
    reference.attention_head(out_r.data(), q.data(), k.data(), v.data(), nk, hd, stride, scale, scratch.data());
    results.push_back(compare("attention_head", out_g.data(), out_r.data(), hd, 1e-6, 0.0));
    out_g = out_r = random_vector(hd, opt.seed + 6);
    tested.adapter_attention_head(out_g.data(), q.data(), k.data(), v.data(), nk, hd, stride, scale, 0.37f,
                                  scratch.data());
    reference.adapter_attention_head(out_r.data(), q.data(), k.data(), v.data(), nk, hd, stride, scale, 0.37f,
                                     scratch.data());
    results.push_back(compare("adapter_attention_head", out_g.data(), out_r.data(), hd, 1e-6, 0.0));
    // The same over an f16 cache (--kv-dtype f16): keys and values rounded to f16 first.
    std::vector<f16_t> k16(k.size()), v16(v.size());
    for (std::size_t i = 0; i < k.size(); ++i) k16[i].bits = f32_to_f16(k[i]);
    for (std::size_t i = 0; i < v.size(); ++i) v16[i].bits = f32_to_f16(v[i]);
    tested.attention_head_f16kv(out_g.data(), q.data(), k16.data(), v16.data(), nk, hd, stride, scale, scratch.data());
    reference.attention_head_f16kv(out_r.data(), q.data(), k16.data(), v16.data(), nk, hd, stride, scale,
                                   scratch.data());
    results.push_back(compare("attention_head_f16kv", out_g.data(), out_r.data(), hd, 1e-6, 0.0));
  }

  // The matvec (M = 1) and GEMM paths of matmul, for each weight type.
  for (const bool gemm : {false, true}) {
    const std::int64_t M = gemm ? opt.mm_m : 1, N = gemm ? opt.mm_n : opt.mv_n, K = gemm ? opt.mm_k : opt.mv_k;
    const std::string path = gemm ? "gemm_" : "matvec_";
    const std::uint32_t s = opt.seed + 7;
    results.push_back(
        detail::check_matmul((path + "f32").c_str(), tested.matmul_f32, reference.matmul_f32, pool, M, N, K, s));
    results.push_back(
        detail::check_matmul((path + "f16").c_str(), tested.matmul_f16, reference.matmul_f16, pool, M, N, K, s));
    results.push_back(
        detail::check_matmul((path + "bf16").c_str(), tested.matmul_bf16, reference.matmul_bf16, pool, M, N, K, s));
    const std::int64_t K32 = std::max<std::int64_t>(K / kQuantBlock, 1) * kQuantBlock;
    results.push_back(detail::check_matmul_quant((path + "q8_0").c_str(), tested.matmul_q8_0, reference.matmul_q8_0,
                                                 pool, M, N, K32, s));
    results.push_back(detail::check_matmul_quant((path + "q4_0").c_str(), tested.matmul_q4_0, reference.matmul_q4_0,
                                                 pool, M, N, K32, s));
    const std::int64_t K256 = std::max<std::int64_t>(K / kQuantBlockK, 1) * kQuantBlockK;
    results.push_back(detail::check_matmul_quant((path + "q4_k").c_str(), tested.matmul_q4_k, reference.matmul_q4_k,
                                                 pool, M, N, K256, s));
    results.push_back(detail::check_matmul_quant((path + "q6_k").c_str(), tested.matmul_q6_k, reference.matmul_q6_k,
                                                 pool, M, N, K256, s));
    const std::int64_t N8 = (N + kX8Rows - 1) / kX8Rows * kX8Rows;
    results.push_back(detail::check_matmul_quant((path + "q4_0_x8").c_str(), tested.matmul_q4_0_x8,
                                                 reference.matmul_q4_0_x8, pool, M, N8, K32, s));
  }

  {  // conversions must be bit-exact: compare as f32 after widening with the scalar spec
    std::vector<f16_t> h_got(static_cast<std::size_t>(n)), h_want(static_cast<std::size_t>(n));
    std::vector<bf16_t> b_got(static_cast<std::size_t>(n)), b_want(static_cast<std::size_t>(n));
    tested.convert_f32_to_f16(h_got.data(), big.data(), n);
    reference.convert_f32_to_f16(h_want.data(), big.data(), n);
    ref::convert_f16_to_f32(got.data(), h_got.data(), n);
    ref::convert_f16_to_f32(want.data(), h_want.data(), n);
    results.push_back(compare("convert_f32_to_f16", got.data(), want.data(), n, 0.0, 0.0));
    tested.convert_f16_to_f32(got.data(), h_want.data(), n);
    reference.convert_f16_to_f32(want.data(), h_want.data(), n);
    results.push_back(compare("convert_f16_to_f32", got.data(), want.data(), n, 0.0, 0.0));
    tested.convert_f32_to_bf16(b_got.data(), big.data(), n);
    reference.convert_f32_to_bf16(b_want.data(), big.data(), n);
    ref::convert_bf16_to_f32(got.data(), b_got.data(), n);
    ref::convert_bf16_to_f32(want.data(), b_want.data(), n);
    results.push_back(compare("convert_f32_to_bf16", got.data(), want.data(), n, 0.0, 0.0));
    tested.convert_bf16_to_f32(got.data(), b_want.data(), n);
    reference.convert_bf16_to_f32(want.data(), b_want.data(), n);
    results.push_back(compare("convert_bf16_to_f32", got.data(), want.data(), n, 0.0, 0.0));
  }
  return results;
}

/// \brief True when every result is within its tolerance.
inline bool all_ok(const std::vector<Result>& results) {
  return std::all_of(results.begin(), results.end(), [](const Result& r) { return r.ok(); });
}

}  // namespace lav2::kernels::check
