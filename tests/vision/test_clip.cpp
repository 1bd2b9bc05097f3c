// CLIP vision tower and visual projector vs the float64 PyTorch reference (tools/reference/
// clip_ref.py, fixtures by make_clip_fixture.py): a tiny CLIP in OpenAI's layout (width 128,
// 2 heads, 2 resblocks, 224 px / patch 14 = 257 tokens, out dim 32) and adapter visual modules
// (width 32, 16 heads, 2 blocks, Q = 10, dim 64).
#include <doctest/doctest.h>

#include <memory>
#include <string>

#include "lav2/io/npy.hpp"
#include "lav2/io/torch_checkpoint.hpp"
#include "lav2/io/weight_bind.hpp"
#include "lav2/vision/clip_vit.hpp"
#include "lav2/vision/image.hpp"
#include "lav2/vision/image_preprocess.hpp"
#include "lav2/vision/visual_projector.hpp"
#include "vision/tiny_clip_data.hpp"

using lav2::Shape;
using lav2::Tensor;
using lav2::ThreadPool;
using lav2::vision::ClipVisionModel;
using lav2::vision::VisualProjector;

using lav2::test::clip_golden;
using lav2::test::data_path;
using lav2::test::values_diff;

TEST_CASE("CLIP: dims inferred from the TorchScript archive") {
  const ClipVisionModel m = ClipVisionModel::load(data_path("tiny_clip/ViT-tiny.pt"));
  const auto& c = m.config();
  CHECK(c.width == 128);
  CHECK(c.n_heads == 2);
  CHECK(c.n_layers == 2);
  CHECK(c.hidden_dim == 64);
  CHECK(c.patch == 14);
  CHECK(c.grid == 16);
  CHECK(c.n_tokens() == 257);
  CHECK(c.out_dim == 32);
  CHECK(m.weight_dtype() == lav2::DType::f16);
  CHECK(m.key_prefix() == "visual.");
}

TEST_CASE("CLIP + projector vs the reference, real and all-zero images; TorchScript == state_dict") {
  ThreadPool pool(2);
  const ClipVisionModel ts = ClipVisionModel::load(data_path("tiny_clip/ViT-tiny.pt"));
  const ClipVisionModel sd = ClipVisionModel::load(data_path("tiny_clip/state_dict.pth"));
  lav2::io::TorchCheckpoint ck(data_path("tiny_adapter/visual_only.pth"));
  const VisualProjector proj = VisualProjector::from_tensors(ck.tensors("model"), ck.path());
  CHECK(proj.config().n_queries == 10);
  CHECK(proj.config().n_blocks == 2);
  CHECK(proj.config().dim == 64);
  CHECK(proj.config().n_heads == 16);

  // The real image: lav2's preprocessing reproduces the golden input exactly.
  const Tensor<float> img = clip_golden("image_preprocessed.npy");
  const Tensor<float> mine =
      lav2::vision::preprocess_clip(lav2::vision::load_image(data_path("images/resize/021_449x300_mixed.png")));
  CHECK(values_diff(mine, img) == 0.0);

  for (const char* which : {"image", "zero"}) {
    CAPTURE(which);
    const Tensor<float> x =
        std::string(which) == "image" ? clip_golden("image_preprocessed.npy") : lav2::vision::zero_image();
    const Tensor<float> f_ts = ts.encode(pool, x);
    const Tensor<float> f_sd = sd.encode(pool, x);
    CHECK(f_ts.shape() == Shape{257, 32});
    CHECK(values_diff(f_ts, f_sd) == 0.0);
    const double df = values_diff(f_ts, clip_golden(std::string("clip_features_") + which + ".npy"));
    MESSAGE("clip_features_", std::string(which), " max |diff| = ", df);
    CHECK(df <= 1e-4);
    const Tensor<float> vq = proj.encode(pool, f_ts);
    CHECK(vq.shape() == Shape{10, 64});
    const double dq = values_diff(vq, clip_golden(std::string("visual_query_") + which + ".npy"));
    MESSAGE("visual_query_", std::string(which), " max |diff| = ", dq);
    CHECK(dq <= 1e-4);
  }
}

