// vision::VisualEncoder (CLIP tower + projector) against the float64 PyTorch reference of
// tests/data/tiny_clip/golden (see test_clip.cpp for the fixture's dims): every entry point gives
// the query of the steps it chains, the tower is shared, and a width mismatch fails at load.
#include <doctest/doctest.h>

#include <memory>
#include <string>

#include "lav2/io/torch_checkpoint.hpp"
#include "lav2/vision/random_visual.hpp"
#include "lav2/vision/visual_encoder.hpp"
#include "vision/tiny_clip_data.hpp"

using lav2::Tensor;
using lav2::ThreadPool;
using lav2::vision::ClipVisionModel;
using lav2::vision::VisualEncoder;

using namespace lav2::test;  // data_path, clip_golden, values_diff, max_abs_diff

namespace {
struct Fixture {
  std::shared_ptr<const ClipVisionModel> clip =
      std::make_shared<const ClipVisionModel>(ClipVisionModel::load(data_path("tiny_clip/ViT-tiny.pt")));
  lav2::io::TorchCheckpoint adapter{data_path("tiny_adapter/visual_only.pth")};
  VisualEncoder encoder =
      VisualEncoder::from_adapter(clip, adapter.tensors("model"), adapter.path(), 16, adapter.keep_alive());
};
}  // namespace

TEST_CASE("VisualEncoder: image, file and zero image match the reference; steps are the parts") {
  const Fixture f;
  const VisualEncoder& e = f.encoder;
  ThreadPool pool(2);
  CHECK(e.n_queries() == 10);
  CHECK(e.dim() == 64);

  const Tensor<float> image = clip_golden("image_preprocessed.npy");
  const Tensor<float> query = e.encode(pool, image);
  CHECK(query.shape() == lav2::Shape{10, 64});
  CHECK(values_diff(query, clip_golden("visual_query_image.npy")) <= 1e-4);
  CHECK(values_diff(e.encode_zero_image(pool), clip_golden("visual_query_zero.npy")) <= 1e-4);
  // lav2's preprocessing reproduces the golden input exactly, so the file gives the same bits.
  const Tensor<float> from_file = e.encode_file(pool, data_path("images/resize/021_449x300_mixed.png"));
  CHECK(lav2::test::max_abs_diff(from_file, query) == 0.0);

  const lav2::vision::VisualEncoding steps =
      e.encode_steps(pool, e.preprocess_file(data_path("images/resize/021_449x300_mixed.png")));
  CHECK(values_diff(steps.image, image) == 0.0);
  CHECK(values_diff(steps.features, clip_golden("clip_features_image.npy")) <= 1e-4);
  CHECK(lav2::test::max_abs_diff(steps.query, query) == 0.0);
  CHECK(lav2::test::max_abs_diff(e.project(pool, steps.features), query) == 0.0);
  const lav2::vision::VisualEncoding zero = e.encode_steps(pool, e.zero_image());
  CHECK(values_diff(zero.features, clip_golden("clip_features_zero.npy")) <= 1e-4);

  // No state between calls: the same input gives the same bits on any pool.
  ThreadPool one(1);
  CHECK(lav2::test::max_abs_diff(e.encode(one, image), query) == 0.0);
}

TEST_CASE("VisualEncoder: one tower serves several encoders") {
  const Fixture f;
  const VisualEncoder second = VisualEncoder::from_adapter(f.clip, f.adapter.tensors("model"), f.adapter.path());
  CHECK(&second.clip() == f.clip.get());
  CHECK(&f.encoder.clip() == f.clip.get());
  ThreadPool pool(2);
  CHECK(lav2::test::max_abs_diff(second.encode_zero_image(pool), f.encoder.encode_zero_image(pool)) == 0.0);
}

TEST_CASE("VisualEncoder: errors name what does not fit") {
  const Fixture f;
  ThreadPool pool(1);
  lav2::vision::VisualProjectorConfig pc = lav2::vision::projector_tiny_config(64);
  pc.clip_dim = 48;  // the tower gives 32
  CHECK_THROWS_WITH_AS(VisualEncoder(f.clip, lav2::vision::random_visual_projector(pc, pool)),
                       doctest::Contains("takes CLIP features of width 48, but the CLIP tower gives 32"),
                       lav2::load_error);
  CHECK_THROWS_WITH_AS(VisualEncoder(nullptr, lav2::vision::random_visual_projector(pc, pool)),
                       doctest::Contains("no CLIP tower"), lav2::input_error);
  CHECK_THROWS_WITH_AS(f.encoder.encode_file(pool, data_path("no_such.png")), doctest::Contains("no_such.png"),
                       lav2::error);
  CHECK_THROWS_AS(f.encoder.encode(pool, Tensor<float>(lav2::Shape{3, 223, 224})), lav2::input_error);
}
