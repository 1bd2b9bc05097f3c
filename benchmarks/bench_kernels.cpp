// Kernel benchmarks at LLaMA-7B shapes, scalar reference and SIMD side by side, 1 and 2 threads,
// quoted against the machine probes (kernels/probes.hpp) measured in the same binary:
//   matmul:  weights_GBps (bytes of weights read per second) and stream_frac = that / stream
//            (weights rotate through >= 1 GiB of copies, so they come from DRAM);
//            GFLOPs and fma_frac = GFLOP/s / FMA peak (of the same thread count).
// The memory bandwidth of this (virtual) machine drifts by up to 1.5x within a minute as
// neighbours come and go, so for the memory-bound matvec (M = 1, SIMD) the stream probe is run
// again right before and right after the benchmark (best of 5 passes each, same buffer) and
// stream_frac is against the higher of the two (stream_adjacent_GBps); stream_frac_startup
// keeps the ratio to the start-up probe.
// matmul_eigen/f32 is the baseline: Eigen's f32 GEMM (M = 64) and GEMV (M = 1) on the same f32
// weights and counters, one thread (Eigen parallelises only through OpenMP, which is not enabled),
// so lav2 vs Eigen reads off one run: compare it with matmul_simd/f32 at threads = 1.
// Quantised weights (q8_0, q4_0, q4_k, q6_k) run at 4096 x 4096 only: random f32 rows quantised by
// lav2's reference quantisers; weights_GBps counts the bytes of their blocks, the bytes a decode
// step streams (q4_0 and q4_k 4.5 bits per weight, q6_k 6.5625, q8_0 8.5).
// Run: build/benchmarks/bench_kernels --benchmark_filter=... (the probes always run first).
#include <benchmark/benchmark.h>

#include <Eigen/Core>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include <lav2/kernels/dispatch.hpp>
#include <lav2/kernels/probes.hpp>
#include <lav2/kernels/ref/matmul.hpp>
#include <lav2/kernels/ref/ops.hpp>
#include <lav2/kernels/ref/ref_table.hpp>
#include <lav2/kernels/selfcheck.hpp>
#include <lav2/tensor/quant.hpp>
#include <lav2/tensor/tensor.hpp>

using namespace lav2;
using namespace lav2::kernels;

namespace {

// "simd" is the active level's table: the widest this CPU runs, or LAV2_ISA's.
const KernelTable& simd_kernels() { return active_kernels(); }

ThreadPool& pool_of(int threads) {
  static ThreadPool p1(1), p2(2);
  return threads == 1 ? p1 : p2;
}

// Probe results by thread count (index 1 and 2), measured in main() before the benchmarks.
double g_stream_gbps[3] = {0, 0, 0};
double g_fma_gflops[3] = {0, 0, 0};
std::unique_ptr<probes::StreamBuffer> g_stream_buffer;  // 1 GiB, allocated in main()

enum class Impl { ref, simd, eigen };

// Times one call with steady_clock (matmul splits over pool threads, so CPU time would mislead).
template <class F>
void timed_loop(benchmark::State& state, F&& fn, double* seconds) {
  *seconds = 0;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    state.SetIterationTime(s);
    *seconds += s;
  }
}

// The bytes of a random (N, K) weight matrix of W: elements, or f32 rows quantised to blocks.
template <class W>
std::vector<unsigned char> random_weight_bytes(std::int64_t N, std::int64_t K) {
  if constexpr (is_quant_block_v<W>) {
    const std::int64_t nb = K / quant_block_values_v<W>;
    const auto f = check::random_vector(N * K, 2);
    std::vector<unsigned char> bytes(std::size_t(N * nb) * sizeof(W));
    for (std::int64_t n = 0; n < N; ++n) quantize_row(f.data() + n * K, reinterpret_cast<W*>(bytes.data()) + n * nb, K);
    return bytes;
  } else {
    const auto w = check::random_weights<W>(N * K, 2);
    std::vector<unsigned char> bytes(w.size() * sizeof(W));
    std::memcpy(bytes.data(), w.data(), bytes.size());
    return bytes;
  }
}

