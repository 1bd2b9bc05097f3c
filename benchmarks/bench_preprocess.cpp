// Image decode + CLIP preprocessing of a 1024x768 image (the typical photo-to-224 downscale).
// The input is encoded in memory once (stb_image_write, this TU only), so the numbers exclude disk.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include <lav2/vision/image.hpp>
#include <lav2/vision/image_preprocess.hpp>

#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#endif
#if __has_include(<stb/stb_image_write.h>)
#include <stb/stb_image_write.h>
#else
#include <stb_image_write.h>
#endif
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

namespace {

constexpr int kW = 1024, kH = 768;

lav2::vision::Image synthetic() {
  lav2::vision::Image img(kW, kH, lav2::vision::ChannelOrder::rgb);
  std::uint32_t s = 1;
  for (int y = 0; y < kH; ++y)
    for (int x = 0; x < kW; ++x) {
      s = s * 1664525u + 1013904223u;
      const int noise = int(s >> 28) - 8;
      img.at(x, y, 0) = std::uint8_t(std::clamp(x / 4 + noise, 0, 255));
      img.at(x, y, 1) = std::uint8_t(std::clamp(y / 3 + noise, 0, 255));
      img.at(x, y, 2) = std::uint8_t(std::clamp(int(128 + 100 * std::sin(x * 0.02 + y * 0.03)) + noise, 0, 255));
    }
  return img;
}

std::vector<std::uint8_t> encode(bool jpeg) {
  const lav2::vision::Image img = synthetic();
  std::vector<std::uint8_t> out;
  auto sink = [](void* ctx, void* data, int size) {
    auto* v = static_cast<std::vector<std::uint8_t>*>(ctx);
    v->insert(v->end(), static_cast<std::uint8_t*>(data), static_cast<std::uint8_t*>(data) + size);
  };
  if (jpeg) stbi_write_jpg_to_func(sink, &out, kW, kH, 3, img.pixels.data(), 90);
  else stbi_write_png_to_func(sink, &out, kW, kH, 3, img.pixels.data(), kW * 3);
  return out;
}

void BM_decode(benchmark::State& st, bool jpeg) {
  const std::vector<std::uint8_t> bytes = encode(jpeg);
  for (auto _ : st) benchmark::DoNotOptimize(lav2::vision::decode_image(bytes.data(), bytes.size(), "bench"));
  st.counters["bytes"] = double(bytes.size());
}

void BM_decode_preprocess(benchmark::State& st, bool jpeg) {
  const std::vector<std::uint8_t> bytes = encode(jpeg);
  for (auto _ : st) {
    const lav2::vision::Image img = lav2::vision::decode_image(bytes.data(), bytes.size(), "bench");
    benchmark::DoNotOptimize(lav2::vision::preprocess_clip(img));
  }
}

void BM_preprocess_only(benchmark::State& st) {
  const lav2::vision::Image img = synthetic();
  for (auto _ : st) benchmark::DoNotOptimize(lav2::vision::preprocess_clip(img));
}

void BM_resize_only(benchmark::State& st) {
  const lav2::vision::Image img = synthetic();
  const auto wh = lav2::vision::clip_resize_size(kW, kH);
  for (auto _ : st) benchmark::DoNotOptimize(lav2::vision::resize_bicubic_pillow(img, wh[0], wh[1]));
}

}  // namespace

BENCHMARK_CAPTURE(BM_decode, jpeg_1024x768, true)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_decode, png_1024x768, false)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_decode_preprocess, jpeg_1024x768, true)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_decode_preprocess, png_1024x768, false)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_preprocess_only)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_resize_only)->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
