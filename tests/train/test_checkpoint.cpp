// Checkpoints of a run (train/checkpoint.hpp): checkpoint.pth loads back into lav2 with the
// trained values bit for bit and every other tensor as stored; a run resumed from checkpoint.pth
// and optimizer.pth ends bit-identical to the uninterrupted run; where /usr/bin/python3 has torch,
// torch.load(weights_only=True) reads the checkpoint with the same keys, shapes, dtypes and values
// (skipped elsewhere: CI has no torch).
#include <doctest/doctest.h>

#include <sys/wait.h>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

#include <lav2/io/npy.hpp>
#include <lav2/text/prompt.hpp>
#include <lav2/text/tokenizer.hpp>
#include <lav2/train/checkpoint.hpp>

#include "train/tiny_world.hpp"

using namespace lav2;
using namespace lav2::train;
namespace fs = std::filesystem;

namespace {

const test::TinyWorld& world() { return test::tiny_world(); }
const std::string& kData = world().data;

std::vector<Sample> samples() {
  std::vector<Sample> out;
  for (int i = 0; i < 8; ++i) {
    Sample s = make_sample(world().tok, text::format_prompt(text::PromptTemplate::alpaca, "item " + std::to_string(i)),
                           "yes no " + std::to_string(i), 128, "s" + std::to_string(i));
    if (i % 2) s.image = kData + "/images/resize/021_449x300_mixed.png";
    out.push_back(std::move(s));
  }
  return out;
}

TrainOptions options(Phase p) {
  TrainOptions o;
  o.phase = p;
  o.steps = 4;
  o.warmup_steps = 1;
  o.lr = 1e-2;
  o.weight_decay = 0.02;
  o.batch = 2;
  o.joint_ratio = 1;
  o.visual_heads = 2;  // fast (test_trainer.cpp)
  return o;
}

fs::path temp_dir(const std::string& name) { return test::fresh_temp_dir("checkpoint_" + name); }

std::string adapter_path(const char* variant) { return kData + "/tiny_adapter/" + variant + "/adapter.pth"; }

bool python_has_torch() {
  return fs::exists("/usr/bin/python3") && std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") == 0;
}

}  // namespace

TEST_CASE("checkpoint: loads back into lav2 with identical values; a resumed run ends bit-identical") {
  for (const Phase phase : {Phase::finetune, Phase::pretrain, Phase::joint}) {
    INFO("phase ", std::string(phase_name(phase)));
    const fs::path dir = temp_dir(phase_name(phase));
    ThreadPool pool(2);
    const PhaseModel pm = load_for_phase(world().base, adapter_path("full_lora_bias"), phase);
    // The uninterrupted run: 4 steps.
    Trainer full(pool, pm.loaded, world().clip, options(phase), samples(), samples());
    while (!full.done()) full.train_step(pool);
    // 2 steps, saved; reloaded from the files, 2 more.
    {
      Trainer half(pool, pm.loaded, world().clip, options(phase), samples(), samples());
      half.train_step(pool);
      half.train_step(pool);
      save_checkpoint((dir / "checkpoint.pth").string(), half, pm.loaded.adapter);
      save_optimizer((dir / "optimizer.pth").string(), half);
      // The checkpoint holds every tensor of the start file (the pretrain biases excepted), the
      // trained ones with their values.
      const io::TorchCheckpoint ck((dir / "checkpoint.pth").string());
      const io::TensorMap saved = ck.tensors("model");
      CHECK(saved.size() == pm.loaded.adapter.tensors.size());
      for (TrainableTensor* t : half.trainable()) {
        INFO(t->spec.name);
        REQUIRE(saved.count(t->spec.name));
        const AnyTensorView& v = saved.at(t->spec.name);
        CHECK(v.dtype == DType::f32);
        CHECK(v.shape == pm.loaded.adapter.tensors.at(t->spec.name).shape);
        CHECK(std::memcmp(v.data, t->value.data(), std::size_t(t->value.numel()) * 4) == 0);
      }
      std::set<std::string> trained;
      for (TrainableTensor* t : half.trainable()) trained.insert(t->spec.name);
      for (const auto& [key_, v] : pm.loaded.adapter.tensors) {
        const std::string key = key_;  // clang 14 cannot capture a structured binding (INFO)
        INFO(key);
        REQUIRE(saved.count(key));
        CHECK(saved.at(key).shape == v.shape);
        if (trained.count(key)) continue;
        CHECK(saved.at(key).dtype == v.dtype);  // untrained: the stored bytes
        CHECK(std::memcmp(saved.at(key).data, v.data, dtype_row_bytes(v.dtype, v.numel())) == 0);
      }
      const io::Value& cfg = *ck.root().find("config");
      CHECK(cfg.find("w_lora")->as_bool());
      CHECK(cfg.find("lora_rank")->as_int() == 4);
    }
    const PhaseModel resumed_model = load_for_phase(world().base, (dir / "checkpoint.pth").string(), phase);
    CHECK(resumed_model.not_loaded.empty());  // a pretrain checkpoint has no LLaMA biases
    CHECK(resumed_model.loaded.model.spec().describe() == pm.loaded.model.spec().describe());
    Trainer resumed(pool, resumed_model.loaded, world().clip, options(phase), samples(), samples());
    load_optimizer((dir / "optimizer.pth").string(), resumed);
    CHECK(resumed.step() == 2);
    while (!resumed.done()) resumed.train_step(pool);
    const auto a = full.trainable(), b = resumed.trainable();
    REQUIRE(a.size() == b.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
      INFO(a[i]->spec.name);
      CHECK(std::memcmp(a[i]->value.data(), b[i]->value.data(), std::size_t(a[i]->value.numel()) * 4) == 0);
    }
    // A state of another phase is refused by name.
    if (phase == Phase::finetune) {
      const PhaseModel other = load_for_phase(world().base, adapter_path("full_lora_bias"), Phase::pretrain);
      Trainer t(pool, other.loaded, world().clip, options(Phase::pretrain), samples(), samples());
      CHECK_THROWS_WITH_AS(load_optimizer((dir / "optimizer.pth").string(), t),
                           doctest::Contains("field 'phase' is 'finetune'"), input_error);
    }
  }
}