// args: M, N, K, threads
template <class W, Impl kImpl>
void BM_matmul(benchmark::State& state) {
  const std::int64_t M = state.range(0), N = state.range(1), K = state.range(2);
  const int threads = int(state.range(3));
  const auto x = check::random_vector(M * K, 1);
  // Enough copies of the weights to cover 1 GiB, used in turn, so that every call reads its
  // weights from DRAM as the stream probe does (this machine's L3 could otherwise hold one copy).
  const auto w0 = random_weight_bytes<W>(N, K);
  // Each copy is a Tensor, allocated as the library allocates weights (huge pages when large).
  const std::size_t copies = std::max<std::size_t>(1, (std::size_t(1) << 30) / w0.size() + 1);
  std::vector<Tensor<std::uint8_t>> w;
  for (std::size_t c = 0; c < copies; ++c) {
    w.emplace_back(Shape{std::int64_t(w0.size())});
    std::memcpy(w.back().data(), w0.data(), w0.size());
  }
  std::vector<float> out(static_cast<std::size_t>(M * N));
  ThreadPool& pool = pool_of(threads);
  double seconds = 0;
  std::size_t turn = 0;
  const bool adjacent_probe = kImpl != Impl::ref && M == 1;
  const double stream_before = adjacent_probe ? probes::stream_gbps(pool, *g_stream_buffer) : 0.0;
  timed_loop(
      state,
      [&] {
        const W* wt = reinterpret_cast<const W*>(w[turn++ % copies].data());
        if constexpr (kImpl == Impl::simd) {
          simd_kernels().matmul<W>()(pool, out.data(), x.data(), wt, M, N, K, Epilogue{});
        } else if constexpr (kImpl == Impl::eigen && std::is_same_v<W, float>) {
          // out (M, N) = x (M, K) * W^T, W (N, K) row-major: what a linear computes.
          using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
          Eigen::Map<RowMajor> o(out.data(), M, N);
          o.noalias() = Eigen::Map<const RowMajor>(x.data(), M, K) * Eigen::Map<const RowMajor>(wt, N, K).transpose();
        } else {
          ref::ref_table().matmul<W>()(pool, out.data(), x.data(), wt, M, N, K, Epilogue{});
        }
        benchmark::DoNotOptimize(out.data());
      },
      &seconds);
  const double stream_after = adjacent_probe ? probes::stream_gbps(pool, *g_stream_buffer) : 0.0;
  const double iters = double(state.iterations());
  const double weight_gbps = double(w0.size()) * iters / seconds / 1e9;
  const double gflops = 2.0 * double(M * N * K) * iters / seconds / 1e9;
  state.counters["weights_GBps"] = weight_gbps;
  state.counters["stream_frac_startup"] = weight_gbps / g_stream_gbps[threads];
  if (adjacent_probe) {
    const double adjacent = std::max(stream_before, stream_after);
    state.counters["stream_adjacent_GBps"] = adjacent;
    state.counters["stream_frac"] = weight_gbps / adjacent;
  } else {
    state.counters["stream_frac"] = weight_gbps / g_stream_gbps[threads];
  }
  state.counters["GFLOPs"] = gflops;
  state.counters["fma_frac"] = gflops / g_fma_gflops[threads];
}

// With --benchmark_repetitions: "min" (best time) and "max" (best rates) rows, comparable with the
// probes, which are best-of-5 too; the median rows are the typical figures.
double min_of(const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); }
double max_of(const std::vector<double>& v) { return *std::max_element(v.begin(), v.end()); }

constexpr std::int64_t kShapes[3][2] = {{4096, 4096}, {11008, 4096}, {4096, 11008}};  // (N, K)

