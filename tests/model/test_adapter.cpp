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

// The variant's expected run-time spec, checked against what the loader read.
struct Expect {
  const char* name;
  model::AdapterKind kind;
  model::BiasSet bias;
  model::ScaleMode scale;
  bool lora;
  model::FusionMode fusion;
  bool visual;  // takes the visual query
};
using model::AdapterKind;
using model::BiasSet;
using model::FusionMode;
using model::ScaleMode;
const Expect kVariants[] = {
    {"bias", AdapterKind::v2, BiasSet::official, ScaleMode::none, false, FusionMode::all_adapter_layers, true},
    {"lora_bias", AdapterKind::v2, BiasSet::official, ScaleMode::none, true, FusionMode::all_adapter_layers, true},
    {"first_k", AdapterKind::v2, BiasSet::official, ScaleMode::none, false, FusionMode::first_k, true},
    {"paper_early", AdapterKind::v2, BiasSet::official, ScaleMode::none, false, FusionMode::paper_early, true},
    {"lora_paper_early", AdapterKind::v2, BiasSet::official, ScaleMode::none, true, FusionMode::paper_early, true},
    {"chat65b_scale", AdapterKind::none, BiasSet::all, ScaleMode::input, false, FusionMode::all_adapter_layers, false},
    {"paper_scale", AdapterKind::v2, BiasSet::all, ScaleMode::output, false, FusionMode::paper_early, true},
    {"v1", AdapterKind::v1, BiasSet::none, ScaleMode::none, false, FusionMode::all_adapter_layers, false},
};

void check_spec(const model::AdapterSpec& s, const Expect& e) {
  CHECK(s.kind == e.kind);
  CHECK(s.bias == e.bias);
  CHECK(s.scale == e.scale);
  CHECK(s.lora == e.lora);
  if (s.has_prompts()) CHECK(s.fusion == e.fusion);
  CHECK(s.takes_visual() == e.visual);
}

// A fresh state for `m`: with the reference's visual query when the model takes one.
model::RunState state_for(const model::LlamaModel& m, ThreadPool& pool, const Tensor<float>& vq) {
  if (m.spec().takes_visual()) return m.new_state(pool, {}, vq.data(), vq.dim(0));
  return m.new_state(pool, {});
}

std::vector<float> prefill_logits(const model::LlamaModel& m, ThreadPool& pool, const Tensor<float>& vq,
                                  const std::vector<int>& ids) {
  auto st = state_for(m, pool, vq);
  std::vector<float> logits(std::size_t(m.config().vocab_size));
  m.forward(pool, st, ids.data(), std::int64_t(ids.size()), logits.data());
  return logits;
}
}  // namespace

// The run-time spec's rules.
TEST_CASE("the spec's bias sets and the closed list of combinations") {
  model::AdapterSpec s;
  s.bias = BiasSet::official;
  CHECK(s.has_bias(model::LinearId::wq));
  CHECK(!s.has_bias(model::LinearId::wk));
  CHECK(!s.has_bias(model::LinearId::wv));
  CHECK(s.has_bias(model::LinearId::w2));
  s.bias = BiasSet::all;
  CHECK(s.has_bias(model::LinearId::wk));
  s.bias = BiasSet::none;
  CHECK(!s.has_bias(model::LinearId::wq));
  s.kind = AdapterKind::v1;
  s.lora = true;  // V1 with LoRA is no released model
  CHECK(error_of([&] { model::check_supported(s, "x.pth"); }).find("unsupported combination") != std::string::npos);
}

