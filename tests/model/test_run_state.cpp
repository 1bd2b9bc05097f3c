// One immutable model, many request states (run_state.hpp, generate.hpp):
// - two requests over one loaded model, each with its own thread pool and overlapping in time,
//   give bit-identical results to each run alone (scripts/sanitize.sh runs this under TSan);
// - a two-turn continuation gives the ids of one fresh prefill of the concatenated sequence and
//   logits within 1e-5 * max|logit| (f32 KV: only the matvec vs GEMM summation order differs);
// - a stop string ends generation without being emitted; a callback stop ends it at once;
// - the KV cache grows with the sequence, in f32 or f16.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <thread>
#include <vector>

#include <lav2/io/npy.hpp>
#include <lav2/model/generate.hpp>
#include <lav2/model/model_loader.hpp>
#include <lav2/text/prompt.hpp>
#include <lav2/text/tokenizer.hpp>

#include "model/model_test_util.hpp"

using namespace lav2;
using lav2::test::error_of;
using lav2::test::max_abs;
using lav2::test::max_abs_diff;

namespace {
const std::string kData = LAV2_TEST_DATA_DIR;
const std::string kTiny = kData + "/tiny_llama";
const std::string kAdapters = kData + "/tiny_adapter";

struct Fixture {
  text::Tokenizer tok = text::Tokenizer::load(kTiny + "/tokenizer.model");
  std::shared_ptr<const model::LlamaDir> base = model::open_llama_base(kTiny + "/tiny", tok.vocab_size());
  model::LoadedModel adapter = model::load_model(base, kAdapters + "/bias/adapter.pth");
  Tensor<float> vq = io::read_npy_as<float>(kAdapters + "/visual_query.npy");  // [10, 64]

  std::vector<int> prompt(const std::string& instruction) const {
    return tok.encode(text::format_prompt(text::PromptTemplate::alpaca, instruction), true, false);
  }
  model::RunState state(ThreadPool& pool, const model::StateOptions& opt = {}) const {
    return adapter.model.new_state(pool, opt, vq.data(), vq.dim(0));
  }
};

model::GenerateOptions greedy(int n) {
  model::GenerateOptions opt;
  opt.temperature = 0.0f;
  opt.max_new_tokens = n;
  opt.record_logits = true;
  return opt;
}

// Sampling (not greedy), so the draws depend on every logit bit as well.
model::GenerateResult run_alone(const Fixture& f, const std::vector<int>& ids, int threads, std::uint64_t seed) {
  ThreadPool pool(threads);
  auto st = f.state(pool);
  model::GenerateOptions opt = greedy(24);
  opt.temperature = 0.9f;
  opt.top_p = 0.95f;
  opt.seed = seed;
  return model::generate(f.adapter.model, st, pool, f.tok, ids, opt);
}
}  // namespace

TEST_CASE("two requests on one model, each with its own pool, overlapping: bit-identical to each alone") {
  const Fixture f;
  const std::vector<int> a = f.prompt("What is in the image?"), b = f.prompt("Write a long story about a cat.");
  const auto alone_a = run_alone(f, a, 2, 7), alone_b = run_alone(f, b, 1, 8);
  for (int round = 0; round < 3; ++round) {
    model::GenerateResult ra, rb;
    std::thread ta([&] { ra = run_alone(f, a, 2, 7); });
    std::thread tb([&] { rb = run_alone(f, b, 1, 8); });
    ta.join();
    tb.join();
    CHECK(ra.generated_ids == alone_a.generated_ids);
    CHECK(rb.generated_ids == alone_b.generated_ids);
    CHECK(ra.step_logits == alone_a.step_logits);  // bit for bit
    CHECK(rb.step_logits == alone_b.step_logits);
  }
  // A base model built over the same LlamaDir serves at the same time as the adapter model.
  const model::LlamaModel plain = model::build_model(f.base, nullptr);
  ThreadPool pool(1);
  auto st = plain.new_state(pool, {});
  const auto r = model::generate(plain, st, pool, f.tok, a, greedy(4));
  CHECK(r.generated_ids.size() >= 1);
  CHECK(plain.weights().layers[0].wq.weight.data == f.adapter.model.weights().layers[0].wq.weight.data);  // no copy
}