template <class W>
void register_matmul(const char* dtype) {
  for (const auto& s : kShapes) {
    if (is_quant_block_v<W> && !(s[0] == 4096 && s[1] == 4096)) continue;
    for (int threads : {1, 2}) {
      for (std::int64_t M : {1, 64}) {
        const std::string tail = std::string("/") + dtype;
        benchmark::RegisterBenchmark(("matmul_simd" + tail).c_str(), BM_matmul<W, Impl::simd>)
            ->Args({M, s[0], s[1], threads})
            ->UseManualTime()
            ->Unit(benchmark::kMillisecond)
            ->MinTime(0.3)
            ->ComputeStatistics("min", min_of)
            ->ComputeStatistics("max", max_of);
        // The scalar GEMM takes seconds per call at M = 64: run it once, at the smallest shape.
        if (M == 1 || (s[0] == 4096 && s[1] == 4096))
          benchmark::RegisterBenchmark(("matmul_ref" + tail).c_str(), BM_matmul<W, Impl::ref>)
              ->Args({M, s[0], s[1], threads})
              ->UseManualTime()
              ->Unit(benchmark::kMillisecond)
              ->Iterations(M == 1 ? 5 : 1);
        // The quantised decode again on 256 rows (576 KiB of q4_0): the weights stay in L2, so the
        // kernel's compute, not the memory, sets its time.
        if (is_quant_block_v<W> && M == 1 && threads == 1)
          benchmark::RegisterBenchmark(("matmul_simd_l2" + tail).c_str(), BM_matmul<W, Impl::simd>)
              ->Args({M, 256, s[1], threads})
              ->UseManualTime()
              ->Unit(benchmark::kMicrosecond)
              ->MinTime(0.3);
        if constexpr (std::is_same_v<W, float>) {
          if (threads == 1)
            benchmark::RegisterBenchmark(("matmul_eigen" + tail).c_str(), BM_matmul<W, Impl::eigen>)
                ->Args({M, s[0], s[1], threads})
                ->UseManualTime()
                ->Unit(benchmark::kMillisecond)
                ->MinTime(0.3)
                ->ComputeStatistics("min", min_of)
                ->ComputeStatistics("max", max_of);
        }
      }
    }
  }
}

// ---- single-thread vector kernels -------------------------------------------------------------

template <Impl kImpl>
void BM_rmsnorm(benchmark::State& state) {
  const std::int64_t n = state.range(0);
  const auto x = check::random_vector(n, 1), w = check::random_vector(n, 2);
  std::vector<float> out(static_cast<std::size_t>(n));
  for (auto _ : state) {
    if constexpr (kImpl == Impl::simd) simd_kernels().rmsnorm(out.data(), x.data(), w.data(), n, 1e-5f);
    else ref::rmsnorm(out.data(), x.data(), w.data(), n, 1e-5f);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * n);
}

template <Impl kImpl>
void BM_layernorm(benchmark::State& state) {
  const std::int64_t n = state.range(0);
  const auto x = check::random_vector(n, 1), w = check::random_vector(n, 2), b = check::random_vector(n, 3);
  std::vector<float> out(static_cast<std::size_t>(n));
  for (auto _ : state) {
    if constexpr (kImpl == Impl::simd) simd_kernels().layernorm(out.data(), x.data(), w.data(), b.data(), n, 1e-5f);
    else ref::layernorm(out.data(), x.data(), w.data(), b.data(), n, 1e-5f);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * n);
}

// In-place maps: softmax, silu, gelu_erf, quick_gelu. The input is restored each iteration.
template <void (*kRef)(float*, std::int64_t), void (*KernelTable::*kSimd)(float*, std::int64_t)>
void BM_inplace(benchmark::State& state) {
  const std::int64_t n = state.range(0);
  const bool simd_impl = state.range(1) != 0;
  const auto x = check::random_vector(n, 1, -8.0f, 8.0f);
  std::vector<float> y = x;
  for (auto _ : state) {
    std::copy(x.begin(), x.end(), y.begin());
    if (simd_impl) (simd_kernels().*kSimd)(y.data(), n);
    else kRef(y.data(), n);
    benchmark::DoNotOptimize(y.data());
  }
  state.SetItemsProcessed(state.iterations() * n);
}