TEST_CASE("every accepted combination matches the reference through the full block") {
  const auto tok = text::Tokenizer::load(kTiny + "/tokenizer.model");
  const auto vq = io::read_npy_as<float>(kAdapters + "/visual_query.npy");  // [10, 64]
  ThreadPool pool(2);
  const auto base = model::open_llama_base(kTiny + "/tiny", tok.vocab_size());
  for (const Expect& e : kVariants) {
    CAPTURE(e.name);
    const std::string dir = kAdapters + "/" + e.name;
    const auto loaded = model::load_model(base, dir + "/adapter.pth");  // all over one base
    const model::LlamaModel& m = loaded.model;
    check_spec(m.spec(), e);
    const std::vector<int> ids = golden_ids(e.name);
    CHECK(ids == tok.encode(text::format_prompt(text::PromptTemplate::alpaca, "What is in the image?"), true, false));
    auto st = state_for(m, pool, vq);
    std::vector<float> logits(512), hidden;
    m.forward(pool, st, ids.data(), std::int64_t(ids.size()), logits.data(), &hidden);
    const auto want_logits = io::read_npy_as<float>(dir + "/golden/prompt_last_logits.npy");
    const auto want_hidden = io::read_npy_as<float>(dir + "/golden/hidden_prefill.npy");
    CHECK(max_abs_diff(hidden, want_hidden) <= 2e-4);
    CHECK(max_abs_diff(logits, want_logits) <= 1e-4);

    model::GenerateOptions opt;
    opt.temperature = 0.0f;
    opt.max_new_tokens = 12;
    opt.record_logits = true;
    auto gen_state = state_for(m, pool, vq);
    const auto r = model::generate(m, gen_state, pool, tok, ids, opt);
    const auto want_gen = io::read_npy_as<std::int64_t>(dir + "/golden/generated_ids.npy");
    const auto want_steps = io::read_npy_as<float>(dir + "/golden/step_logits.npy");
    REQUIRE(std::int64_t(r.generated_ids.size()) == want_gen.numel());
    for (std::size_t i = 0; i < r.generated_ids.size(); ++i) CHECK(r.generated_ids[i] == want_gen[std::int64_t(i)]);
    CHECK(max_abs_diff(r.step_logits, want_steps) <= 1e-4);
  }
}

TEST_CASE("perturbing each parameter group moves lav2 and the reference the same way") {
  // group -> which adapter keys belong to it (the same rules as the fixture script).
  const std::vector<std::pair<std::string, std::function<bool(const std::string&)>>> groups = {
      {"gates",
       [](const std::string& k) { return k.size() > 15 && k.compare(k.size() - 15, 15, ".attention.gate") == 0; }},
      {"new_gate", [](const std::string& k) { return k.find(".attention.new_gate") != std::string::npos; }},
      {"adapter_prompts", [](const std::string& k) { return k == "adapter_query.weight"; }},
      {"biases",
       [](const std::string& k) {
         return (k.size() > 5 && k.compare(k.size() - 5, 5, ".bias") == 0) ||
                (k.size() > 5 && k.compare(k.size() - 5, 5, "_bias") == 0);
       }},
      {"lora", [](const std::string& k) { return k.find(".lora_") != std::string::npos; }},
      {"norms",
       [](const std::string& k) {
         return k == "llama.norm.weight" || (k.size() > 12 && k.compare(k.size() - 12, 12, "_norm.weight") == 0);
       }},
      {"scales", [](const std::string& k) { return k.size() > 6 && k.compare(k.size() - 6, 6, "_scale") == 0; }},
  };
  const auto vq = io::read_npy_as<float>(kAdapters + "/visual_query.npy");
  ThreadPool pool(2);
  int checked = 0;
  const auto base = model::open_llama_base(kTiny + "/tiny", 512);
  for (const Expect& e : kVariants) {
    const std::string dir = kAdapters + "/" + e.name;
    const model::AdapterFile file = model::open_adapter(dir + "/adapter.pth", base->config);
    const std::vector<int> ids = golden_ids(e.name);
    const auto unperturbed = io::read_npy_as<float>(dir + "/golden/prompt_last_logits.npy");
    for (const auto& group_and_rule : groups) {
      const std::string& group = group_and_rule.first;
      const auto& belongs = group_and_rule.second;
      const std::string golden = dir + "/golden/perturb_" + group + ".npy";
      if (!fs::exists(golden)) continue;
      CAPTURE(e.name);
      CAPTURE(group);
      // t -> t * 1.25 + 0.05 in f32 for every tensor of the group, as the reference does.
      model::AdapterFile perturbed = file;
      std::vector<std::shared_ptr<Tensor<float>>> keep;
      for (auto& [name, view] : perturbed.tensors) {
        if (!belongs(name)) continue;
        auto t = lav2::test::convert_view<float>(view);
        for (float& x : *t) x = x * 1.25f + 0.05f;
        keep.push_back(t);
      }
      REQUIRE(!keep.empty());
      const model::LlamaModel m = model::build_model(base, &perturbed);
      const std::vector<float> logits = prefill_logits(m, pool, vq, ids);
      const auto want = io::read_npy_as<float>(golden);
      CHECK(max_abs_diff(logits, want) <= 1e-4);
      CHECK(max_abs_diff(logits, unperturbed) >= 1e-2);  // the group matters
      ++checked;
    }
  }
  CHECK(checked == 34);  // gates, new_gate, adapter prompts, biases, LoRA, norms, scales over 8 variants
}

