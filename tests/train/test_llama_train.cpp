// The training model's loss and gradients against PyTorch autograd (tools/reference/train_ref.py,
// fixtures by make_train_fixture.py) on tests/data/tiny_llama + tiny_adapter: every trainable
// tensor within max|g - ref| <= 1e-4 max|ref| for BIAS and LORA-BIAS in both official phases (the
// pretrain-phase model without the LLaMA biases, as officially: train/phase_model.hpp), and
// LORA-BIAS with LoRA trained; d loss / d visual query too. Also: 1 and 2 threads give the same
// bits, and an AdamW step is seen by the next forward (the gate's tanh is not cached).
#include <doctest/doctest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include <lav2/io/npy.hpp>
#include <lav2/model/model_loader.hpp>
#include <lav2/train/llama_train.hpp>
#include <lav2/train/phase_model.hpp>

#include "train/grad_check.hpp"

using namespace lav2;
using namespace lav2::train;

namespace {

const std::string kData = LAV2_TEST_DATA_DIR;

struct Fixture {
  std::vector<std::int32_t> tokens, labels;
  Tensor<float> vq;  // (B, 10, 64): the fixture's visual query for every sequence
  std::int64_t B = 0, S = 0;
  Fixture() {
    std::ifstream in(kData + "/train/batch.json");
    const nlohmann::json j = nlohmann::json::parse(in);
    for (const auto& row : j["tokens"]) {
      for (int t : row) tokens.push_back(t);
      ++B;
    }
    for (const auto& row : j["labels"])
      for (int t : row) labels.push_back(t);
    S = std::int64_t(tokens.size()) / B;
    const Tensor<float> one = io::read_npy_as<float>(kData + "/tiny_adapter/visual_query.npy");
    vq = Tensor<float>(Shape{B, one.dim(0), one.dim(1)});
    for (std::int64_t b = 0; b < B; ++b) std::copy(one.begin(), one.end(), vq.data() + b * one.numel());
  }
  TrainBatch batch() const { return {tokens.data(), labels.data(), vq.data(), B, S, vq.dim(1)}; }
};

struct Case {
  const char* variant;
  const char* fixture;
  ParamGroup group;
  bool train_lora;
};
constexpr Case kCases[] = {{"bias", "bias_finetune", ParamGroup::finetune, false},
                           {"bias", "bias_pretrain", ParamGroup::pretrain, false},
                           {"lora_bias", "lora_bias_finetune", ParamGroup::finetune, false},
                           {"lora_bias", "lora_bias_pretrain", ParamGroup::pretrain, false},
                           {"lora_bias", "lora_bias_finetune_lora", ParamGroup::finetune, true}};

// The official model of the phase: the pretrain-phase model has no LLaMA biases.
model::LoadedModel load(const std::string& variant, ParamGroup group = ParamGroup::finetune) {
  const auto base = model::open_llama_base(kData + "/tiny_llama/tiny", 512);
  const Phase phase = group == ParamGroup::pretrain ? Phase::pretrain : Phase::finetune;
  return load_for_phase(base, kData + "/tiny_adapter/" + variant + "/adapter.pth", phase).loaded;
}

void expect_matches_reference(const std::string& name, const float* got, std::int64_t n, const std::string& npy) {
  const Tensor<float> want = io::read_npy_as<float>(npy);
  REQUIRE(want.numel() == n);
  const double diff = lav2::test::max_abs_diff(got, want.data(), n), scale = lav2::test::max_abs(want.data(), n);
  INFO(name, ": max|g - ref| = ", diff, ", max|ref| = ", scale, ", ratio ", diff / scale);
  CHECK(diff <= 1e-4 * scale);
}

}  // namespace

