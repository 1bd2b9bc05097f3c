// LLaMA-Adapter V2 against the PyTorch reference (tools/reference/make_adapter_fixture.py): every
// policy combination the switch accepts, with the reference's visual query injected; per-layer
// hidden states <= 2e-4 abs, logits <= 1e-4 abs, identical greedy ids; and the perturbation test
// for every parameter group.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include <lav2/io/npy.hpp>
#include <lav2/model/generate.hpp>
#include <lav2/model/model_loader.hpp>
#include <lav2/text/prompt.hpp>
#include <lav2/text/tokenizer.hpp>

#include "model/model_test_util.hpp"

namespace fs = std::filesystem;
using namespace lav2;
using lav2::test::error_of;
using lav2::test::max_abs_diff;

namespace {
const std::string kData = LAV2_TEST_DATA_DIR;
const std::string kTiny = kData + "/tiny_llama";
const std::string kAdapters = kData + "/tiny_adapter";

std::vector<int> golden_ids(const std::string& variant) {
  const auto t = io::read_npy_as<std::int64_t>(kAdapters + "/" + variant + "/golden/prompt_ids.npy");
  return std::vector<int>(t.begin(), t.end());
}


// The variant's expected policies, checked against what the switch chose.
struct Expect {
  const char* name;
  std::string_view adapter;
  policy::BiasSet bias;
  policy::ScaleMode scale;
  bool lora;
  policy::FusionMode fusion;
  bool visual;  // takes the visual query
};
const Expect kVariants[] = {
    {"bias", "v2", policy::BiasSet::official, policy::ScaleMode::none, false, policy::FusionMode::all_adapter_layers, true},
    {"lora_bias", "v2", policy::BiasSet::official, policy::ScaleMode::none, true, policy::FusionMode::all_adapter_layers, true},
    {"first_k", "v2", policy::BiasSet::official, policy::ScaleMode::none, false, policy::FusionMode::first_k, true},
    {"paper_early", "v2", policy::BiasSet::official, policy::ScaleMode::none, false, policy::FusionMode::paper_early, true},
    {"lora_paper_early", "v2", policy::BiasSet::official, policy::ScaleMode::none, true, policy::FusionMode::paper_early, true},
    {"chat65b_scale", "none", policy::BiasSet::all, policy::ScaleMode::input, false, policy::FusionMode::all_adapter_layers, false},
    {"paper_scale", "v2", policy::BiasSet::all, policy::ScaleMode::output, false, policy::FusionMode::paper_early, true},
    {"v1", "v1", policy::BiasSet::none, policy::ScaleMode::none, false, policy::FusionMode::all_adapter_layers, false},
};

// Checks the chosen instantiation's policies against `e` at compile-time-derived values.
template <class Model>
void check_policies(const Expect& e) {
  CHECK(Model::AdapterPolicy::kName == e.adapter);
  CHECK(Model::TuningPolicy::kBias == e.bias);
  CHECK(Model::TuningPolicy::kScale == e.scale);
  CHECK(Model::TuningPolicy::kLora == e.lora);
  if (Model::AdapterPolicy::kEnabled) CHECK(Model::FusionPolicy::kMode == e.fusion);
}
}  // namespace

// Policy concepts, checked at compile time.
static_assert(!policy::NoAdapter::kEnabled && policy::GatedPrompt::kEnabled && policy::GatedPromptV1::kEnabled);
static_assert(policy::Bias::has_bias(policy::LinearId::wq) && !policy::Bias::has_bias(policy::LinearId::wk) &&
              !policy::Bias::has_bias(policy::LinearId::wv) && policy::Bias::has_bias(policy::LinearId::w2));
static_assert(policy::BiasScaleIn::has_bias(policy::LinearId::wk) && policy::BiasScaleIn::kScale == policy::ScaleMode::input);
static_assert(policy::BiasLora::kLora && !policy::Bias::kLora && !policy::Frozen::has_bias(policy::LinearId::wq));
static_assert(std::is_same_v<model::LlamaModel<f16_t>, model::variants::Base<f16_t>>);