template <Impl kImpl>
void BM_swiglu(benchmark::State& state) {
  const std::int64_t n = state.range(0);
  const auto g = check::random_vector(n, 1, -8.0f, 8.0f), u = check::random_vector(n, 2);
  std::vector<float> out(static_cast<std::size_t>(n));
  for (auto _ : state) {
    if constexpr (kImpl == Impl::simd) simd_kernels().swiglu(out.data(), g.data(), u.data(), n);
    else ref::swiglu(out.data(), g.data(), u.data(), n);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * n);
}

template <Impl kImpl>
void BM_rope(benchmark::State& state) {
  // All 32 heads of a 4096-dim query, head_dim 128.
  const std::int64_t hd = 128, heads = 32;
  auto x = check::random_vector(hd * heads, 1);
  const auto c = check::random_vector(hd / 2, 2), s = check::random_vector(hd / 2, 3);
  for (auto _ : state) {
    for (std::int64_t h = 0; h < heads; ++h) {
      if constexpr (kImpl == Impl::simd) simd_kernels().rope_interleaved(x.data() + h * hd, hd, c.data(), s.data());
      else ref::rope_interleaved(x.data() + h * hd, hd, c.data(), s.data());
    }
    benchmark::DoNotOptimize(x.data());
  }
  state.SetItemsProcessed(state.iterations() * hd * heads);
}

template <Impl kImpl>
void BM_dot(benchmark::State& state) {
  const std::int64_t n = state.range(0);
  const auto a = check::random_vector(n, 1), b = check::random_vector(n, 2);
  for (auto _ : state) {
    float r;
    if constexpr (kImpl == Impl::simd) r = simd_kernels().dot(a.data(), b.data(), n);
    else r = ref::dot(a.data(), b.data(), n);
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations() * n);
}

template <Impl kImpl>
void BM_axpy(benchmark::State& state) {
  const std::int64_t n = state.range(0);
  const auto x = check::random_vector(n, 1);
  auto y = check::random_vector(n, 2);
  for (auto _ : state) {
    if constexpr (kImpl == Impl::simd) simd_kernels().axpy(y.data(), 1e-3f, x.data(), n);
    else ref::axpy(y.data(), 1e-3f, x.data(), n);
    benchmark::DoNotOptimize(y.data());
  }
  state.SetItemsProcessed(state.iterations() * n);
}

template <Impl kImpl>
void BM_attention(benchmark::State& state) {
  // One head: head_dim 128, n_keys keys in a cache with 32 heads per row (stride 4096); with
  // range(1) != 0 the gated adapter step over the same keys.
  const std::int64_t n_keys = state.range(0), hd = 128, stride = 4096;
  const bool adapter = state.range(1) != 0;
  const auto q = check::random_vector(hd, 1), k = check::random_vector(n_keys * stride, 2),
             v = check::random_vector(n_keys * stride, 3);
  std::vector<float> out(hd), scratch(static_cast<std::size_t>(n_keys));
  const float scale = 1.0f / std::sqrt(float(hd));
  for (auto _ : state) {
    if (adapter) {
      if constexpr (kImpl == Impl::simd)
        simd_kernels().adapter_attention_head(out.data(), q.data(), k.data(), v.data(), n_keys, hd, stride, scale, 0.5f,
                                              scratch.data());
      else
        ref::adapter_attention_head(out.data(), q.data(), k.data(), v.data(), n_keys, hd, stride, scale, 0.5f,
                                    scratch.data());
    } else {
      if constexpr (kImpl == Impl::simd)
        simd_kernels().attention_head(out.data(), q.data(), k.data(), v.data(), n_keys, hd, stride, scale,
                                      scratch.data());
      else ref::attention_head(out.data(), q.data(), k.data(), v.data(), n_keys, hd, stride, scale, scratch.data());
    }
    benchmark::DoNotOptimize(out.data());
  }
}

