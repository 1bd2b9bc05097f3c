// The GGUF base model (model/gguf_export.hpp, model/gguf_llama.hpp): the tiny Meta-format fixture
// converted at test time to GGUF in every output dtype and read back. f16 (the fixture's own
// dtype) must give bit-identical logits to the Meta directory; f32 and bf16 follow the PyTorch
// golden logits within their rounding; q8_0 / q4_0 within their quantisation error. The tokenizer
// read from tokenizer.ggml.* encodes and decodes as the tokenizer.model it came from. Edited files
// are refused naming the file and the key or tensor.
#include <doctest/doctest.h>

#include <cstdio>
#include <filesystem>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include <unistd.h>

#include <lav2/io/gguf.hpp>
#include <lav2/io/gguf_writer.hpp>
#include <lav2/io/mmap.hpp>
#include <lav2/io/npy.hpp>
#include <lav2/model/gguf_export.hpp>
#include <lav2/model/gguf_llama.hpp>
#include <lav2/model/gguf_names.hpp>
#include <lav2/model/model_loader.hpp>
#include <lav2/model/random_llama.hpp>
#include <lav2/text/sentencepiece_model.hpp>
#include <lav2/text/tokenizer.hpp>

#include "model/gguf_edit.hpp"
#include "model/model_test_util.hpp"

namespace fs = std::filesystem;
using namespace lav2;
using lav2::test::error_of;
using lav2::test::max_abs;
using lav2::test::max_abs_diff;

namespace {
const std::string kTiny = std::string(LAV2_TEST_DATA_DIR) + "/tiny_llama";

// A fresh directory under the build's temp dir for this test's files.
fs::path temp_dir() {
  const fs::path d = fs::temp_directory_path() / ("lav2_test_gguf_llama_" + std::to_string(::getpid()));
  fs::create_directories(d);
  return d;
}

text::SentencePieceModel tiny_sentencepiece() {
  const auto f = io::MappedFile::open(kTiny + "/tokenizer.model", "tokenizer");
  return text::parse_sentencepiece_model(std::string_view(reinterpret_cast<const char*>(f->data()), f->size()),
                                         kTiny + "/tokenizer.model");
}

// The tiny fixture written as GGUF in `dtype` (cached per dtype for the run).
std::string tiny_gguf(DType dtype) {
  const std::string path = (temp_dir() / ("tiny-" + std::string(dtype_name(dtype)) + ".gguf")).string();
  if (fs::exists(path)) return path;
  const model::LlamaDir base = model::open_llama_dir(kTiny + "/tiny", 512);
  model::GgufExportOptions opt;
  opt.dtype = dtype;
  opt.name = "tiny";
  ThreadPool pool(2);
  model::write_gguf_llama(base, tiny_sentencepiece(), opt, path, pool);
  return path;
}

// The raw golden case's prompt ids; the model's logits after them, then 7 greedy steps.
std::vector<int> golden_ids() {
  const auto want = io::read_npy_as<std::int64_t>(kTiny + "/golden/raw/prompt_ids.npy");
  return std::vector<int>(want.data(), want.data() + want.numel());
}
std::vector<float> run_logits(const model::LlamaModel& m, const std::vector<int>& ids) {
  ThreadPool pool(2);
  auto st = m.new_state(pool, {});
  std::vector<float> logits(std::size_t(m.config().vocab_size));
  m.forward(pool, st, ids.data(), std::int64_t(ids.size()), logits.data());
  return logits;
}

// `src` edited (gguf_edit.hpp) into this test's directory as `out_name`.
std::string rewrite(const std::string& src, const std::string& out_name,
                    const std::function<void(io::GgufWriter&)>& edit, const std::set<std::string>& drop = {}) {
  const std::string path = (temp_dir() / out_name).string();
  lav2::test::rewrite_gguf(src, path, edit, {}, drop);
  return path;
}
std::string without_key(const std::string& src, const std::string& out_name, const std::string& key) {
  const std::string path = (temp_dir() / out_name).string();
  lav2::test::rewrite_gguf(src, path, [](io::GgufWriter&) {}, {key});
  return path;
}
}  // namespace

