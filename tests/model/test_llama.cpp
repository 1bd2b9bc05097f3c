// LLaMA against the PyTorch reference (tools/reference/make_llama_fixture.py): the tiny random
// model in Meta's format, golden prompt ids, logits (<= 1e-4 abs in f32), per-layer hidden states
// and greedy ids; thread-count determinism; load errors.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

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

nlohmann::json read_case(const std::string& name) {
  std::ifstream f(kTiny + "/golden/" + name + "/case.json");
  return nlohmann::json::parse(f);
}

std::string read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

}  // namespace

TEST_CASE("tiny LLaMA matches the PyTorch reference: prompt ids, logits, hidden states, greedy ids") {
  const auto tok = text::Tokenizer::load(kTiny + "/tokenizer.model");
  const auto loaded = model::load_model(kTiny + "/tiny", tok.vocab_size());
  const model::LlamaModel& m = loaded.model;
  CHECK(m.weights().output.dtype == DType::f16);  // Meta's checkpoints are f16, used as stored
  CHECK(m.config().hidden_dim == 192);
  CHECK(m.config().vocab_size == 512);
  ThreadPool pool(2);

  for (const char* name : {"alpaca", "alpaca_input", "raw"}) {
    CAPTURE(name);
    const auto c = read_case(name);
    const std::string dir = kTiny + "/golden/" + name;
    const auto tmpl = text::parse_prompt_template(c["template"].get<std::string>());
    const std::string prompt = c["input"].is_null()
                                   ? text::format_prompt(tmpl, c["instruction"].get<std::string>())
                                   : text::format_prompt(tmpl, c["instruction"].get<std::string>(),
                                                         std::string_view(c["input"].get_ref<const std::string&>()));
    CHECK(prompt == read_text(dir + "/prompt.txt"));
    const std::vector<int> ids = tok.encode(prompt, true, false);
    const auto want_ids = io::read_npy_as<std::int64_t>(dir + "/prompt_ids.npy");
    REQUIRE(std::int64_t(ids.size()) == want_ids.numel());
    for (std::size_t i = 0; i < ids.size(); ++i) CHECK(ids[i] == want_ids[std::int64_t(i)]);

    // Prefill: last-position logits and every layer's last-position hidden state.
    auto st = m.new_state(pool, {});
    std::vector<float> logits(512), hidden;
    m.forward(pool, st, ids.data(), std::int64_t(ids.size()), logits.data(), &hidden);
    const auto want_logits = io::read_npy_as<float>(dir + "/prompt_last_logits.npy");
    const auto want_hidden = io::read_npy_as<float>(dir + "/hidden_prefill.npy");
    CHECK(max_abs_diff(logits.data(), want_logits.data(), 512) <= 1e-4f);
    CHECK(max_abs_diff(hidden.data(), want_hidden.data(), want_hidden.numel()) <= 1e-4f);

    // Greedy generation: identical ids, per-step logits within 1e-4.
    model::GenerateOptions opt;
    opt.temperature = 0.0f;
    opt.max_new_tokens = c["max_new_tokens"].get<int>();
    opt.record_logits = true;
    std::string streamed;
    auto gen_state = m.new_state(pool, {});
    const auto r = model::generate(m, gen_state, pool, tok, ids, opt, [&](std::string_view s) {
      streamed += s;
      return true;
    });
    const auto want_gen = io::read_npy_as<std::int64_t>(dir + "/generated_ids.npy");
    const auto want_steps = io::read_npy_as<float>(dir + "/step_logits.npy");
    REQUIRE(std::int64_t(r.generated_ids.size()) == want_gen.numel());
    for (std::size_t i = 0; i < r.generated_ids.size(); ++i) CHECK(r.generated_ids[i] == want_gen[std::int64_t(i)]);
    CHECK(max_abs_diff(r.step_logits.data(), want_steps.data(), want_steps.numel()) <= 1e-4f);
    CHECK(r.text == c["text"].get<std::string>());
    CHECK(streamed == r.text);
  }
}

TEST_CASE("logits are bit-identical for 1, 2 and 3 threads") {
  const auto tok = text::Tokenizer::load(kTiny + "/tokenizer.model");
  const auto loaded = model::load_model(kTiny + "/tiny", tok.vocab_size());
  const model::LlamaModel& m = loaded.model;
  const std::vector<int> ids = tok.encode("Threads must not change a single bit.", true, false);
  std::vector<std::vector<float>> results;
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    auto st = m.new_state(pool, {});
    std::vector<float> prefill(512), step(512);
    m.forward(pool, st, ids.data(), std::int64_t(ids.size()), prefill.data());
    const int next = 5;
    m.forward(pool, st, &next, 1, step.data());
    prefill.insert(prefill.end(), step.begin(), step.end());
    results.push_back(prefill);
  }
  CHECK(results[0] == results[1]);
  CHECK(results[0] == results[2]);
}

TEST_CASE("generation stops at max_seq_len and rejects a prompt that leaves no room") {
  const auto tok = text::Tokenizer::load(kTiny + "/tokenizer.model");
  const auto loaded = model::load_model(kTiny + "/tiny", tok.vocab_size());
  const model::LlamaModel& m = loaded.model;
  ThreadPool pool(1);
  model::StateOptions so;
  so.max_seq_len = 40;
  model::GenerateOptions opt;
  opt.temperature = 0.0f;
  opt.max_new_tokens = 1000;
  std::vector<int> ids(30, 7);
  ids[0] = 1;
  auto st = m.new_state(pool, so);
  const auto r = model::generate(m, st, pool, tok, ids, opt);
  if (r.finish_reason != "eos") {
    CHECK(r.finish_reason == "max_seq_len");
    CHECK(r.generated_ids.size() == 10);  // 30 + 10 = max_seq_len, as officially
  }
  std::vector<int> too_long(40, 7);
  auto fresh = m.new_state(pool, so);
  const std::string msg = error_of([&] { model::generate(m, fresh, pool, tok, too_long, opt); });
  CHECK(msg.find("40 tokens") != std::string::npos);
  CHECK(msg.find("max_seq_len 40") != std::string::npos);
}

TEST_CASE("load errors name the file and the field") {
  const std::string bad = kData + "/tiny_llama_bad/";
  auto load = [&](const std::string& name) { return error_of([&] { model::load_model(bad + name, 512); }); };
  std::string e = load("missing_tensor");
  CHECK(e.find("consolidated.00.pth") != std::string::npos);
  CHECK(e.find("'layers.0.feed_forward.w3.weight' is missing") != std::string::npos);
  e = load("wrong_shape");
  CHECK(e.find("'layers.0.attention.wk.weight' has shape (8, 16), expected (16, 16)") != std::string::npos);
  e = load("params_disagree");
  CHECK(e.find("params.json") != std::string::npos);
  CHECK(e.find("dim 16 is not divisible by n_heads 3") != std::string::npos);
  e = load("params_more_layers");
  CHECK(e.find("layers.1.attention.wq.weight") != std::string::npos);
  e = load("unexpected_tensor");
  CHECK(e.find("unexpected tensor 'layers.0.attention.extra.weight'") != std::string::npos);
  e = load("int_weights");
  CHECK(e.find("dtype i64") != std::string::npos);
  // The tokenizer must agree with the embedding rows.
  e = error_of([&] { model::load_model(kTiny + "/tiny", 1000); });
  CHECK(e.find("tokenizer has 1000 pieces") != std::string::npos);
  e = error_of([&] { model::load_model(kData + "/no_such_dir", 512); });
  CHECK(e.find("is not a directory") != std::string::npos);
}
