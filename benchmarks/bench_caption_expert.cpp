// Memory of the caption expert beside the main model (docs/experts.md): how much a second adapter
// over the same loaded base LLaMA and CLIP raises the process's peak RSS, against what it should
// cost, its own adapter tensors plus its KV cache.
//
//   bench_caption_expert [--layers L] [--threads N] [--prompt-tokens P] [--gen-tokens G]
// (one run, memory not time: a plain program among the Google Benchmark ones)
//
// Random 7B shapes (LLaMA-1 7B with L layers, default 2, f16 matrices; CLIP ViT-L/14 f16; two
// random V2 BIAS adapters in f32, the released layout with the 7B projector), all in memory.
// Phase 1 builds the main model, encodes a 640x480 image with CLIP, and runs a request of P
// prompt tokens (default 64) and G generated ones (default 32); the peak RSS so far is the
// baseline. Phase 2 binds the caption adapter (experts::CaptionExpert) to the same base and CLIP
// and captions the same image from the shared CLIP features (its own projector, prompt, greedy
// decoding of up to G tokens). The last line of stdout is one JSON object:
//   adapter_bytes            the caption adapter's tensors (what a checkpoint file would hold)
//   kv_cache_bytes           its KV cache at the length it reached (prompt + generated)
//   peak_rss_before_bytes    after phase 1;  peak_rss_after_bytes  after phase 2
//   increase_bytes           their difference;  bound_bytes  1.1 x (adapter_bytes + kv_cache_bytes)
//   within_bound             increase_bytes <= bound_bytes
//   resident_increase_bytes  VmRSS with the caption expert loaded (after its request) minus VmRSS
//                            before phase 2: what keeping it costs; the peak may rise less, since
//                            the caption request reuses memory phase 1 freed
// The tokenizer is a made-up 32,000-piece BPE that holds the caption prompt's words.
#include <sys/resource.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include <lav2/core/thread_pool.hpp>
#include <lav2/experts/caption_expert.hpp>
#include <lav2/model/model_loader.hpp>
#include <lav2/model/random_llama.hpp>
#include <lav2/text/prompt.hpp>
#include <lav2/text/sentencepiece_model.hpp>
#include <lav2/text/tokenizer.hpp>
#include <lav2/vision/projector_weights.hpp>
#include <lav2/vision/random_visual.hpp>

using namespace lav2;

namespace {

std::int64_t peak_rss_bytes() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return std::int64_t(u.ru_maxrss) * 1024;
}

// Resident set size now (VmRSS of /proc/self/status), in bytes; 0 where unreadable.
std::int64_t rss_now_bytes() {
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (!f) return 0;
  char line[256];
  long long kib = 0;
  while (std::fgets(line, sizeof line, f))
    if (std::sscanf(line, "VmRSS: %lld kB", &kib) == 1) break;
  std::fclose(f);
  return std::int64_t(kib) * 1024;
}

// The base as Meta's directory would hold it: every base tensor of the table, matrices in f16.
std::shared_ptr<const model::LlamaDir> random_base(const model::LlamaConfig& c, ThreadPool& pool) {
  auto r = std::make_shared<vision::RandomTensors>();
  r->add_all(pool, "", DType::f16, [&](auto&& fn) {
    model::LlamaWeights layout;
    model::for_each_tensor(layout, c, model::AdapterSpec{}, fn);
  });
  auto dir = std::make_shared<model::LlamaDir>();
  dir->config = c;
  dir->params_path = dir->checkpoint_path = "random 7B-shape base";
  dir->format = "random";
  dir->tensors = r->map;
  dir->keep_alive = r;
  return dir;
}

// A V2 BIAS adapter as the official file holds it: the LLaMA-side tensors that are not the base's
// (prefixed 'llama.', adapter_query.weight without) and the 7B visual projector, all f32.
model::AdapterFile random_adapter(const model::LlamaConfig& c, std::uint64_t seed, const std::string& name,
                                  ThreadPool& pool, std::int64_t& bytes) {
  auto r = std::make_shared<vision::RandomTensors>();
  r->seed = seed;
  const model::AdapterSpec spec = model::random_adapter_spec(c);
  model::LlamaWeights layout;
  model::for_each_tensor(layout, c, spec, [&](const io::TensorSpec& t, auto&) {
    if (t.group == io::Group::base) return;
    r->add(pool, t.name == "adapter_query.weight" ? t.name : "llama." + t.name, t.shape, DType::f32);
  });
  vision::VisualProjectorConfig pc = vision::projector_7b_config();
  pc.dim = c.dim;
  for (const io::TensorSpec& t : vision::projector_table(pc)) r->add(pool, t.name, t.shape, DType::f32);
  bytes = 0;
  for (const auto& [key, view] : r->map) bytes += view.numel() * std::int64_t(dtype_size(view.dtype));
  return model::open_adapter_tensors(r->map, nullptr, name, r, c);
}