TEST_CASE("every Meta LLaMA name maps to llama.cpp's and back") {
  const model::LlamaConfig c = model::preset_config("tiny");
  int n = 0;
  for (const std::string& meta : model::detail::gguf_tensor_order(c)) {
    CAPTURE(meta);
    const auto gguf = model::gguf_name_from_meta(meta);
    REQUIRE(gguf.has_value());
    CHECK(gguf->size() <= io::kGgufMaxNameBytes);
    CHECK(model::meta_name_from_gguf(*gguf) == meta);
    ++n;
  }
  CHECK(n == 3 + 9 * c.n_layers);  // embedding, final norm, output; 9 tensors per layer
  CHECK(model::gguf_name_from_meta("layers.0.attention.wq.weight") == "blk.0.attn_q.weight");
  CHECK(model::gguf_name_from_meta("tok_embeddings.weight") == "token_embd.weight");
  CHECK(model::meta_name_from_gguf("blk.2.ffn_up.weight") == "layers.2.feed_forward.w3.weight");
  CHECK_FALSE(model::meta_name_from_gguf("blk.x.attn_q.weight").has_value());
  CHECK_FALSE(model::meta_name_from_gguf("blk.0.attn_q.bias").has_value());
}

TEST_CASE("an f16 GGUF of the tiny model gives the Meta directory's logits bit for bit") {
  const std::vector<int> ids = golden_ids();
  const auto meta = model::load_model(kTiny + "/tiny", 512);
  const model::GgufLlama g = model::open_gguf_llama(tiny_gguf(DType::f16));
  CHECK(g.base->config.dim == meta.model.config().dim);
  CHECK(g.base->config.n_layers == meta.model.config().n_layers);
  CHECK(g.base->config.hidden_dim == 192);
  CHECK(g.base->config.vocab_size == 512);
  CHECK(g.base->config.norm_eps == doctest::Approx(meta.model.config().norm_eps));
  const model::LlamaModel m = model::build_model(g.base, nullptr);
  CHECK(m.weights().output.dtype == DType::f16);  // used in place, as stored
  CHECK(run_logits(m, ids) == run_logits(meta.model, ids));
}

TEST_CASE("the tokenizer read from tokenizer.ggml.* is the tokenizer.model it came from") {
  const auto want = text::Tokenizer::load(kTiny + "/tokenizer.model");
  const model::GgufLlama g = model::open_gguf_llama(tiny_gguf(DType::f16));
  REQUIRE(g.tokenizer.vocab_size() == want.vocab_size());
  CHECK(g.tokenizer.bos_id() == want.bos_id());
  CHECK(g.tokenizer.eos_id() == want.eos_id());
  for (const char* s : {"Hello world", "  two  spaces\nand a line", "caf\xC3\xA9 \xE2\x9C\x93 unknown \xF0\x9F\xA6\x99",
                        "### Instruction:\nTell me about alpacas.\n\n### Response:"}) {
    CAPTURE(s);
    const auto a = g.tokenizer.encode(s, true, false);
    CHECK(a == want.encode(s, true, false));
    CHECK(g.tokenizer.decode(a) == want.decode(a));
  }
}

