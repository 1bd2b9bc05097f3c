// The caption expert: a second adapter bound to the main model's base LLaMA and CLIP tower.
//   - no second copy: every frozen matrix of its model (embeddings, output, the seven linears of
//     every layer) is the very memory of the main model's (pointer identity), and its encoder
//     holds the same ClipVisionModel object;
//   - one CLIP encoding: the main model and the caption expert read the image's features from one
//     ImageContext, and CLIP runs once;
//   - its caption is what the same adapter, loaded on its own (own base, own CLIP), generates
//     greedily from format_prompt("Generate caption of this image").
// The tiny fixtures stand in for the released files: full_bias is the main model, full_lora_bias
// the caption adapter (CAPTION-7B loads through the same official load(), spec section 5.2);
// tiny_adapter/caption, a pretrain-phase checkpoint without config, is checked against the
// PyTorch reference's greedy caption.
#include <doctest/doctest.h>

#include <memory>
#include <string>

#include <lav2/experts/caption_expert.hpp>
#include <lav2/io/npy.hpp>
#include <lav2/model/generate.hpp>
#include <lav2/model/model_loader.hpp>
#include <lav2/vision/image.hpp>
#include <lav2/vision/visual_encoder.hpp>

#include "common/compare.hpp"

namespace {
const std::string kData = LAV2_TEST_DATA_DIR;
const std::string kTiny = kData + "/tiny_llama";
const std::string kMain = kData + "/tiny_adapter/full_bias/adapter.pth";
const std::string kCaption = kData + "/tiny_adapter/full_lora_bias/adapter.pth";
const std::string kClip = kData + "/tiny_clip/ViT-tiny.pt";
const std::string kImage = kData + "/images/resize/021_449x300_mixed.png";
}  // namespace

using namespace lav2;

TEST_CASE("the caption expert shares the base's matrices and the CLIP tower, and one CLIP encoding") {
  const auto tok = text::Tokenizer::load(kTiny + "/tokenizer.model");
  ThreadPool pool(2);
  const auto base = model::open_llama_base(kTiny + "/tiny", tok.vocab_size());
  const auto clip = std::make_shared<const vision::ClipVisionModel>(vision::ClipVisionModel::load(kClip));
  const model::LoadedModel main = model::load_model(base, kMain);
  const auto main_encoder = vision::VisualEncoder::from_adapter(clip, main.adapter.tensors, main.adapter.path);
  const auto expert = experts::CaptionExpert::load(base, clip, kCaption, tok);
  CHECK(expert->name() == "caption");
  CHECK(expert->model().spec().lora);  // the caption adapter's own variant, not the main one's
  CHECK(!main.model.spec().lora);

  // The frozen matrices: the same bytes, not equal copies.
  const model::LlamaWeights &a = main.model.weights(), &b = expert->model().weights();
  CHECK(a.tok_embeddings.data == b.tok_embeddings.data);
  CHECK(a.output.data == b.output.data);
  REQUIRE(a.layers.size() == b.layers.size());
  std::size_t shared_bytes = a.tok_embeddings.bytes() + a.output.bytes();
  for (std::size_t l = 0; l < a.layers.size(); ++l)
    for (model::LinearId id : model::kAllLinears) {
      CAPTURE(l);
      CHECK(a.layers[l].linear(id).weight.data == b.layers[l].linear(id).weight.data);
      shared_bytes += a.layers[l].linear(id).weight.bytes();
    }
  CHECK(shared_bytes > 0);
  // The adapter's own tensors are its own: its prompts differ from the main adapter's.
  CHECK(a.adapter_query.data() != b.adapter_query.data());
  // One CLIP tower object serves both encoders.
  CHECK(&expert->encoder().clip() == clip.get());
  CHECK(expert->encoder().clip_ptr() == main_encoder.clip_ptr());

  // One encoding: the main model's visual query and the caption both come from one ImageContext.
  experts::ImageContext image(vision::load_image(kImage));
  const Tensor<float> main_query = main_encoder.project(pool, image.clip_features(pool, *clip));
  CHECK(main_query.dim(0) == main_encoder.n_queries());
  const experts::ExpertText caption = expert->run(image, pool);
  CHECK(image.clip_encodes() == 1);
  CHECK(caption.expert == "caption");
  REQUIRE(caption.lines.size() == 1);

  // The same adapter alone (its own base and CLIP), greedy on the caption prompt, says the same.
  const auto solo_base = model::open_llama_base(kTiny + "/tiny", tok.vocab_size());
  const model::LoadedModel solo = model::load_model(solo_base, kCaption);
  const auto solo_clip = std::make_shared<const vision::ClipVisionModel>(vision::ClipVisionModel::load(kClip));
  const auto solo_encoder = vision::VisualEncoder::from_adapter(solo_clip, solo.adapter.tensors, solo.adapter.path);
  const Tensor<float> q = solo_encoder.encode_file(pool, kImage);
  auto state = solo.model.new_state(pool, model::StateOptions{}, q.data(), q.dim(0));
  model::GenerateOptions g;
  g.temperature = 0.0f;
  g.max_new_tokens = expert->options().max_new_tokens;
  const auto ids =
      tok.encode(text::format_prompt(text::PromptTemplate::alpaca, "Generate caption of this image"), true, false);
  const model::GenerateResult r = model::generate(solo.model, state, pool, tok, ids, g);
  std::string want = r.text;
  want.erase(0, want.find_first_not_of(" \n\t"));
  want.erase(want.find_last_not_of(" \n\t") + 1);
  CHECK(caption.lines[0] == want);
  CHECK(!want.empty());
  // A second request on the same expert gives the same caption (no state kept between runs).
  experts::ImageContext again(vision::load_image(kImage));
  CHECK(expert->caption(again, pool) == want);
}

