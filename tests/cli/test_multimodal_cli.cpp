// `lav2 generate --adapter --clip [--image]` end to end against the PyTorch reference: image
// preprocessing, CLIP features and the visual query <= 1e-4 abs, logits <= 5e-4 abs and identical
// greedy ids, for BIAS and LORA-BIAS, with an image and without (the all-zero image).
#include <doctest/doctest.h>

#include <sys/wait.h>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>

#include <lav2/io/npy.hpp>

#include "cli/cli_runner.hpp"
#include "common/compare.hpp"

namespace fs = std::filesystem;

namespace {
const std::string kData = LAV2_TEST_DATA_DIR;

using Result = lav2::test::CliResult;
Result run(const std::string& args) { return lav2::test::run_cli(args); }

double max_diff(const std::string& a, const std::string& b) {
  const auto x = lav2::io::read_npy_as<float>(a), y = lav2::io::read_npy_as<float>(b);
  REQUIRE(x.numel() == y.numel());                                 // the dumps carry a leading batch dim of 1
  return lav2::test::max_abs_diff(x.data(), y.data(), x.numel());  // NaN on any non-finite value
}

const std::string kBase = "generate --llama-dir '" + kData +
                          "/tiny_llama/tiny' --prompt 'What is in the image?' "
                          "--temperature 0 --max-new-tokens 12 ";
const std::string kClip = "--clip '" + kData + "/tiny_clip/ViT-tiny.pt' ";
const std::string kImage = "--image '" + kData + "/images/resize/021_449x300_mixed.png' ";
}  // namespace

TEST_CASE("generate with an adapter, CLIP and an image matches the reference end to end") {
  for (const std::string variant : {"bias", "lora_bias"}) {
    for (const std::string kase : {"image", "zero"}) {
      CAPTURE(variant);
      CAPTURE(kase);
      const fs::path dump = fs::temp_directory_path() / ("lav2_mm_" + variant + "_" + kase);
      fs::remove_all(dump);
      const std::string adapter = "--adapter '" + kData + "/tiny_adapter/full_" + variant + "/adapter.pth' ";
      const Result r =
          run(kBase + adapter + kClip + (kase == "image" ? kImage : "") + "--dump '" + dump.string() + "'");
      REQUIRE(r.code == 0);
      const std::string clip = kData + "/tiny_clip/golden/";
      const std::string golden = kData + "/tiny_adapter/full_" + variant + "/golden/" + kase + "/";
      if (kase == "image")
        CHECK(max_diff((dump / "image_preprocessed.npy").string(), clip + "image_preprocessed.npy") == 0.0f);
      CHECK(max_diff((dump / "clip_features.npy").string(), clip + "clip_features_" + kase + ".npy") <= 1e-4f);
      CHECK(max_diff((dump / "visual_query.npy").string(), clip + "visual_query_" + kase + ".npy") <= 1e-4f);
      CHECK(max_diff((dump / "step_logits.npy").string(), golden + "step_logits.npy") <= 5e-4f);
      const auto got = lav2::io::read_npy_as<std::int64_t>((dump / "generated_ids.npy").string());
      const auto want = lav2::io::read_npy_as<std::int64_t>(golden + "generated_ids.npy");
      REQUIRE(got.numel() == want.numel());
      for (std::int64_t i = 0; i < got.numel(); ++i) CHECK(got[i] == want[i]);
      fs::remove_all(dump);
    }
  }
}

TEST_CASE("multimodal flag errors exit 2 and say why") {
  const std::string adapter = "--adapter '" + kData + "/tiny_adapter/full_bias/adapter.pth' ";
  Result r = run(kBase + adapter);
  CHECK(r.code == 2);
  CHECK(r.out.find("--adapter needs --clip") != std::string::npos);
  r = run(kBase + kImage);
  CHECK(r.code == 2);
  CHECK(r.out.find("--clip and --image need --adapter") != std::string::npos);
  r = run(kBase + "--adapter '" + kData + "/tiny_adapter/v1/adapter.pth' " + kImage);
  CHECK(r.code == 2);
  CHECK(r.out.find("has no visual branch") != std::string::npos);
  r = run(kBase + adapter + kClip + "--visual-heads 5");
  CHECK(r.code == 2);
  CHECK(r.out.find("lav2: error:") != std::string::npos);
  r = run(kBase + adapter + kClip + "--channel-order grb");
  CHECK(r.code == 2);
  r = run(kBase + adapter + kClip + "--image '" + kData + "/no_such.png'");
  CHECK(r.code == 2);
  CHECK(r.out.find("no_such.png") != std::string::npos);
  // The adapter without visual modules cannot make a visual query.
  r = run(kBase + "--adapter '" + kData + "/tiny_adapter/bias/adapter.pth' " + kClip);
  CHECK(r.code == 2);
  CHECK(r.out.find("bias/adapter.pth") != std::string::npos);
}