TEST_CASE("training model: loss and gradients match PyTorch autograd") {
  const Fixture fx;
  for (const Case& cs : kCases) {
    INFO("case ", std::string(cs.fixture));
    const auto loaded = load(cs.variant, cs.group);
    LlamaTrainModel tm(loaded.model, cs.group, cs.train_lora);
    ThreadPool pool(2);
    Tensor<float> dvq(fx.vq.shape());
    const double loss = tm.forward_backward(pool, fx.batch(), dvq.data());
    const std::string dir = kData + "/train/" + cs.fixture;
    std::ifstream in(dir + "/loss.json");
    const double want_loss = nlohmann::json::parse(in)["loss"];
    CHECK(loss == doctest::Approx(want_loss).epsilon(1e-5));
    std::size_t with_grad = 0;
    for (std::size_t i = 0; i < tm.params().size(); ++i) {
      const TrainableTensor& t = tm.params()[i];
      const std::string npy = dir + "/grad_" + t.spec.name + ".npy";
      if (!std::filesystem::exists(npy)) {  // torch's .grad is None: the forward never read it
        INFO(t.spec.name, " has no reference gradient");
        CHECK_FALSE(tm.has_grad()[i]);
        CHECK(lav2::test::max_abs(t.grad.data(), t.grad.numel()) == 0.0);
        continue;
      }
      CHECK(tm.has_grad()[i]);
      ++with_grad;
      expect_matches_reference(t.spec.name, t.grad.data(), t.grad.numel(), npy);
    }
    // Every reference gradient is one of lav2's tensors (+ the visual query's).
    std::size_t files = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir)) files += e.path().extension() == ".npy";
    CHECK(files == with_grad + 1);
    // The visual query, summed over the 10 prompt rows of each sequence as the fusion adds it.
    Tensor<float> dvq_sum(Shape{fx.vq.dim(1), fx.vq.dim(2)});
    for (std::int64_t b = 0; b < fx.B; ++b)
      for (std::int64_t i = 0; i < dvq_sum.numel(); ++i) dvq_sum[i] += dvq[b * dvq_sum.numel() + i];
    expect_matches_reference("visual_query", dvq_sum.data(), dvq_sum.numel(), dir + "/grad_visual_query.npy");
  }
}

TEST_CASE("training model: 1 and 2 threads give the same bits; the next forward sees an AdamW step") {
  const Fixture fx;
  const auto loaded = load("lora_bias");
  std::vector<std::vector<float>> first;
  double first_loss = 0;
  for (int threads : {1, 2}) {
    INFO(threads, " threads");
    LlamaTrainModel tm(loaded.model, ParamGroup::pretrain);
    ThreadPool pool(threads);
    const double loss = tm.forward_backward(pool, fx.batch());
    if (first.empty()) {
      first_loss = loss;
      for (const auto& t : tm.params()) first.emplace_back(t.grad.begin(), t.grad.end());
      continue;
    }
    CHECK(loss == first_loss);
    for (std::size_t i = 0; i < first.size(); ++i)
      CHECK(std::memcmp(first[i].data(), tm.params()[i].grad.data(), first[i].size() * sizeof(float)) == 0);
    // One AdamW step on the gates and prompts: the next loss differs (tanh(gate) recomputed).
    const GroupOptions opt{loaded.model.spec(), loaded.model.config().n_layers, false};
    AdamW adamw(group_params(ParamGroup::pretrain, tm.params(), opt), AdamWConfig{});
    adamw.step(1e-2, tm.has_grad());
    tm.zero_grad();
    const double after = tm.forward_backward(pool, fx.batch());
    CHECK(after < loss);  // a small step against the gradient lowers the loss
  }
}

TEST_CASE("pretrain loading: the LLaMA biases of the starting checkpoint are not loaded, and listed") {
  const auto base = model::open_llama_base(kData + "/tiny_llama/tiny", 512);
  const std::string path = kData + "/tiny_adapter/bias/adapter.pth";
  const PhaseModel pre = load_for_phase(base, path, Phase::pretrain);
  const PhaseModel fine = load_for_phase(base, path, Phase::finetune);
  CHECK(fine.not_loaded.empty());
  const model::AdapterFile full = model::open_adapter(path, base->config);
  std::vector<std::string> biases;
  for (const auto& kv : full.tensors)
    if (kv.first.rfind("llama.", 0) == 0 && kv.first.size() > 5 && kv.first.substr(kv.first.size() - 5) == ".bias")
      biases.push_back(kv.first);
  CHECK(biases.size() == 5 * 3);  // wq, wo, w1, w2, w3 of 3 layers
  CHECK(pre.not_loaded == biases);
  // The slots stay (the spec is the checkpoint's) at 0; finetune reads the checkpoint's values.
  CHECK(pre.loaded.model.spec().bias == fine.loaded.model.spec().bias);
  const auto& pb = pre.loaded.model.weights().layers[1].wq.bias;
  const auto& fb = fine.loaded.model.weights().layers[1].wq.bias;
  REQUIRE(!pb.empty());
  CHECK(lav2::test::max_abs(pb.data(), pb.numel()) == 0.0);
  CHECK(lav2::test::max_abs(fb.data(), fb.numel()) > 0.0);
  for (const char* key : {"llama.layers.0.attention.wq.bias", "llama.layers.1.attention_wq_bias"})
    CHECK(is_llama_bias(key));
  for (const char* key : {"visual_blocks.0.attn.qkv.bias", "llama.norm.weight", "clip_proj.bias"})
    CHECK_FALSE(is_llama_bias(key));
  CHECK(parse_phase("joint") == Phase::joint);
  CHECK_THROWS_AS(parse_phase("both"), input_error);
}