TEST_CASE("every accepted policy combination matches the reference through the full block") {
  const auto tok = text::Tokenizer::load(kTiny + "/tokenizer.model");
  const auto vq = io::read_npy_as<float>(kAdapters + "/visual_query.npy");  // [10, 64]
  ThreadPool pool(2);
  for (const Expect& e : kVariants) {
    CAPTURE(e.name);
    const std::string dir = kAdapters + "/" + e.name;
    auto loaded = model::load_model(kTiny + "/tiny", tok.vocab_size(), 512, dir + "/adapter.pth");
    const std::vector<int> ids = golden_ids(e.name);
    CHECK(ids == tok.encode(text::format_prompt(text::PromptTemplate::alpaca, "What is in the image?"), true, false));
    std::visit([&](auto& m) {
      using Model = std::decay_t<decltype(m)>;
      check_policies<Model>(e);
      if (e.visual) m.set_visual_query(pool, vq.data(), vq.dim(0));
      auto cache = m.new_cache();
      std::vector<float> logits(512), hidden;
      m.forward(pool, ids.data(), std::int64_t(ids.size()), cache, logits.data(), &hidden);
      const auto want_logits = io::read_npy_as<float>(dir + "/golden/prompt_last_logits.npy");
      const auto want_hidden = io::read_npy_as<float>(dir + "/golden/hidden_prefill.npy");
      CHECK(max_abs_diff(hidden.data(), want_hidden.data(), want_hidden.numel()) <= 2e-4f);
      CHECK(max_abs_diff(logits.data(), want_logits.data(), 512) <= 1e-4f);

      model::GenerateOptions opt;
      opt.temperature = 0.0f;
      opt.max_new_tokens = 12;
      opt.record_logits = true;
      const auto r = model::generate(m, pool, tok, ids, opt);
      const auto want_gen = io::read_npy_as<std::int64_t>(dir + "/golden/generated_ids.npy");
      const auto want_steps = io::read_npy_as<float>(dir + "/golden/step_logits.npy");
      REQUIRE(std::int64_t(r.generated_ids.size()) == want_gen.numel());
      for (std::size_t i = 0; i < r.generated_ids.size(); ++i) CHECK(r.generated_ids[i] == want_gen[std::int64_t(i)]);
      CHECK(max_abs_diff(r.step_logits.data(), want_steps.data(), want_steps.numel()) <= 1e-4f);
    }, loaded.model);
  }
}

TEST_CASE("perturbing each parameter group moves lav2 and the reference the same way") {
  // group -> which adapter keys belong to it (the same rules as the fixture script).
  const std::vector<std::pair<std::string, std::function<bool(const std::string&)>>> groups = {
      {"gates", [](const std::string& k) { return k.size() > 15 && k.compare(k.size() - 15, 15, ".attention.gate") == 0; }},
      {"new_gate", [](const std::string& k) { return k.find(".attention.new_gate") != std::string::npos; }},
      {"adapter_prompts", [](const std::string& k) { return k == "adapter_query.weight"; }},
      {"biases", [](const std::string& k) {
         return (k.size() > 5 && k.compare(k.size() - 5, 5, ".bias") == 0) || (k.size() > 5 && k.compare(k.size() - 5, 5, "_bias") == 0);
       }},
      {"lora", [](const std::string& k) { return k.find(".lora_") != std::string::npos; }},
      {"norms", [](const std::string& k) {
         return k == "llama.norm.weight" || (k.size() > 12 && k.compare(k.size() - 12, 12, "_norm.weight") == 0);
       }},
      {"scales", [](const std::string& k) { return k.size() > 6 && k.compare(k.size() - 6, 6, "_scale") == 0; }},
  };
  const auto vq = io::read_npy_as<float>(kAdapters + "/visual_query.npy");
  ThreadPool pool(2);
  int checked = 0;
  for (const Expect& e : kVariants) {
    const std::string dir = kAdapters + "/" + e.name;
    const model::LlamaDir base = model::open_llama_dir(kTiny + "/tiny", 512, 512);
    io::TorchCheckpoint ckpt(dir + "/adapter.pth");
    io::TensorMap tensors;
    const model::AdapterSpec spec = model::read_adapter_spec(ckpt, base.config, tensors);
    const std::vector<int> ids = golden_ids(e.name);
    const auto unperturbed = io::read_npy_as<float>(dir + "/golden/prompt_last_logits.npy");
    for (const auto& [group, belongs] : groups) {
      const std::string golden = dir + "/golden/perturb_" + group + ".npy";
      if (!fs::exists(golden)) continue;
      CAPTURE(e.name);
      CAPTURE(group);
      // t -> t * 1.25 + 0.05 in f32 for every tensor of the group, as the reference does.
      io::TensorMap perturbed = tensors;
      std::vector<std::shared_ptr<Tensor<float>>> keep;
      for (auto& [name, view] : perturbed) {
        if (!belongs(name)) continue;
        auto t = model::detail::convert_tensor<float>(view, dir, name);
        for (float& x : *t) x = x * 1.25f + 0.05f;
        view = AnyTensorView{DType::f32, t->data(), t->shape(), contiguous_strides(t->shape())};
        keep.push_back(t);
      }
      REQUIRE(!keep.empty());
      model::AnyModel m = model::build_model(base, spec, perturbed, dir + "/adapter.pth");
      std::vector<float> logits(512);
      std::visit([&](auto& mm) {
        if (e.visual) mm.set_visual_query(pool, vq.data(), vq.dim(0));
        auto cache = mm.new_cache();
        mm.forward(pool, ids.data(), std::int64_t(ids.size()), cache, logits.data());
      }, m);
      const auto want = io::read_npy_as<float>(golden);
      CHECK(max_abs_diff(logits.data(), want.data(), 512) <= 1e-4f);
      CHECK(max_abs_diff(logits.data(), unperturbed.data(), 512) >= 1e-2f);  // the group matters
      ++checked;
    }
  }
  CHECK(checked == 34);  // gates, new_gate, adapter prompts, biases, LoRA, norms, scales over 8 variants
}