template <Impl kImpl>
void BM_convert_f16(benchmark::State& state) {
  const std::int64_t n = state.range(0);
  const auto h = check::random_weights<f16_t>(n, 1);
  std::vector<float> out(static_cast<std::size_t>(n));
  for (auto _ : state) {
    if constexpr (kImpl == Impl::simd) simd_kernels().convert_f16_to_f32(out.data(), h.data(), n);
    else ref::convert_f16_to_f32(out.data(), h.data(), n);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(state.iterations() * n * 2);
}

#define LAV2_BENCH_BOTH(fn, ...)                  \
  BENCHMARK_TEMPLATE(fn, Impl::ref)->__VA_ARGS__; \
  BENCHMARK_TEMPLATE(fn, Impl::simd)->__VA_ARGS__

LAV2_BENCH_BOTH(BM_rmsnorm, Arg(4096)->Arg(5120));
LAV2_BENCH_BOTH(BM_layernorm, Arg(1024));
LAV2_BENCH_BOTH(BM_swiglu, Arg(11008));
LAV2_BENCH_BOTH(BM_rope, Arg(0));
LAV2_BENCH_BOTH(BM_dot, Arg(4096));
LAV2_BENCH_BOTH(BM_axpy, Arg(4096));
LAV2_BENCH_BOTH(BM_attention, Args({512, 0})->Args({10, 1}));
LAV2_BENCH_BOTH(BM_convert_f16, Arg(4096 * 4096));
BENCHMARK_TEMPLATE(BM_inplace, ref::softmax, &KernelTable::softmax)->Args({4096, 0})->Args({4096, 1});
BENCHMARK_TEMPLATE(BM_inplace, ref::silu, &KernelTable::silu)->Args({11008, 0})->Args({11008, 1});
BENCHMARK_TEMPLATE(BM_inplace, ref::gelu_erf, &KernelTable::gelu_erf)->Args({4096, 0})->Args({4096, 1});
BENCHMARK_TEMPLATE(BM_inplace, ref::quick_gelu, &KernelTable::quick_gelu)->Args({4096, 0})->Args({4096, 1});

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  // The probes, once per thread count, in this process: every ratio below is against them.
  for (int threads : {1, 2}) {
    ThreadPool& pool = pool_of(threads);
    g_stream_gbps[threads] = probes::stream_gbps(pool);
    g_fma_gflops[threads] = probes::fma_peak_gflops(pool);
    std::printf("probe  threads=%d  stream=%.2f GB/s  fma_peak=%.1f GFLOP/s  (kernels %s, %s)\n", threads,
                g_stream_gbps[threads], g_fma_gflops[threads], isa_name(), kernel_arch_name());
    benchmark::AddCustomContext("stream_GBps_" + std::to_string(threads) + "t", std::to_string(g_stream_gbps[threads]));
    benchmark::AddCustomContext("fma_GFLOPs_" + std::to_string(threads) + "t", std::to_string(g_fma_gflops[threads]));
  }
  std::fflush(stdout);
  g_stream_buffer = std::make_unique<probes::StreamBuffer>(pool_of(2), std::size_t(1) << 30);
  register_matmul<float>("f32");
  register_matmul<f16_t>("f16");
  register_matmul<bf16_t>("bf16");
  register_matmul<BlockQ8_0>("q8_0");
  register_matmul<BlockQ4_0>("q4_0");
  register_matmul<BlockQ4_K>("q4_k");
  register_matmul<BlockQ6_K>("q6_k");
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
