// Adapter sizes read from the tensors' shapes, not assumed (model_loader.hpp): the official class
// takes query_len, query_layer, lora_rank and v_depth as constructor arguments that its config
// never records. Checkpoints with non-default sizes (tools/reference/make_adapter_fixture.py,
// sizes_fixtures) over tests/data/tiny_llama (dim 64, 3 layers, 4 heads):
//   sizes_bias  V2 BIAS, query_len 4, query_layer 1, v_depth 2; the config names both sizes
//   sizes_lora  V2 LORA-BIAS, query_len 3, query_layer 3 (every layer), lora_rank 5, v_depth 1;
//               the config names none of them
// Each must load with those sizes and match the PyTorch reference: logits <= 1e-4 abs, per-layer
// hidden states <= 2e-4, the same 12 greedy ids; its projector (from tiny CLIP features) <= 1e-4.
// Broken sizes are refused with the tensors and both values in the message, and a gap in the
// visual blocks' numbering with the tensor past it.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include <lav2/io/npy.hpp>
#include <lav2/io/torch_checkpoint.hpp>
#include <lav2/model/generate.hpp>
#include <lav2/model/model_loader.hpp>
#include <lav2/text/tokenizer.hpp>
#include <lav2/vision/visual_projector.hpp>

#include "model/model_test_util.hpp"

using namespace lav2;
using lav2::test::error_of;
using lav2::test::max_abs_diff;

namespace {
const std::string kData = LAV2_TEST_DATA_DIR;
const std::string kTiny = kData + "/tiny_llama";
const std::string kAdapters = kData + "/tiny_adapter";

// The sizes the fixture script wrote into the shapes (SIZES in make_adapter_fixture.py).
struct Sizes {
  const char* name;
  bool lora;
  int query_len;    // rows of visual_query.weight
  int query_layer;  // rows of adapter_query.weight / query_len
  int lora_rank;    // rows of every lora_*_l1 (0: no LoRA)
  int v_depth;      // visual_blocks.{0..v_depth-1}
};
const Sizes kSizes[] = {
    {"sizes_bias", false, 4, 1, 0, 2},
    {"sizes_lora", true, 3, 3, 5, 1},
};
}  // namespace

TEST_CASE("non-default sizes come from the shapes and the model matches the reference") {
  const auto tok = text::Tokenizer::load(kTiny + "/tokenizer.model");
  ThreadPool pool(2);
  const auto base = model::open_llama_base(kTiny + "/tiny", tok.vocab_size());
  for (const Sizes& e : kSizes) {
    CAPTURE(e.name);
    const std::string dir = kAdapters + "/" + e.name;
    const auto loaded = model::load_model(base, dir + "/adapter.pth");
    const model::LlamaModel& m = loaded.model;
    const model::AdapterSpec& s = m.spec();
    CHECK(s.kind == model::AdapterKind::v2);
    CHECK(s.bias == model::BiasSet::official);
    CHECK(s.lora == e.lora);
    CHECK(s.query_len == e.query_len);
    CHECK(s.query_layer == e.query_layer);
    if (e.lora) CHECK(s.lora_rank == e.lora_rank);

    // The reference projector's output for the tiny CLIP features, [query_len, dim]; the
    // projector itself is checked in its own test case below.
    const auto vq = io::read_npy_as<float>(dir + "/golden/visual_query.npy");
    REQUIRE(vq.shape() == Shape{e.query_len, 64});
    const auto raw_ids = io::read_npy_as<std::int64_t>(dir + "/golden/prompt_ids.npy");
    const std::vector<int> ids(raw_ids.begin(), raw_ids.end());

    auto st = m.new_state(pool, {}, vq.data(), vq.dim(0));
    std::vector<float> logits(std::size_t(m.config().vocab_size)), hidden;
    m.forward(pool, st, ids.data(), std::int64_t(ids.size()), logits.data(), &hidden);
    CHECK(max_abs_diff(logits, io::read_npy_as<float>(dir + "/golden/prompt_last_logits.npy")) <= 1e-4);
    CHECK(max_abs_diff(hidden, io::read_npy_as<float>(dir + "/golden/hidden_prefill.npy")) <= 2e-4);

    model::GenerateOptions opt;
    opt.temperature = 0.0f;
    opt.max_new_tokens = 12;
    opt.record_logits = true;
    auto gen_state = m.new_state(pool, {}, vq.data(), vq.dim(0));
    const auto r = model::generate(m, gen_state, pool, tok, ids, opt);
    const auto want_gen = io::read_npy_as<std::int64_t>(dir + "/golden/generated_ids.npy");
    REQUIRE(std::int64_t(r.generated_ids.size()) == want_gen.numel());
    for (std::size_t i = 0; i < r.generated_ids.size(); ++i) CHECK(r.generated_ids[i] == want_gen[std::int64_t(i)]);
    CHECK(max_abs_diff(r.step_logits, io::read_npy_as<float>(dir + "/golden/step_logits.npy")) <= 1e-4);

    // A visual query of the official length no longer fits these prompts.
    const std::vector<float> ten(10 * 64, 0.1f);
    CHECK(error_of([&] { m.new_state(pool, {}, ten.data(), 10); }).find("the visual query has 10 tokens") !=
          std::string::npos);
  }
}