TEST_CASE("a CAPTION-7B-style checkpoint captions as the PyTorch reference does") {
  // tests/data/tiny_adapter/caption: a pretrain-phase checkpoint without config (gates,
  // adapter_query, the visual branch; biases stay 0, norms LLaMA's), made by
  // tools/reference/make_adapter_fixture.py caption with 24 greedy reference steps.
  const std::string dir = kData + "/tiny_adapter/caption/";
  const auto tok = text::Tokenizer::load(kTiny + "/tokenizer.model");
  ThreadPool pool(2);
  const auto base = model::open_llama_base(kTiny + "/tiny", tok.vocab_size());
  const auto clip = std::make_shared<const vision::ClipVisionModel>(vision::ClipVisionModel::load(kClip));
  experts::CaptionOptions opt;
  opt.max_new_tokens = 24;
  opt.record_logits = true;
  const auto expert = experts::CaptionExpert::load(base, clip, dir + "adapter.pth", tok, opt);
  CHECK(expert->model().spec().takes_visual());
  CHECK(!expert->model().spec().lora);
  experts::ImageContext image(vision::load_image(kImage));
  const Tensor<float>& features = image.clip_features(pool, *clip);
  const Tensor<float> query = expert->encoder().project(pool, features);
  const auto want_query = io::read_npy_as<float>(dir + "golden/visual_query.npy");
  REQUIRE(query.numel() == want_query.numel());
  CHECK(test::max_abs_diff(query.data(), want_query.data(), query.numel()) <= 1e-4);
  const auto want_prompt = io::read_npy_as<std::int64_t>(dir + "golden/prompt_ids.npy");
  const std::vector<int> prompt =
      tok.encode(text::format_prompt(text::PromptTemplate::alpaca, "Generate caption of this image"), true, false);
  REQUIRE(std::int64_t(prompt.size()) == want_prompt.numel());
  for (std::size_t i = 0; i < prompt.size(); ++i) CHECK(prompt[i] == want_prompt[std::int64_t(i)]);

  const model::GenerateResult r = expert->caption_from_features(features, pool);
  const auto want_ids = io::read_npy_as<std::int64_t>(dir + "golden/generated_ids.npy");
  const auto want_steps = io::read_npy_as<float>(dir + "golden/step_logits.npy");
  REQUIRE(std::int64_t(r.generated_ids.size()) == want_ids.numel());
  for (std::size_t i = 0; i < r.generated_ids.size(); ++i) CHECK(r.generated_ids[i] == want_ids[std::int64_t(i)]);
  REQUIRE(std::int64_t(r.step_logits.size()) == want_steps.numel());
  CHECK(test::max_abs_diff(r.step_logits.data(), want_steps.data(), want_steps.numel()) <= 5e-4);
  CHECK(image.clip_encodes() == 1);
}

TEST_CASE("a caption adapter must have a visual branch that fits") {
  const auto tok = text::Tokenizer::load(kTiny + "/tokenizer.model");
  const auto base = model::open_llama_base(kTiny + "/tiny", tok.vocab_size());
  const auto clip = std::make_shared<const vision::ClipVisionModel>(vision::ClipVisionModel::load(kClip));
  for (const std::string name : {"v1", "bias"}) {  // V1: no visual branch; bias: V2 without its modules
    CAPTURE(name);
    const std::string path = kData + "/tiny_adapter/" + name + "/adapter.pth";
    try {
      experts::CaptionExpert::load(base, clip, path, tok);
      FAIL("accepted");
    } catch (const load_error& e) {
      CHECK(std::string(e.what()).find(path) != std::string::npos);
    }
  }
  experts::CaptionOptions opt;
  opt.max_new_tokens = 0;
  CHECK_THROWS_AS(experts::CaptionExpert::load(base, clip, kCaption, tok, opt), input_error);
}