TEST_CASE("CLIP: f32 weights give the same features as the f16 weights they widen; thread count is irrelevant") {
  lav2::io::TorchCheckpoint ck(data_path("tiny_clip/state_dict.pth"));
  const auto t16 = ck.tensors();
  std::vector<std::shared_ptr<Tensor<float>>> keep;
  lav2::io::TensorMap t32;
  for (const auto& kv : t16) {
    keep.push_back(std::make_shared<Tensor<float>>(kv.second.shape));
    lav2::io::detail::walk_c_order(kv.second, [&](std::int64_t i, float v) { (*keep.back())[i] = v; });
    t32.emplace(kv.first, lav2::AnyTensorView{lav2::DType::f32, keep.back()->data(), kv.second.shape,
                                              lav2::contiguous_strides(kv.second.shape)});
  }
  const ClipVisionModel m16 = ClipVisionModel::from_tensors(t16, "sd16", ck.keep_alive());
  const ClipVisionModel m32 = ClipVisionModel::from_tensors(t32, "sd32");
  CHECK(m32.weight_dtype() == lav2::DType::f32);
  ThreadPool p1(1), p2(2);
  const Tensor<float> x = clip_golden("image_preprocessed.npy");
  const Tensor<float> a = m16.encode(p2, x);
  CHECK(values_diff(a, m32.encode(p2, x)) == 0.0);
  CHECK(values_diff(a, m16.encode(p1, x)) == 0.0);
}

TEST_CASE("CLIP and projector: errors name the file, tensor, expected and actual") {
  lav2::io::TorchCheckpoint ck(data_path("tiny_adapter/visual_only.pth"));
  auto model = ck.tensors("model");
  CHECK_THROWS_WITH_AS(VisualProjector::from_tensors(model, "a.pth", 5),
                       doctest::Contains("visual_heads 5 does not divide"), lav2::input_error);
  auto bad = model;
  bad.erase("visual_blocks.1.mlp.fc2.bias");
  CHECK_THROWS_WITH_AS(VisualProjector::from_tensors(bad, "a.pth"),
                       doctest::Contains("checkpoint 'a.pth': tensor 'visual_blocks.1.mlp.fc2.bias' is missing"),
                       lav2::load_error);
  bad = model;
  bad["visual_proj.bias"].shape = Shape{63};
  CHECK_THROWS_WITH_AS(VisualProjector::from_tensors(bad, "a.pth"),
                       doctest::Contains("tensor 'visual_proj.bias' has shape (63,), expected (64,)"),
                       lav2::load_error);

  lav2::io::TorchCheckpoint sd(data_path("tiny_clip/state_dict.pth"));
  auto t = sd.tensors();
  t["visual.transformer.resblocks.1.mlp.c_proj.weight"].shape = Shape{128, 65};
  CHECK_THROWS_WITH_AS(
      ClipVisionModel::from_tensors(t, "c.pth"),
      doctest::Contains(
          "tensor 'visual.transformer.resblocks.1.mlp.c_proj.weight' has shape (128, 65), expected (128, 64)"),
      lav2::load_error);
  t = sd.tensors();
  t["visual.positional_embedding"].shape = Shape{250, 128};
  CHECK_THROWS_WITH_AS(ClipVisionModel::from_tensors(t, "c.pth"),
                       doctest::Contains("'visual.positional_embedding' has shape (250, 128)"), lav2::load_error);
  CHECK_THROWS_WITH_AS(ClipVisionModel::load(data_path("tiny_adapter/visual_only.pth")),
                       doctest::Contains("no CLIP vision tower"), lav2::load_error);
  const ClipVisionModel m = ClipVisionModel::from_tensors(sd.tensors(), "c.pth", sd.keep_alive());
  ThreadPool pool(1);
  CHECK_THROWS_AS(m.encode(pool, Tensor<float>(Shape{3, 223, 224})), lav2::input_error);
}