TEST_CASE("the projector reads v_depth and Q from the shapes and matches the reference") {
  // CLIP features [1, 257, 32] -> visual query [Q, 64], v_depth 2 (sizes_bias) and 1 (sizes_lora).
  const auto features = io::read_npy_as<float>(kData + "/tiny_clip/golden/clip_features_image.npy");
  ThreadPool pool(2);
  for (const Sizes& e : kSizes) {
    CAPTURE(e.name);
    const std::string dir = kAdapters + "/" + e.name;
    io::TorchCheckpoint ck(dir + "/adapter.pth");
    const auto proj = vision::VisualProjector::from_tensors(ck.tensors("model"), ck.path());
    CHECK(proj.config().n_blocks == e.v_depth);
    CHECK(proj.config().n_queries == e.query_len);
    CHECK(proj.config().width == 32);
    CHECK(proj.config().dim == 64);
    const Tensor<float> vq = proj.encode(pool, features);
    CHECK(max_abs_diff(vq, io::read_npy_as<float>(dir + "/golden/visual_query.npy")) <= 1e-4);
  }
}

TEST_CASE("inconsistent sizes are refused, naming the tensors and both values") {
  auto bad = [&](const std::string& name) {
    const std::string msg =
        error_of([&] { model::load_model(kTiny + "/tiny", 512, kAdapters + "/bad/" + name + ".pth"); });
    CHECK(msg.find(name + ".pth") != std::string::npos);
    return msg;
  };
  // config query_len 5, visual_query.weight (4, 32).
  std::string msg = bad("sizes_config_disagrees");
  CAPTURE(msg);
  CHECK(msg.find("config 'query_len' is 5, but tensor 'visual_query.weight' (4, 32) (its rows) gives 4") !=
        std::string::npos);
  // adapter_query.weight (6, 64) beside visual_query.weight (4, 32).
  msg = bad("sizes_prompt_rows_inconsistent");
  CHECK(msg.find("tensor 'adapter_query.weight' has 6 rows, which is not a multiple of query_len 4 "
                 "(the rows of 'visual_query.weight')") != std::string::npos);
  // Attention lora_*_l1 rank 5, feed_forward rank 6: the first of each in the map's name order.
  msg = bad("sizes_lora_ranks_disagree");
  CHECK(msg.find("LoRA ranks disagree: tensor 'llama.layers.0.attention.lora_wk_l1.weight' has rank 5 but "
                 "'llama.layers.0.feed_forward.lora_w1_l1.weight' has rank 6") != std::string::npos);
  // visual_blocks.0 and .2: v_depth stops at the gap, so block 2 would be dropped without a word.
  msg = bad("sizes_visual_blocks_gap");
  CHECK(msg.find("tensor 'visual_blocks.2.attn.proj.bias' lies beyond v_depth 1: the visual blocks must be numbered "
                 "from 0 without a gap, and 'visual_blocks.1.attn.qkv.weight' is missing") != std::string::npos);
}