TEST_CASE("adapter load errors name the file and the problem") {
  const std::string tmp = (fs::temp_directory_path() / "lav2_adapter_errors").string();
  fs::create_directories(tmp);
  // Not an adapter: Meta's base checkpoint passed as --adapter.
  std::string msg = error_of([&] { model::load_model(kTiny + "/tiny", 512, 512, kTiny + "/tiny/consolidated.00.pth"); });
  CHECK(msg.find("not an adapter checkpoint") != std::string::npos);
  msg = error_of([&] { model::load_model(kTiny + "/tiny", 512, 512, kAdapters + "/missing.pth"); });
  CHECK(msg.find("missing.pth") != std::string::npos);
  auto bad = [&](const std::string& name) {
    return error_of([&] { model::load_model(kTiny + "/tiny", 512, 512, kAdapters + "/bad/" + name + ".pth"); });
  };
  msg = bad("fusion_too_deep");
  CHECK(msg.find("fusion_too_deep.pth") != std::string::npos);
  CHECK(msg.find("'fusion_depth' is 5, but first_k needs 1..2") != std::string::npos);
  msg = bad("fusion_unknown");
  CHECK(msg.find("'fusion_mode' is 'late', expected one of all_adapter_layers, first_k, paper_early") != std::string::npos);
  msg = bad("unexpected_key");
  CHECK(msg.find("unexpected tensor 'llama.layers.0.attention.foo'") != std::string::npos);
  msg = bad("wrong_prompt_rows");
  CHECK(msg.find("'adapter_query.weight' has shape (7, 64), expected (20, 64)") != std::string::npos);
  msg = bad("wrong_gate_shape");
  CHECK(msg.find("'layers.1.attention.gate' has shape (1, 3, 1, 1), expected (1, 4, 1, 1)") != std::string::npos);
  msg = bad("lora_rank_mismatch");
  CHECK(msg.find("lora_wq_l1.weight' has shape (4, 64), expected (8, 64)") != std::string::npos);
  msg = bad("config_not_dict");
  CHECK(msg.find("'config' must be a dict") != std::string::npos);
}

TEST_CASE("a visual query that does not fit the prompts is an input error") {
  auto loaded = model::load_model(kTiny + "/tiny", 512, 512, kAdapters + "/bias/adapter.pth");
  ThreadPool pool(1);
  std::vector<float> vq(7 * 64, 0.1f);
  const std::string msg = error_of([&] { std::visit([&](auto& m) { m.set_visual_query(pool, vq.data(), 7); }, loaded.model); });
  CHECK(msg.find("visual query has 7 tokens, but fusion mode all_adapter_layers adds it to prompts of 10 tokens") != std::string::npos);
}

