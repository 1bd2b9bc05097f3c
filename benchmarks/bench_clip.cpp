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
#include <string>
#include <vector>

#include <lav2/kernels/probes.hpp>
#include <lav2/vision/clip_vit.hpp>
#include <lav2/vision/visual_projector.hpp>

namespace {

using lav2::AnyTensorView;
using lav2::DType;
using lav2::Shape;
using lav2::Tensor;

// Random tensors for a name -> shape table, kept alive for the views in `map`.
struct RandomWeights {
  lav2::io::TensorMap map;
  std::vector<std::shared_ptr<void>> keep;
  std::uint32_t s = 12345;
  float next(float scale) {
    s = s * 1664525u + 1013904223u;
    return scale * (float(s >> 8) / float(1u << 24) - 0.5f);
  }
  template <class T>
  void add(const std::string& name, const Shape& shape, float scale, float offset = 0.0f) {
    auto t = std::make_shared<Tensor<T>>(shape);
    for (std::int64_t i = 0; i < t->numel(); ++i) (*t)[i] = lav2::from_f32<T>(offset + next(scale));
    map.emplace(name, AnyTensorView{lav2::dtype_of_v<T>, t->data(), shape, lav2::contiguous_strides(shape)});
    keep.push_back(t);
  }
};

template <class W>
lav2::vision::ClipVisionModel& clip_model() {
  static std::unique_ptr<lav2::vision::ClipVisionModel> m;
  static RandomWeights r;
  if (!m) {
    const std::int64_t C = 1024, H = 4096, L = 24, T = 257, P = 14, O = 768;
    const float s = 2.0f / 32.0f;  // ~1/sqrt(fan_in) for the matrices
    r.add<W>("visual.conv1.weight", Shape{C, 3, P, P}, s);
    r.add<float>("visual.class_embedding", Shape{C}, 1.0f);
    r.add<float>("visual.positional_embedding", Shape{T, C}, 0.2f);
    r.add<float>("visual.ln_pre.weight", Shape{C}, 0.2f, 1.0f);
    r.add<float>("visual.ln_pre.bias", Shape{C}, 0.2f);
    for (int i = 0; i < L; ++i) {
      const std::string p = "visual.transformer.resblocks." + std::to_string(i) + ".";
      r.add<float>(p + "ln_1.weight", Shape{C}, 0.2f, 1.0f);
      r.add<float>(p + "ln_1.bias", Shape{C}, 0.2f);
      r.add<W>(p + "attn.in_proj_weight", Shape{3 * C, C}, s);
      r.add<float>(p + "attn.in_proj_bias", Shape{3 * C}, 0.2f);
      r.add<W>(p + "attn.out_proj.weight", Shape{C, C}, s);
      r.add<float>(p + "attn.out_proj.bias", Shape{C}, 0.2f);
      r.add<float>(p + "ln_2.weight", Shape{C}, 0.2f, 1.0f);
      r.add<float>(p + "ln_2.bias", Shape{C}, 0.2f);
      r.add<W>(p + "mlp.c_fc.weight", Shape{H, C}, s);
      r.add<float>(p + "mlp.c_fc.bias", Shape{H}, 0.2f);
      r.add<W>(p + "mlp.c_proj.weight", Shape{C, H}, s / 2);
      r.add<float>(p + "mlp.c_proj.bias", Shape{C}, 0.2f);
    }
    r.add<float>("visual.ln_post.weight", Shape{C}, 0.2f, 1.0f);
    r.add<float>("visual.ln_post.bias", Shape{C}, 0.2f);
    r.add<W>("visual.proj", Shape{C, O}, s);
    m = std::make_unique<lav2::vision::ClipVisionModel>(lav2::vision::ClipVisionModel::from_tensors(r.map, "random ViT-L/14"));
  }
  return *m;
}

lav2::vision::VisualProjector& projector() {
  static std::unique_ptr<lav2::vision::VisualProjector> p;
  static RandomWeights r;
  if (!p) {
    const std::int64_t W = 768, H = 3072, D = 4096;
    const float s = 2.0f / 28.0f;
    r.add<float>("clip_proj.weight", Shape{W, 768}, s);
    r.add<float>("clip_proj.bias", Shape{W}, 0.2f);
    r.add<float>("clip_proj_norm.weight", Shape{W}, 0.2f, 1.0f);
    r.add<float>("clip_proj_norm.bias", Shape{W}, 0.2f);
    r.add<float>("visual_query.weight", Shape{10, W}, 1.0f);
    for (int i = 0; i < 8; ++i) {
      const std::string q = "visual_blocks." + std::to_string(i) + ".";
      r.add<float>(q + "norm1.weight", Shape{W}, 0.2f, 1.0f);
      r.add<float>(q + "norm1.bias", Shape{W}, 0.2f);
      r.add<float>(q + "attn.qkv.weight", Shape{3 * W, W}, s);
      r.add<float>(q + "attn.qkv.bias", Shape{3 * W}, 0.2f);
      r.add<float>(q + "attn.proj.weight", Shape{W, W}, s);
      r.add<float>(q + "attn.proj.bias", Shape{W}, 0.2f);
      r.add<float>(q + "norm2.weight", Shape{W}, 0.2f, 1.0f);
      r.add<float>(q + "norm2.bias", Shape{W}, 0.2f);
      r.add<float>(q + "mlp.fc1.weight", Shape{H, W}, s);
      r.add<float>(q + "mlp.fc1.bias", Shape{H}, 0.2f);
      r.add<float>(q + "mlp.fc2.weight", Shape{W, H}, s / 2);
      r.add<float>(q + "mlp.fc2.bias", Shape{W}, 0.2f);
    }
    r.add<float>("visual_proj.weight", Shape{D, W}, s);
    r.add<float>("visual_proj.bias", Shape{D}, 0.2f);
    r.add<float>("visual_proj_norm.weight", Shape{D}, 0.2f, 1.0f);
    r.add<float>("visual_proj_norm.bias", Shape{D}, 0.2f);
    p = std::make_unique<lav2::vision::VisualProjector>(lav2::vision::VisualProjector::from_tensors(r.map, "random projector"));
  }
  return *p;
}

// GEMM + attention flops of the projector as encode() runs it (the last block on Q rows only).
double projector_flops(const lav2::vision::VisualProjectorConfig& c, double T) {
  const double Q = c.n_queries, N = Q + T, W = c.width, H = c.hidden_dim;
  double f = 2 * T * c.clip_dim * W;
  for (int b = 0; b < c.n_blocks; ++b) {
    const double R = b + 1 == c.n_blocks ? Q : N;
    f += 2 * N * 3 * W * W + 2 * 2 * R * N * W + 2 * R * (W * W + 2 * W * H);
  }
  return f + 2 * Q * W * c.dim;
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
  const double flops = projector_flops(p.config(), 257);
  st.counters["GFLOPs"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  st.counters["fma_peak_GFLOPs"] = peak;
  st.counters["fma_frac"] = benchmark::Counter(flops * 1e-9 / peak, benchmark::Counter::kIsIterationInvariantRate);
}

}  // namespace

BENCHMARK_TEMPLATE(BM_clip_tower, lav2::f16_t)->Name("clip_vit_l14/f16")->Arg(1)->Arg(2)->Unit(benchmark::kSecond)->UseRealTime()->MinTime(5);
BENCHMARK_TEMPLATE(BM_clip_tower, float)->Name("clip_vit_l14/f32")->Arg(1)->Arg(2)->Unit(benchmark::kSecond)->UseRealTime()->MinTime(5);
BENCHMARK(BM_projector)->Name("visual_projector/f32")->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2);

BENCHMARK_MAIN();
