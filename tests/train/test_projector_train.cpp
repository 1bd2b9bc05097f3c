// The visual projector's training forward and backward against PyTorch autograd
// (tools/reference/make_projector_train_fixture.py: clip_ref.forward_visual in f32) on
// tests/data/tiny_adapter/visual_only.pth with two images' CLIP features: the visual query, and
// the gradient of every projector tensor within max|g - ref| <= 1e-4 max|ref|; 1 and 2 threads
// give the same bits.
#include <doctest/doctest.h>

#include <cstring>

#include <lav2/io/npy.hpp>
#include <lav2/io/torch_checkpoint.hpp>
#include <lav2/train/projector_train.hpp>

#include "train/grad_check.hpp"

using namespace lav2;
using namespace lav2::train;

namespace {
const std::string kData = LAV2_TEST_DATA_DIR;

Tensor<float> features() {  // (2, 257, 32): the image's and the zero image's CLIP features
  const auto a = io::read_npy_as<float>(kData + "/tiny_clip/golden/clip_features_image.npy");
  const auto b = io::read_npy_as<float>(kData + "/tiny_clip/golden/clip_features_zero.npy");
  Tensor<float> f(Shape{2, a.dim(1), a.dim(2)});
  std::copy(a.begin(), a.end(), f.data());
  std::copy(b.begin(), b.end(), f.data() + a.numel());
  return f;
}
}  // namespace

TEST_CASE("projector training: the visual query and every tensor's gradient match PyTorch autograd") {
  io::TorchCheckpoint ck(kData + "/tiny_adapter/visual_only.pth");
  const Tensor<float> feats = features();
  const std::string dir = kData + "/train/projector/";
  const Tensor<float> c = io::read_npy_as<float>(dir + "cotangent.npy"),
                      want_vq = io::read_npy_as<float>(dir + "vq.npy");
  std::vector<std::vector<float>> first;
  for (int threads : {1, 2}) {
    INFO(threads, " threads");
    ProjectorTrainModel pm(ck.tensors("model"), ck.path(), 16);
    CHECK(pm.params().size() == 33);
    ThreadPool pool(threads);
    Tensor<float> vq(want_vq.shape());
    pm.forward(pool, feats.data(), 2, feats.dim(1), vq.data());
    CHECK(lav2::test::max_abs_diff(vq, want_vq) <= 1e-4);
    pm.backward(pool, c.data());
    for (const TrainableTensor& t : pm.params()) {
      const Tensor<float> want = io::read_npy_as<float>(dir + "grad_" + t.spec.name + ".npy");
      REQUIRE(want.numel() == t.grad.numel());
      const double diff = lav2::test::max_abs_diff(t.grad, want),
                   scale = lav2::test::max_abs(want.data(), want.numel());
      INFO(t.spec.name, ": max|g - ref| = ", diff, ", max|ref| = ", scale, ", ratio ", diff / scale);
      CHECK(diff <= 1e-4 * scale);
    }
    if (first.empty()) {
      for (const auto& t : pm.params()) first.emplace_back(t.grad.begin(), t.grad.end());
    } else {
      for (std::size_t i = 0; i < first.size(); ++i)
        CHECK(std::memcmp(first[i].data(), pm.params()[i].grad.data(), first[i].size() * sizeof(float)) == 0);
    }
  }
}
