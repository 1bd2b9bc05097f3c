// The random visual branch behind `lav2 bench --image` and bench_clip: built from the loaders'
// own tensor tables, so it binds; deterministic; finite outputs of the configured shapes.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>

#include "lav2/vision/random_visual.hpp"

using lav2::Shape;
using lav2::Tensor;
using lav2::ThreadPool;

namespace {
bool all_finite(const Tensor<float>& t) {
  for (std::int64_t i = 0; i < t.numel(); ++i)
    if (!std::isfinite(t[i])) return false;
  return true;
}
}  // namespace

TEST_CASE("random CLIP tower and projector: configured dims, finite and reproducible outputs") {
  ThreadPool pool(2);
  const auto tc = lav2::vision::clip_tiny_config();
  const auto tower = lav2::vision::random_clip_vision(tc, lav2::DType::f16, pool);
  CHECK(tower.weight_dtype() == lav2::DType::f16);
  CHECK(tower.config().width == 64);
  CHECK(tower.config().n_layers == 2);
  CHECK(tower.config().out_dim == 32);
  const lav2::vision::VisualProjectorConfig pc = lav2::vision::projector_tiny_config(48);
  const auto projector = lav2::vision::random_visual_projector(pc, pool);
  CHECK(projector.config().n_blocks == 2);
  CHECK(projector.config().n_queries == 10);

  Tensor<float> image(Shape{3, 224, 224});
  for (std::int64_t i = 0; i < image.numel(); ++i) image[i] = float(i % 97) / 48.0f - 1.0f;
  const Tensor<float> features = tower.encode(pool, image);
  CHECK(features.shape() == Shape{257, 32});
  CHECK(all_finite(features));
  const Tensor<float> query = projector.encode(pool, features);
  CHECK(query.shape() == Shape{10, 48});
  CHECK(all_finite(query));

  // The same seed gives the same weights, another seed others.
  ThreadPool one(1);
  const auto again = lav2::vision::random_clip_vision(tc, lav2::DType::f16, one);
  const Tensor<float> features_again = again.encode(pool, image);
  CHECK(std::memcmp(features.data(), features_again.data(), sizeof(float) * std::size_t(features.numel())) == 0);
  const auto other = lav2::vision::random_clip_vision(tc, lav2::DType::f16, pool, /*seed=*/7);
  const Tensor<float> features_other = other.encode(pool, image);
  CHECK(std::memcmp(features.data(), features_other.data(), sizeof(float) * std::size_t(features.numel())) != 0);
}