TEST_CASE("f32 and bf16 base weights run the same instantiations as f16") {
  // Every accepted combination over f32 weights: the f16 values widened exactly, so the logits
  // must equal the f16 model's (1e-4); base LLaMA over bf16: against f32 holding the same values.
  const auto vq = io::read_npy_as<float>(kAdapters + "/visual_query.npy");
  ThreadPool pool(2);
  auto converted = [](const model::LlamaDir& base, auto tag, std::vector<std::shared_ptr<const void>>& keep) {
    using T = decltype(tag);
    model::LlamaDir d = base;
    for (auto& [name, view] : d.tensors) {
      auto f = model::detail::convert_tensor<T>(view, "base", name);
      view = AnyTensorView{dtype_of_v<T>, f->data(), f->shape(), contiguous_strides(f->shape())};
      keep.push_back(f);
    }
    return d;
  };
  auto logits_of = [&](model::AnyModel& m, bool visual, const std::vector<int>& ids) {
    std::vector<float> logits(512);
    std::visit([&](auto& mm) {
      if (visual) mm.set_visual_query(pool, vq.data(), vq.dim(0));
      auto cache = mm.new_cache();
      mm.forward(pool, ids.data(), std::int64_t(ids.size()), cache, logits.data());
    }, m);
    return logits;
  };
  const model::LlamaDir base = model::open_llama_dir(kTiny + "/tiny", 512, 512);
  std::vector<std::shared_ptr<const void>> keep;
  const model::LlamaDir base32 = converted(base, float{}, keep);
  for (const Expect& e : kVariants) {
    CAPTURE(e.name);
    const std::string file = kAdapters + "/" + e.name + "/adapter.pth";
    io::TorchCheckpoint ckpt(file);
    io::TensorMap tensors;
    const model::AdapterSpec spec = model::read_adapter_spec(ckpt, base.config, tensors);
    const std::vector<int> ids = golden_ids(e.name);
    model::AnyModel m16 = model::build_model(base, spec, tensors, file);
    model::AnyModel m32 = model::build_model(base32, spec, tensors, file);
    CHECK(std::visit([](auto& m) { return std::is_same_v<std::remove_const_t<std::remove_pointer_t<decltype(m.weights().output.data())>>, float>; }, m32));
    const auto a = logits_of(m16, e.visual, ids), b = logits_of(m32, e.visual, ids);
    CHECK(max_abs_diff(a.data(), b.data(), 512) <= 1e-4f);
  }
  // bf16: the base model only (adapters over bf16 are rejected by the switch, with a message).
  const model::LlamaDir base16b = converted(base, bf16_t{}, keep);
  const model::LlamaDir base16b_as32 = converted(base16b, float{}, keep);
  const std::vector<int> ids = golden_ids("bias");
  model::AnyModel mb = model::build_model(base16b, {}, {}, "");
  model::AnyModel mf = model::build_model(base16b_as32, {}, {}, "");
  const auto a = logits_of(mb, false, ids), b = logits_of(mf, false, ids);
  CHECK(max_abs_diff(a.data(), b.data(), 512) <= 1e-4f);
  io::TorchCheckpoint ckpt(kAdapters + "/bias/adapter.pth");
  io::TensorMap tensors;
  const model::AdapterSpec spec = model::read_adapter_spec(ckpt, base.config, tensors);
  const std::string msg = error_of([&] { model::build_model(base16b, spec, tensors, "bias/adapter.pth"); });
  CHECK(msg.find("unsupported combination") != std::string::npos);
  CHECK(msg.find("bf16") != std::string::npos);
}

TEST_CASE("fuzz regression: a V1-layout 'adapter_query.weight' that is not a tensor is a load error") {
  const std::string file = std::string(LAV2_SOURCE_DIR) + "/tests/fuzz/regressions/json_config/adapter_query_not_a_tensor.pth";
  const std::string msg = error_of([&] { model::load_model(kTiny + "/tiny", 512, 512, file); });
  CHECK(msg.find("adapter_query_not_a_tensor.pth") != std::string::npos);
  CHECK(msg.find("'adapter_query.weight' is not a tensor") != std::string::npos);
}