// 32,000 pieces: <unk> <s> </s>, the 256 byte pieces, every character and every prefix of the
// words of the caption prompt (so it tokenizes to about as many tokens as with LLaMA's
// vocabulary, not into bytes), then made-up words.
text::Tokenizer random_tokenizer(int vocab) {
  text::SentencePieceModel m;
  m.trainer.model_type = 2;
  m.trainer.byte_fallback = true;
  m.trainer.vocab_size = vocab;
  m.pieces.push_back({"<unk>", 0, text::PieceType::kUnknown});
  m.pieces.push_back({"<s>", 0, text::PieceType::kControl});
  m.pieces.push_back({"</s>", 0, text::PieceType::kControl});
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "<0x%02X>", b);
    m.pieces.push_back({buf, 0, text::PieceType::kByte});
  }
  std::set<std::string> words;
  const std::string prompt = text::format_prompt(text::PromptTemplate::alpaca, experts::CaptionOptions{}.instruction);
  std::string w;
  for (char ch : prompt + " ") {
    if (ch == ' ' || ch == '\n') {
      if (!w.empty()) words.insert(w);
      w.clear();
    } else {
      w += ch;
    }
  }
  std::set<std::string> added;
  auto add = [&](const std::string& piece, float score) {
    if (added.insert(piece).second) m.pieces.push_back({piece, score, text::PieceType::kNormal});
  };
  add("\xE2\x96\x81", 0.0f);
  for (char ch : prompt)
    if (ch != ' ' && ch != '\n') add(std::string(1, ch), 0.0f);
  for (const std::string& word : words)
    for (const std::string& lead : {std::string("\xE2\x96\x81"), std::string()})
      for (std::size_t n = 2; n <= word.size(); ++n) add(lead + word.substr(0, n), float(n));
  for (int i = int(m.pieces.size()); i < vocab; ++i)
    m.pieces.push_back({"\xE2\x96\x81w" + std::to_string(i), -float(i), text::PieceType::kNormal});
  return text::Tokenizer::from_sentencepiece(m, "random tokenizer");
}

int arg_int(int argc, char** argv, const char* flag, int fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], flag) == 0) return std::atoi(argv[i + 1]);
  return fallback;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const int layers = arg_int(argc, argv, "--layers", 2), threads = arg_int(argc, argv, "--threads", 0);
    const int prompt_tokens = arg_int(argc, argv, "--prompt-tokens", 64), gen = arg_int(argc, argv, "--gen-tokens", 32);
    ThreadPool pool(threads);
    model::LlamaConfig c = model::preset_config("7b");
    c.n_layers = layers;
    const auto tokenizer = random_tokenizer(c.vocab_size);

    // Phase 1: base, CLIP, the main model and one request.
    const auto base = random_base(c, pool);
    const auto clip = std::make_shared<const vision::ClipVisionModel>(
        vision::random_clip_vision(vision::clip_vit_l14_config(), DType::f16, pool));
    std::int64_t main_bytes = 0, caption_bytes = 0;
    const model::AdapterFile main_adapter = random_adapter(c, 11, "random main adapter", pool, main_bytes);
    const model::LlamaModel main = model::build_model(base, &main_adapter);
    const auto encoder =
        vision::VisualEncoder::from_adapter(clip, main_adapter.tensors, main_adapter.path, 16, main_adapter.keep_alive);
    vision::Image img(640, 480);
    for (std::size_t i = 0; i < img.pixels.size(); ++i) img.pixels[i] = std::uint8_t((i * 2654435761u) >> 24);
    experts::ImageContext image(std::move(img));
    {
      const Tensor<float> query = encoder.project(pool, image.clip_features(pool, *clip));
      model::RunState state = main.new_state(pool, model::StateOptions{}, query.data(), query.dim(0));
      std::vector<int> ids(static_cast<std::size_t>(prompt_tokens));
      for (int i = 0; i < prompt_tokens; ++i) ids[std::size_t(i)] = 300 + (i * 7919) % 30000;
      model::GenerateOptions g;
      g.temperature = 0.0f;
      g.max_new_tokens = gen;
      model::generate(main, state, pool, tokenizer, ids, g);
    }
    const std::int64_t before = peak_rss_bytes(), resident_before = rss_now_bytes();

    // Phase 2: the caption expert over the same base and CLIP, on the shared CLIP features.
    experts::CaptionOptions opt;
    opt.max_new_tokens = gen;
    const model::AdapterFile caption_adapter = random_adapter(c, 12, "random caption adapter", pool, caption_bytes);
    std::int64_t caption_tokens = 0, resident_with = 0;
    {
      const experts::CaptionExpert expert(base, clip, caption_adapter, tokenizer, opt);
      const model::GenerateResult r = expert.caption_from_features(image.clip_features(pool, *clip), pool);
      caption_tokens = r.prompt_tokens + std::int64_t(r.generated_ids.size());
      resident_with = rss_now_bytes();  // the expert still loaded, its request done
    }
    const std::int64_t after = peak_rss_bytes();
    const std::int64_t kv =
        std::int64_t(model::KvCache::bytes_at(c.n_layers, caption_tokens, c.dim, model::KvDType::f32));
    const std::int64_t increase = after - before, bound = std::int64_t(1.1 * double(caption_bytes + kv));
    nlohmann::json j = {{"layers", layers},
                        {"adapter_bytes", caption_bytes},
                        {"kv_cache_bytes", kv},
                        {"caption_tokens", caption_tokens},
                        {"peak_rss_before_bytes", before},
                        {"peak_rss_after_bytes", after},
                        {"increase_bytes", increase},
                        {"bound_bytes", bound},
                        {"within_bound", increase <= bound},
                        {"resident_increase_bytes", resident_with - resident_before},
                        {"clip_encodes", image.clip_encodes()}};
    std::printf("%s\n", j.dump().c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_caption_expert: %s\n", e.what());
    return 1;
  }
}