TEST_CASE("adapter load errors name the file and the problem") {
  const std::string tmp = (fs::temp_directory_path() / "lav2_adapter_errors").string();
  fs::create_directories(tmp);
  // Not an adapter: Meta's base checkpoint passed as --adapter.
  std::string msg = error_of([&] { model::load_model(kTiny + "/tiny", 512, kTiny + "/tiny/consolidated.00.pth"); });
  CHECK(msg.find("not an adapter checkpoint") != std::string::npos);
  msg = error_of([&] { model::load_model(kTiny + "/tiny", 512, kAdapters + "/missing.pth"); });
  CHECK(msg.find("missing.pth") != std::string::npos);
  auto bad = [&](const std::string& name) {
    return error_of([&] { model::load_model(kTiny + "/tiny", 512, kAdapters + "/bad/" + name + ".pth"); });
  };
  msg = bad("fusion_too_deep");
  CHECK(msg.find("fusion_too_deep.pth") != std::string::npos);
  CHECK(msg.find("'fusion_depth' is 5, but first_k needs 1..2") != std::string::npos);
  msg = bad("fusion_unknown");
  CHECK(msg.find("'fusion_mode' is 'late', expected one of all_adapter_layers, first_k, paper_early") !=
        std::string::npos);
  msg = bad("unexpected_key");
  CHECK(msg.find("unexpected tensor 'llama.layers.0.attention.foo'") != std::string::npos);
  msg = bad("wrong_prompt_rows");
  CHECK(msg.find("tensor 'adapter_query.weight' has 7 rows, which is not a multiple of query_len 10") !=
        std::string::npos);
  msg = bad("wrong_gate_shape");
  CHECK(msg.find("'layers.1.attention.gate' has shape (1, 3, 1, 1), expected (1, 4, 1, 1)") != std::string::npos);
  msg = bad("lora_rank_mismatch");
  // The rank comes from the shapes; the config may only confirm it.
  CHECK(
      msg.find("config 'lora_rank' is 8, but tensor 'llama.layers.0.attention.lora_wk_l1.weight' (its rows) gives 4") !=
      std::string::npos);
  msg = bad("config_not_dict");
  CHECK(msg.find("'config' must be a dict") != std::string::npos);
}

TEST_CASE("a visual query that does not fit the prompts, or its absence, is an input error") {
  const auto loaded = model::load_model(kTiny + "/tiny", 512, kAdapters + "/bias/adapter.pth");
  ThreadPool pool(1);
  std::vector<float> vq(7 * 64, 0.1f);
  std::string msg = error_of([&] { loaded.model.new_state(pool, {}, vq.data(), 7); });
  CHECK(msg.find("the visual query has 7 tokens, but fusion mode all_adapter_layers adds it to prompts of 10 tokens") !=
        std::string::npos);
  // A V2 request never runs without a visual term.
  msg = error_of([&] { loaded.model.new_state(pool, {}); });
  CHECK(msg.find("needs a visual query") != std::string::npos);
  const auto v1 = model::load_model(kTiny + "/tiny", 512, kAdapters + "/v1/adapter.pth");
  msg = error_of([&] { v1.model.new_state(pool, {}, vq.data(), 7); });
  CHECK(msg.find("takes no visual query") != std::string::npos);
}

