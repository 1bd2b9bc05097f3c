// `lav2 train` (CONTRACT.md): --dump-grads writes the first step's loss and gradients, which match
// PyTorch autograd (tools/reference/make_train_cli_fixture.py, tests/data/train/cli) within
// max|g - ref| <= 1e-4 max|ref| in finetune, pretrain (where stderr names the LLaMA biases not
// loaded), joint (an image-text batch) and finetune with --train-lora; --out receives
// checkpoint.pth (loads back into lav2), optimizer.pth and loss.png; a second run on the same
// --out resumes at the saved step; 1 and 2 threads write the same bytes.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include <lav2/io/npy.hpp>
#include <lav2/io/torch_checkpoint.hpp>
#include <lav2/model/model_loader.hpp>
#include <lav2/vision/image.hpp>

#include "cli/cli_runner.hpp"
#include "common/compare.hpp"

namespace fs = std::filesystem;
using lav2::test::shell_quote;

namespace {

const std::string kData = LAV2_TEST_DATA_DIR;

std::string train_args(const std::string& phase, const fs::path& out, int steps,
                       const std::string& variant = "full_bias") {
  return "train --llama-dir " + shell_quote(kData + "/tiny_llama/tiny") + " --adapter " +
         shell_quote(kData + "/tiny_adapter/" + variant + "/adapter.pth") + " --clip " +
         shell_quote(kData + "/tiny_clip/ViT-tiny.pt") + " --phase " + phase + " --data " +
         shell_quote(kData + "/train/cli/data.json") + " --batch 2 --max-words 192 --threads 2 --steps " +
         std::to_string(steps) + " --out " + shell_quote(out.string());
}

fs::path fresh(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / ("lav2_test_train_cli_" + name);
  fs::remove_all(d);
  return d;
}

double json_loss(const fs::path& p) {
  std::ifstream f(p);
  return nlohmann::json::parse(f)["loss"].get<double>();
}

}  // namespace

TEST_CASE("lav2 train --dump-grads matches PyTorch autograd: finetune, pretrain, joint, --train-lora") {
  struct Case {
    std::string name, phase, variant, extra;
    std::size_t gradients;
  };
  const std::string captions = " --captions " + shell_quote(kData + "/train/cli/captions.tsv");
  // joint: the first step is an image-text batch (the captions' image through lav2's reader,
  // preprocessing and CLIP); both groups get gradients, only the visual group is updated.
  const Case cases[] = {{"finetune", "finetune", "full_bias", "", 22},
                        {"pretrain", "pretrain", "full_bias", "", 36},
                        {"joint", "joint", "full_bias", captions, 58},
                        {"finetune_lora", "finetune", "full_lora_bias", " --train-lora", 64}};
  for (const Case& c : cases) {
    CAPTURE(c.name);
    const std::string phase = c.phase;
    const fs::path out = fresh(c.name), grads = fresh(c.name + "_grads");
    const lav2::test::CliResult r = lav2::test::run_cli(train_args(phase, out, 1, c.variant) + c.extra +
                                                        " --dump-grads " + shell_quote(grads.string()));
    INFO(r.out);
    REQUIRE(r.code == 0);
    CHECK((r.out.find("has no LLaMA biases; 15 tensors") != std::string::npos) == (phase == "pretrain"));
    const fs::path ref = kData + "/train/cli/" + c.name;
    CHECK(json_loss(grads / "loss.json") == doctest::Approx(json_loss(ref / "loss.json")).epsilon(1e-5));
    std::size_t compared = 0;
    for (const auto& e : fs::directory_iterator(ref)) {
      if (e.path().extension() != ".npy") continue;
      const std::string name = e.path().filename().string();
      INFO(name);
      REQUIRE(fs::exists(grads / name));
      const auto want = lav2::io::read_npy_as<float>(e.path().string());
      const auto got = lav2::io::read_npy_as<float>((grads / name).string());
      REQUIRE(got.shape() == want.shape());
      const double diff = lav2::test::max_abs_diff(got.data(), want.data(), got.numel());
      const double scale = lav2::test::max_abs(want.data(), want.numel());
      CHECK(diff <= 1e-4 * scale);
      ++compared;
    }
    CHECK(compared == c.gradients);
    // --out: the checkpoint loads back into lav2, the optimiser state and the loss curve are there.
    const auto base = lav2::model::open_llama_base(kData + "/tiny_llama/tiny", 512);
    const lav2::model::LoadedModel m = lav2::model::load_model(base, (out / "checkpoint.pth").string());
    CHECK(m.model.spec().takes_visual());
    CHECK(lav2::io::TorchCheckpoint((out / "optimizer.pth").string()).root().find("step")->as_int() == 1);
    const lav2::vision::Image png = lav2::vision::load_image((out / "loss.png").string());
    CHECK(png.width == 640);
    CHECK(png.height == 360);
  }
}

TEST_CASE("lav2 train resumes from --out; a finished run is not rerun") {
  const fs::path out = fresh("resume");
  lav2::test::CliResult r = lav2::test::run_cli(train_args("finetune", out, 2));
  REQUIRE(r.code == 0);
  r = lav2::test::run_cli(train_args("finetune", out, 3));
  INFO(r.out);
  REQUIRE(r.code == 0);
  CHECK(r.out.find("resuming") != std::string::npos);
  CHECK(r.out.find("at step 2") != std::string::npos);
  const lav2::io::TorchCheckpoint opt((out / "optimizer.pth").string());
  CHECK(opt.root().find("step")->as_int() == 3);
  CHECK(opt.root().find("losses")->as_tensor().numel() == 3);
  r = lav2::test::run_cli(train_args("finetune", out, 3));
  CHECK(r.code == 2);
  CHECK(r.out.find("--steps 3") != std::string::npos);
  r = lav2::test::run_cli(train_args("pretrain", out, 4));  // another phase's state
  CHECK(r.code == 2);
  CHECK(r.out.find("field 'phase' is 'finetune'") != std::string::npos);
  // --augment: the captions' image through RandomResizedCrop at every draw.
  r = lav2::test::run_cli(train_args("pretrain", fresh("augment"), 2) + " --augment --captions " +
                          shell_quote(kData + "/train/cli/captions.tsv"));
  CHECK(r.code == 0);
}

TEST_CASE("lav2 train: 1 and 2 threads write the same checkpoint bytes (joint: CLIP, projector and LLM)") {
  std::string bytes[2];
  for (int threads : {1, 2}) {
    const fs::path out = fresh("threads" + std::to_string(threads));
    std::string args = train_args("joint", out, 3) + " --captions " + shell_quote(kData + "/train/cli/captions.tsv");
    args.replace(args.find("--threads 2"), 11, "--threads " + std::to_string(threads));
    const lav2::test::CliResult r = lav2::test::run_cli(args);
    INFO(r.out);
    REQUIRE(r.code == 0);
    std::ifstream f(out / "checkpoint.pth", std::ios::binary);
    bytes[threads - 1].assign(std::istreambuf_iterator<char>(f), {});
  }
  CHECK(!bytes[0].empty());
  CHECK(bytes[0] == bytes[1]);
}
