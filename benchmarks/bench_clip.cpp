// The visual branch at full size: CLIP ViT-L/14 (width 1024, 24 resblocks, 16 heads, patch 14,
// 224 px -> 257 tokens, out 768) and the adapter projector (768 wide, 8 blocks, 16 heads, mlp 3072,
// Q = 10, LLaMA dim 4096), random weights, one 224x224 image.
// Reports seconds per image (the benchmark time), GFLOP/s and `fma_frac` = GFLOP/s / the FMA-peak
// probe (kernels/probes.hpp) of the same thread count, measured in this process at start-up.
// Tower weights f16 (OpenAI's archive dtype, widened in the GEMM) or f32.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <map>
#include <memory>

#include <lav2/kernels/probes.hpp>
#include <lav2/vision/random_visual.hpp>

namespace {

using lav2::Shape;
using lav2::Tensor;

// Built once, filled in parallel; the same weights for every benchmark of a dtype.
template <class W>
lav2::vision::ClipVisionModel& clip_model() {
  static std::unique_ptr<lav2::vision::ClipVisionModel> m;
  if (!m) {
    lav2::ThreadPool pool(0);
    m = std::make_unique<lav2::vision::ClipVisionModel>(
        lav2::vision::random_clip_vision(lav2::vision::clip_vit_l14_config(), lav2::dtype_of_v<W>, pool));
  }
  return *m;
}

lav2::vision::VisualProjector& projector() {
  static std::unique_ptr<lav2::vision::VisualProjector> p;
  if (!p) {
    lav2::ThreadPool pool(0);
    p = std::make_unique<lav2::vision::VisualProjector>(
        lav2::vision::random_visual_projector(lav2::vision::projector_7b_config(), pool));
  }
  return *p;
}

double fma_peak(lav2::ThreadPool& pool) {
  static std::map<int, double> peak;
  auto it = peak.find(pool.size());
  if (it == peak.end()) it = peak.emplace(pool.size(), lav2::kernels::probes::fma_peak_gflops(pool)).first;
  return it->second;
}

Tensor<float> test_image() {
  Tensor<float> x(Shape{3, 224, 224});
  std::uint32_t s = 7;
  for (auto& v : x) {
    s = s * 1664525u + 1013904223u;
    v = 4.0f * (float(s >> 8) / float(1u << 24) - 0.5f);
  }
  return x;
}

template <class W>
void BM_clip_tower(benchmark::State& st) {
  lav2::ThreadPool pool(int(st.range(0)));
  const double peak = fma_peak(pool);
  const auto& m = clip_model<W>();
  const Tensor<float> x = test_image();
  for (auto _ : st) benchmark::DoNotOptimize(m.encode(pool, x).data());
  const double flops = m.config().flops_per_image();
  st.counters["GFLOPs"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  st.counters["fma_peak_GFLOPs"] = peak;
  st.counters["fma_frac"] = benchmark::Counter(flops * 1e-9 / peak, benchmark::Counter::kIsIterationInvariantRate);
}

void BM_projector(benchmark::State& st) {
  lav2::ThreadPool pool(int(st.range(0)));
  const double peak = fma_peak(pool);
  const auto& p = projector();
  Tensor<float> f(Shape{257, 768});
  for (std::int64_t i = 0; i < f.numel(); ++i) f[i] = float((i * 7919) % 1000) / 500.0f - 1.0f;
  for (auto _ : st) benchmark::DoNotOptimize(p.encode(pool, f).data());
  const double flops = p.config().flops(257);
  st.counters["GFLOPs"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  st.counters["fma_peak_GFLOPs"] = peak;
  st.counters["fma_frac"] = benchmark::Counter(flops * 1e-9 / peak, benchmark::Counter::kIsIterationInvariantRate);
}

}  // namespace

BENCHMARK_TEMPLATE(BM_clip_tower, lav2::f16_t)
    ->Name("clip_vit_l14/f16")
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kSecond)
    ->UseRealTime()
    ->MinTime(5);
BENCHMARK_TEMPLATE(BM_clip_tower, float)
    ->Name("clip_vit_l14/f32")
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kSecond)
    ->UseRealTime()
    ->MinTime(5);
BENCHMARK(BM_projector)
    ->Name("visual_projector/f32")
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(2);

BENCHMARK_MAIN();