TEST_CASE("f32 and bf16 base weights run the same model code as f16, each tensor in its own dtype") {
  // Every accepted combination over f32 weights (the f16 values widened exactly) must give the
  // f16 model's logits (1e-4); over bf16 weights, those of f32 weights holding the same values.
  const auto vq = io::read_npy_as<float>(kAdapters + "/visual_query.npy");
  ThreadPool pool(2);
  std::vector<std::shared_ptr<const void>> keep;
  auto converted = [&](const model::LlamaDir& from, auto tag) {
    using T = decltype(tag);
    auto d = std::make_shared<model::LlamaDir>(from);
    for (auto& [name, view] : d->tensors) keep.push_back(lav2::test::convert_view<T>(view));
    return std::shared_ptr<const model::LlamaDir>(d);
  };
  const auto base = model::open_llama_base(kTiny + "/tiny", 512);
  const auto base32 = converted(*base, float{});
  const auto base16b = converted(*base, bf16_t{});
  const auto base16b_as32 = converted(*base16b, float{});
  for (const Expect& e : kVariants) {
    CAPTURE(e.name);
    const model::AdapterFile file = model::open_adapter(kAdapters + "/" + e.name + "/adapter.pth", base->config);
    const std::vector<int> ids = golden_ids(e.name);
    const model::LlamaModel m16 = model::build_model(base, &file), m32 = model::build_model(base32, &file);
    CHECK(m32.weights().output.dtype == DType::f32);
    CHECK(m32.weights().layers[0].wq.weight.dtype == DType::f32);
    CHECK(max_abs_diff(prefill_logits(m16, pool, vq, ids), prefill_logits(m32, pool, vq, ids)) <= 1e-4);
    const model::LlamaModel mb = model::build_model(base16b, &file), mf = model::build_model(base16b_as32, &file);
    CHECK(mb.weights().layers[0].wq.weight.dtype == DType::bf16);
    CHECK(max_abs_diff(prefill_logits(mb, pool, vq, ids), prefill_logits(mf, pool, vq, ids)) <= 1e-4);
  }
}

TEST_CASE("mixed dtypes: an f32 output.weight beside f16 layers stays f32") {
  // GGUF-style files mix dtypes per tensor; nothing is narrowed to wq's dtype.
  const auto base = model::open_llama_base(kTiny + "/tiny", 512);
  auto mixed = std::make_shared<model::LlamaDir>(*base);
  const auto keep = lav2::test::convert_view<float>(mixed->tensors.at("output.weight"));
  const model::LlamaModel m = model::build_model(mixed, nullptr);
  CHECK(m.weights().output.dtype == DType::f32);
  CHECK(m.weights().tok_embeddings.dtype == DType::f16);
  CHECK(m.weights().layers[0].w2.weight.dtype == DType::f16);
  ThreadPool pool(1);
  const model::LlamaModel m16 = model::build_model(base, nullptr);
  const std::vector<int> ids = golden_ids("bias");
  const Tensor<float> no_visual;
  CHECK(max_abs_diff(prefill_logits(m, pool, no_visual, ids), prefill_logits(m16, pool, no_visual, ids)) <= 1e-5);
}

TEST_CASE("fuzz regression: a V1-layout 'adapter_query.weight' that is not a tensor is a load error") {
  const std::string file =
      std::string(LAV2_SOURCE_DIR) + "/tests/fuzz/regressions/json_config/adapter_query_not_a_tensor.pth";
  const std::string msg = error_of([&] { model::load_model(kTiny + "/tiny", 512, file); });
  CHECK(msg.find("adapter_query_not_a_tensor.pth") != std::string::npos);
  CHECK(msg.find("'adapter_query.weight' is not a tensor") != std::string::npos);
}