TEST_CASE("f32, bf16, q8_0 and q4_0 GGUF models follow the PyTorch logits within their rounding") {
  const std::vector<int> ids = golden_ids();
  const auto want = io::read_npy_as<float>(kTiny + "/golden/raw/prompt_last_logits.npy");
  const double scale = max_abs(want.data(), want.numel());
  // Relative to max|logit| (12.5): f32 holds the f16 weights exactly, so it keeps the f16 path's
  // 1e-4 abs (measured 5.7e-6); measured bf16 4.2e-3, q8_0 1.2e-2, q4_0 0.146 of max|logit|. The
  // tiny model's random weights are the worst case for 4 bits: no outliers, one scale per 32.
  const std::pair<DType, double> cases[] = {
      {DType::f32, 1e-4 / scale}, {DType::bf16, 1e-2}, {DType::q8_0, 3e-2}, {DType::q4_0, 0.25}};
  for (const auto& [dtype_, rel] : cases) {
    const DType dtype = dtype_;  // a structured binding cannot be captured (CAPTURE) before C++20
    CAPTURE(dtype_name(dtype));
    const model::GgufLlama g = model::open_gguf_llama(tiny_gguf(dtype));
    const model::LlamaModel m = model::build_model(g.base, nullptr);
    CHECK(stored_dtype(m.weights().layers[0].wq.weight.dtype) == dtype);
    CHECK(g.base->tensors.at("norm.weight").dtype == DType::f32);  // 1-D tensors stay f32
    const std::vector<float> got = run_logits(m, ids);
    REQUIRE(std::int64_t(got.size()) == want.numel());
    const double err = max_abs_diff(got.data(), want.data(), want.numel());
    INFO("max|diff| = ", err, ", max|ref| = ", scale);
    CHECK(err <= rel * scale);
  }
  // Quantised files are smaller: q4_0 stores 4.5 bits per weight, q8_0 8.5, f16 16.
  CHECK(fs::file_size(tiny_gguf(DType::q4_0)) < fs::file_size(tiny_gguf(DType::q8_0)));
  CHECK(fs::file_size(tiny_gguf(DType::q8_0)) < fs::file_size(tiny_gguf(DType::f16)));
}

TEST_CASE("GGUF files that are not a LLaMA lav2 runs are refused naming the file and the key") {
  const std::string good = tiny_gguf(DType::f16);
  const auto refused = [](const std::string& path) { return error_of([&] { model::open_gguf_llama(path); }); };
  using io::GgufType;
  using io::GgufValue;

  std::string p = rewrite(good, "arch.gguf",
                          [](io::GgufWriter& w) { w.set("general.architecture", GgufValue::of_string("gpt2")); });
  std::string e = refused(p);
  CHECK(e.find(p) != std::string::npos);
  CHECK(e.find("'general.architecture' is 'gpt2'") != std::string::npos);

  p = rewrite(good, "gqa.gguf",
              [](io::GgufWriter& w) { w.set("llama.attention.head_count_kv", GgufValue::of_int(GgufType::u32, 1)); });
  CHECK(refused(p).find("'llama.attention.head_count_kv' is 1") != std::string::npos);

  p = without_key(good, "eps.gguf", "llama.attention.layer_norm_rms_epsilon");
  CHECK(refused(p).find("'llama.attention.layer_norm_rms_epsilon' is missing") != std::string::npos);

  p = without_key(good, "layers.gguf", "llama.block_count");
  CHECK(refused(p).find("llama.block_count") != std::string::npos);

  p = rewrite(good, "rope.gguf",
              [](io::GgufWriter& w) { w.set("llama.rope.scaling.type", GgufValue::of_string("yarn")); });
  CHECK(refused(p).find("'llama.rope.scaling.type' is 'yarn'") != std::string::npos);

  p = rewrite(good, "ffn.gguf",
              [](io::GgufWriter& w) { w.set("llama.feed_forward_length", GgufValue::of_int(GgufType::u32, 100)); });
  CHECK(refused(p).find("blk.0.ffn_gate.weight") != std::string::npos);

  p = rewrite(good, "deep.gguf",
              [](io::GgufWriter& w) { w.set("llama.block_count", GgufValue::of_int(GgufType::u32, 4)); });
  CHECK(refused(p).find("'blk.3.") != std::string::npos);

  p = rewrite(good, "shallow.gguf",
              [](io::GgufWriter& w) { w.set("llama.block_count", GgufValue::of_int(GgufType::u32, 2)); });
  CHECK(refused(p).find("lies beyond llama.block_count 2") != std::string::npos);

  p = rewrite(good, "noemb.gguf", [](io::GgufWriter&) {}, {"token_embd.weight"});
  CHECK(refused(p).find("'token_embd.weight' is missing") != std::string::npos);

  p = without_key(good, "notok.gguf", "tokenizer.ggml.tokens");
  CHECK(refused(p).find("tokenizer.ggml.tokens") != std::string::npos);

  p = rewrite(good, "bpe.gguf", [](io::GgufWriter& w) { w.set("tokenizer.ggml.model", GgufValue::of_string("gpt2")); });
  CHECK(refused(p).find("tokenizer.ggml.model") != std::string::npos);
}