TEST_CASE("a two-turn continuation equals one fresh prefill of the concatenated sequence") {
  const Fixture f;
  ThreadPool pool(2);
  const std::vector<int> turn1 = f.prompt("Describe the image.");
  const std::vector<int> turn2 = f.tok.encode(" And what colour is it?", false, false);
  auto st = f.state(pool);
  const auto r1 = model::generate(f.adapter.model, st, pool, f.tok, turn1, greedy(6));
  REQUIRE(r1.finish_reason == "length");  // not EOS, so the last id is pending and is fed first
  CHECK(st.pending == r1.generated_ids.back());
  CHECK(st.position() == std::int64_t(turn1.size() + r1.generated_ids.size()) - 1);
  const auto r2 = model::generate(f.adapter.model, st, pool, f.tok, turn2, greedy(8));
  CHECK(r2.prompt_tokens == std::int64_t(turn2.size()) + 1);  // the pending id + turn 2, not turn 1 again

  std::vector<int> all = turn1;
  all.insert(all.end(), r1.generated_ids.begin(), r1.generated_ids.end());
  all.insert(all.end(), turn2.begin(), turn2.end());
  auto fresh = f.state(pool);
  const auto rf = model::generate(f.adapter.model, fresh, pool, f.tok, all, greedy(8));
  CHECK(rf.generated_ids == r2.generated_ids);
  CHECK(fresh.tokens() == st.tokens());
  REQUIRE(rf.step_logits.size() == r2.step_logits.size());
  const double scale = max_abs(rf.step_logits.data(), std::int64_t(rf.step_logits.size()));
  CHECK(max_abs_diff(rf.step_logits, r2.step_logits) <= 1e-5 * scale);
}

TEST_CASE("a stop string ends generation without being emitted; the callback stops it at once") {
  const Fixture f;
  ThreadPool pool(2);
  const std::vector<int> ids = f.prompt("Tell me about llamas.");
  auto st = f.state(pool);
  const auto full = model::generate(f.adapter.model, st, pool, f.tok, ids, greedy(40));
  REQUIRE(full.text.size() >= 8);
  // A stop string from the middle of the greedy text: the output is the text before it.
  const std::string stop = full.text.substr(full.text.size() / 2, 3);
  const std::size_t at = full.text.find(stop);
  model::GenerateOptions opt = greedy(40);
  opt.stop = {"never appears \x01", stop};
  std::string streamed;
  auto st2 = f.state(pool);
  const auto r = model::generate(f.adapter.model, st2, pool, f.tok, ids, opt, [&](std::string_view s) {
    streamed += s;
    return true;
  });
  CHECK(r.finish_reason == "stop");
  CHECK(r.text == full.text.substr(0, at));
  CHECK(streamed == r.text);
  CHECK(streamed.find(stop) == std::string::npos);
  CHECK(r.generated_ids.size() < full.generated_ids.size());

  // The callback returns false on its first call: no further token is computed.
  int calls = 0;
  auto st3 = f.state(pool);
  const auto c = model::generate(f.adapter.model, st3, pool, f.tok, ids, greedy(40), [&](std::string_view) {
    ++calls;
    return false;
  });
  CHECK(calls == 1);
  CHECK(c.finish_reason == "cancelled");
  CHECK(c.generated_ids.size() < full.generated_ids.size());
  // The cache holds the prompt and every fed id; the last sampled one stays pending.
  CHECK(st3.position() == std::int64_t(ids.size() + c.generated_ids.size()) - 1);
  CHECK(error_of([&] {
          model::generate(f.adapter.model, st3, pool, f.tok, ids, [] {
            model::GenerateOptions o;
            o.stop = {""};
            return o;
          }());
        }).find("stop string is empty") != std::string::npos);
}

TEST_CASE("the KV cache grows with the sequence, in f32 or f16") {
  const Fixture f;
  ThreadPool pool(2);
  const std::vector<int> ids = f.prompt("What is in the image?");
  model::StateOptions opt;
  opt.max_seq_len = 100000;  // a long limit costs nothing until it is used
  auto st32 = f.state(pool, opt);
  CHECK(st32.cache().capacity() == 0);
  const auto r32 = model::generate(f.adapter.model, st32, pool, f.tok, ids, greedy(12));
  CHECK(st32.cache().capacity() >= st32.position());
  CHECK(st32.cache().capacity() <= 2 * std::max<std::int64_t>(st32.position(), 64));
  opt.kv_dtype = model::KvDType::f16;
  auto st16 = f.state(pool, opt);
  const auto r16 = model::generate(f.adapter.model, st16, pool, f.tok, ids, greedy(12));
  CHECK(st16.cache().bytes() * 2 == st32.cache().bytes());
  // f16 keys and values round each to 11 significant bits: the logits move by far less than
  // their spread (max|logit| ~ 1 here), and the greedy ids of this model do not change.
  const double scale = max_abs(r32.step_logits.data(), std::int64_t(r32.step_logits.size()));
  CHECK(max_abs_diff(r16.step_logits, r32.step_logits) <= 2e-3 * scale);
  CHECK(r16.generated_ids == r32.generated_ids);
}

TEST_CASE("a request that cannot fit in memory is refused before it allocates") {
  const Fixture f;
  ThreadPool pool(1);
  model::StateOptions opt;
  opt.max_seq_len = std::int64_t(1) << 40;  // 3 layers x 2^40 x 64 x 2 x 4 bytes: far beyond any machine
  const std::string msg = error_of([&] { f.state(pool, opt); });
  CHECK(msg.find("bytes") != std::string::npos);
  CHECK(msg.find("max_seq_len 1099511627776") != std::string::npos);
}