TEST_CASE("checkpoint: torch.load(weights_only=True) reads it (where /usr/bin/python3 has torch)") {
  if (!python_has_torch()) {
    MESSAGE("skipped: /usr/bin/python3 has no torch");
    return;
  }
  const fs::path dir = temp_dir("torch");
  ThreadPool pool(1);
  const PhaseModel pm = load_for_phase(world().base, adapter_path("full_bias"), Phase::pretrain);
  Trainer t(pool, pm.loaded, world().clip, options(Phase::pretrain), samples(), {});
  t.train_step(pool);
  const std::string ckpt = (dir / "checkpoint.pth").string(), opt = (dir / "optimizer.pth").string();
  save_checkpoint(ckpt, t, pm.loaded.adapter);
  save_optimizer(opt, t);
  // The expected values, key by key, as .npy files for the script to compare with.
  const io::TorchCheckpoint written(ckpt);
  for (const auto& [key, v] : written.tensors("model")) {
    if (v.dtype != DType::f32) continue;
    io::write_npy((dir / (key + ".npy")).string(), v.as<float>());
  }
  const std::string script = R"PY(
import os, sys, numpy as np, torch
d = sys.argv[1]
ck = torch.load(os.path.join(d, "checkpoint.pth"), weights_only=True)
assert set(ck) == {"model", "config"}, list(ck)
assert ck["config"]["w_bias"] is True and ck["config"]["w_lora"] is False, ck["config"]
n = 0
for k, v in ck["model"].items():
    assert isinstance(v, torch.Tensor), k
    f = os.path.join(d, k + ".npy")
    if os.path.exists(f):
        assert v.dtype == torch.float32, (k, v.dtype)
        assert np.array_equal(v.numpy(), np.load(f)), k
        n += 1
assert "visual_query.weight" in ck["model"] and "llama.layers.2.attention.gate" in ck["model"]
assert not any(k.startswith("llama.") and k.endswith(".bias") for k in ck["model"])
opt = torch.load(os.path.join(d, "optimizer.pth"), weights_only=True)
assert opt["format"] == "lav2.adamw" and opt["step"] == 1, opt["step"]
g = opt["groups"]["pretrain"]
assert g["visual_query.weight"]["exp_avg"].dtype == torch.float32
print("torch.load ok:", len(ck["model"]), "tensors,", n, "compared,", torch.__version__)
)PY";
  std::ofstream((dir / "check.py").string()) << script;
  const std::string cmd = "/usr/bin/python3 '" + (dir / "check.py").string() + "' '" + dir.string() + "' 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p);
  std::string out;
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  const int status = pclose(p);
  INFO(out);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  MESSAGE(out);
}
