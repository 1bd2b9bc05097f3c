// `lav2 bench`: prefill and decode speed on a random model with real shapes, reported against the
// machine probes measured in the same run (CONTRACT.md):
//   lav2 bench --random-model 7b [--layers L] --dtype f16 | --model FILE.gguf  --threads N
//              --prompt-tokens P --gen-tokens G [--image] [--adapter] [--json]
// --model runs a GGUF LLaMA (lav2 convert's or llama.cpp's, e.g. a Q4_K_M file) as stored, the
// same file the other engines are given; "dtype" is then the most common matrix dtype of the file.
// The last line of stdout is one JSON object with prefill_tok_s, decode_tok_s,
// weight_bytes_per_token, image_encode_s, peak_rss_bytes, stream_gbs, fma_peak_gflops (plus
// bandwidth_limit_tok_s and decode_fraction_of_bandwidth = decode_tok_s / bandwidth_limit_tok_s).
// With --image, image_encode_s is the median of 3 encodes (after one warm-up) of a synthetic
// 640x480 image through preprocessing, a random CLIP tower (ViT-L/14 with f16 matrices, as in
// OpenAI's archive, for 7b) and projector; image_encode_gflops and image_encode_fma_frac relate
// it to the FMA probe. Without --image, image_encode_s is null. --adapter runs a random V2 BIAS
// adapter (model::random_adapter_spec) with a visual query from a random projector.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <lav2/core/error.hpp>
#include <lav2/kernels/probes.hpp>
#include <lav2/model/gguf_llama.hpp>
#include <lav2/model/model_loader.hpp>
#include <lav2/model/random_llama.hpp>
#include <lav2/vision/image_preprocess.hpp>
#include <lav2/vision/random_visual.hpp>
#include <lav2/vision/visual_encoder.hpp>

#include "command.hpp"
#include "process_stats.hpp"

namespace {

struct BenchArgs {
  std::string preset, model, dtype = "f16";
  int layers = 0, threads = 0, prompt_tokens = 64, gen_tokens = 32;
  bool image = false, json = false, adapter = false;
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Prefill of a synthetic prompt, then gen_tokens decode steps, on one request state.
void run_model(const lav2::model::LlamaModel& m, lav2::ThreadPool& pool, const BenchArgs& a,
               const lav2::Tensor<float>* visual_query, nlohmann::json& out) {
  using clock = std::chrono::steady_clock;
  const int vocab = m.config().vocab_size;
  std::vector<int> prompt(static_cast<std::size_t>(a.prompt_tokens));
  for (int i = 0; i < a.prompt_tokens; ++i)
    prompt[std::size_t(i)] = 1 + int((std::uint64_t(i) * 2654435761u) % std::uint64_t(vocab - 1));
  std::vector<float> logits(static_cast<std::size_t>(vocab));
  lav2::model::StateOptions opt;
  opt.max_seq_len = a.prompt_tokens + a.gen_tokens + 1;
  auto state =
      m.new_state(pool, opt, visual_query ? visual_query->data() : nullptr, visual_query ? visual_query->dim(0) : 0);
  state.reserve(opt.max_seq_len);  // the cache is allocated before timing, as the forward pass is timed
  auto t0 = clock::now();
  m.forward(pool, state, prompt.data(), a.prompt_tokens, logits.data());
  const double prefill_s = seconds_since(t0);
  int token = 2;
  t0 = clock::now();
  for (int g = 0; g < a.gen_tokens; ++g) {
    m.forward(pool, state, &token, 1, logits.data());
    token = 3 + (g * 7919) % (vocab - 3);  // decode speed does not depend on which token
  }
  const double decode_s = seconds_since(t0);
  out["prefill_tok_s"] = a.prompt_tokens / prefill_s;
  out["decode_tok_s"] = a.gen_tokens > 0 ? a.gen_tokens / decode_s : 0.0;
}

// The visual query of a random projector at the preset's shapes, over synthetic CLIP features
// (untimed: --adapter needs a query, --image times the whole visual branch separately).
lav2::Tensor<float> random_visual_query(const std::string& preset, int model_dim, lav2::ThreadPool& pool) {
  using namespace lav2;
  const bool tiny = preset == "tiny";
  vision::VisualProjectorConfig pc = tiny ? vision::projector_tiny_config(model_dim) : vision::projector_7b_config();
  pc.dim = model_dim;
  const auto projector = vision::random_visual_projector(pc, pool);
  const std::int64_t tokens = (tiny ? vision::clip_tiny_config() : vision::clip_vit_l14_config()).n_tokens();
  Tensor<float> features(Shape{tokens, pc.clip_dim});
  fill_hash_uniform(features.data(), features.numel(), 7, 1.0f, pool);
  return projector.encode(pool, features);
}

// The visual branch at the preset's shapes: ViT-L/14 and the 7B projector for 7b, a 64-wide
// 2-block tower (still 224 px, 257 tokens) for tiny.
void run_image(const std::string& preset, int model_dim, lav2::ThreadPool& pool, double fma_gflops,
               nlohmann::json& out) {
  using namespace lav2;
  const bool tiny = preset == "tiny";
  const vision::ClipVisionConfig cc = tiny ? vision::clip_tiny_config() : vision::clip_vit_l14_config();
  vision::VisualProjectorConfig pc = tiny ? vision::projector_tiny_config(model_dim) : vision::projector_7b_config();
  pc.dim = model_dim;
  const vision::VisualEncoder encoder(
      std::make_shared<const vision::ClipVisionModel>(vision::random_clip_vision(cc, DType::f16, pool)),
      vision::random_visual_projector(pc, pool));
  vision::Image img(640, 480);
  for (std::size_t i = 0; i < img.pixels.size(); ++i) img.pixels[i] = std::uint8_t((i * 2654435761u) >> 24);
  auto encode = [&] { return encoder.encode(pool, vision::preprocess_clip(img)); };
  encode();  // warm-up: first touch of the weights and of the scratch buffers
  std::vector<double> seconds;
  for (int r = 0; r < 3; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    encode();
    seconds.push_back(seconds_since(t0));
  }
  std::sort(seconds.begin(), seconds.end());
  const double s = seconds[1];
  const double gflops = (cc.flops_per_image() + pc.flops(cc.n_tokens())) / s / 1e9;
  out["image_encode_s"] = s;
  out["image_encode_gflops"] = gflops;
  out["image_encode_fma_frac"] = gflops / fma_gflops;
}

// The bytes of matrices one decode step reads (every layer's seven, and the output; the embedding
// is one row) and the dtype most of them have.
std::int64_t decode_bytes(const lav2::model::LlamaModel& m, std::string& main_dtype) {
  std::int64_t total = m.weights().output.bytes();
  std::map<std::string, std::int64_t> by_dtype;
  by_dtype[std::string(lav2::dtype_name(lav2::stored_dtype(m.weights().output.dtype)))] += m.weights().output.bytes();
  for (const auto& layer : m.weights().layers)
    for (const lav2::model::LinearId id : lav2::model::kAllLinears) {
      const lav2::MatPtr& w = layer.linear(id).weight;
      total += std::int64_t(w.bytes());
      by_dtype[std::string(lav2::dtype_name(lav2::stored_dtype(w.dtype)))] += std::int64_t(w.bytes());
    }
  main_dtype =
      std::max_element(by_dtype.begin(), by_dtype.end(), [](auto& x, auto& y) { return x.second < y.second; })->first;
  return total;
}

int run_bench(const BenchArgs& a) {
  using namespace lav2;
  if (a.preset.empty() == a.model.empty())
    LAV2_THROW(input_error, "give exactly one of --random-model (7b | tiny) or --model (a GGUF file)");
  if (!a.model.empty() && a.adapter)
    LAV2_THROW(input_error, "--adapter runs a random adapter on a random model: not with --model");
  if (!a.model.empty() && a.layers > 0) LAV2_THROW(input_error, "--layers applies to --random-model, not --model");
  DType dtype = DType::f32;
  if (a.dtype == "f16") dtype = DType::f16;
  else if (a.dtype == "bf16") dtype = DType::bf16;
  else if (a.dtype == "q8_0") dtype = DType::q8_0;
  else if (a.dtype == "q4_0") dtype = DType::q4_0;
  else if (a.dtype == "q4_k") dtype = DType::q4_k;
  else if (a.dtype == "q6_k") dtype = DType::q6_k;
  else if (a.dtype != "f32")
    LAV2_THROW(input_error, "--dtype '", a.dtype, "' is not one of f16, bf16, f32, q8_0, q4_0, q4_k, q6_k");
  // The file is opened and checked first (a bad file fails at once); its model is built after
  // the probes.
  std::optional<model::GgufLlama> gguf;
  if (!a.model.empty()) gguf.emplace(model::open_gguf_llama(a.model));
  ThreadPool pool(a.threads);
  nlohmann::json probe_out;
  // Probes first, before the model holds memory (a repacked file model's weights are resident
  // once built, and the probe's 1 GiB next to them would count in peak_rss_bytes).
  // The stream probe is a ceiling: the best of three read patterns (probes.hpp), each named.
  kernels::probes::StreamPattern pattern = kernels::probes::StreamPattern::one;
  double stream = 0;
  {
    const kernels::probes::StreamBuffer buf(pool, std::size_t(1) << 30);
    for (auto p : {kernels::probes::StreamPattern::one, kernels::probes::StreamPattern::two,
                   kernels::probes::StreamPattern::prefetch}) {
      const double g = kernels::probes::stream_gbps(pool, buf, p);
      probe_out["stream_gbs_" + std::string(kernels::probes::stream_pattern_name(p))] = g;
      if (g > stream) stream = g, pattern = p;
    }
  }
  const double fma = kernels::probes::fma_peak_gflops(pool);
  probe_out["stream_gbs"] = stream;
  probe_out["stream_pattern"] = kernels::probes::stream_pattern_name(pattern);
  probe_out["fma_peak_gflops"] = fma;

  // The model under test.
  std::optional<model::LlamaModel> file_model;
  model::LlamaConfig c;
  std::string dtype_label = a.dtype;
  if (gguf) {
    file_model.emplace(model::build_model(gguf->base, nullptr));
    gguf.reset();
    c = file_model->config();
  } else {
    c = model::preset_config(a.preset);
    if (a.layers > 0) c.n_layers = a.layers;
  }
  const std::string preset = !a.model.empty() ? (c.dim >= 1024 ? "7b" : "tiny") : a.preset;  // --image's tower

  nlohmann::json out = probe_out;
  const std::int64_t weight_bytes =
      file_model ? decode_bytes(*file_model, dtype_label) : model::decode_weight_bytes(c, dtype);
  out["model"] = a.model.empty() ? a.preset : a.model;
  out["layers"] = c.n_layers;
  out["dtype"] = dtype_label;
  out["threads"] = pool.size();
  out["prompt_tokens"] = a.prompt_tokens;
  out["gen_tokens"] = a.gen_tokens;
  out["kernel_arch"] = kernels::kernel_arch_name();
  out["isa"] = kernels::isa_name();  // the level chosen at run time (LAV2_ISA or the widest)
  out["weight_bytes_per_token"] = weight_bytes;
  out["image_encode_s"] = nullptr;

  out["adapter"] = a.adapter ? "v2-bias" : "none";
  if (file_model) {
    run_model(*file_model, pool, a, nullptr, out);
    file_model.reset();
  } else {
    const model::AdapterSpec spec = a.adapter ? model::random_adapter_spec(c) : model::AdapterSpec{};
    const auto m = model::random_llama(c, dtype, pool, 1, 0.02f, spec);
    const Tensor<float> query = a.adapter ? random_visual_query(preset, c.dim, pool) : Tensor<float>();
    run_model(m, pool, a, a.adapter ? &query : nullptr, out);
  }
  if (a.image) run_image(preset, c.dim, pool, fma, out);  // after the model is freed
  const double limit = stream * 1e9 / double(out["weight_bytes_per_token"].get<std::int64_t>());
  out["bandwidth_limit_tok_s"] = limit;
  out["decode_fraction_of_bandwidth"] = out["decode_tok_s"].get<double>() / limit;
  out["peak_rss_bytes"] = cli::peak_rss_bytes();
  if (!a.json) {
    std::printf("model %s, %d layers, %s, %d threads, kernels %s (%s)\n", out["model"].get<std::string>().c_str(),
                c.n_layers, dtype_label.c_str(), pool.size(), kernels::isa_name(), kernels::kernel_arch_name());
    std::printf("stream %.2f GB/s, FMA peak %.1f GFLOP/s\n", stream, fma);
    std::printf("prefill %.2f tok/s, decode %.3f tok/s = %.1f%% of the bandwidth limit %.3f tok/s\n",
                out["prefill_tok_s"].get<double>(), out["decode_tok_s"].get<double>(),
                100.0 * out["decode_fraction_of_bandwidth"].get<double>(), limit);
    if (a.image)
      std::printf("image encode %.3f s (preprocess, CLIP tower, projector) = %.1f GFLOP/s = %.1f%% of the FMA peak\n",
                  out["image_encode_s"].get<double>(), out["image_encode_gflops"].get<double>(),
                  100.0 * out["image_encode_fma_frac"].get<double>());
  }
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

const lav2::cli::CommandRegistrar kRegister{
    "bench", "Measure prefill/decode speed on a random model against the machine probes", [](lav2::cli::Options& sub) {
      auto a = std::make_shared<BenchArgs>();
      sub.add("--random-model", a->preset, "preset shapes: 7b | tiny");
      sub.add("--model", a->model, "a GGUF LLaMA file, run as stored (in place of --random-model)");
      sub.add("--layers", a->layers, "override the number of layers (e.g. 2 for a quick 7B-shaped run)").range(1, 1024);
      sub.add("--dtype", a->dtype,
              "weight dtype of the frozen linears: f16 | bf16 | f32 | q8_0 | q4_0 | q4_k | q6_k (the random f32 values "
              "quantised; the K-quants by lav2's reference quantisers, not llama.cpp's)");
      sub.add("--threads", a->threads, "threads (0: all cores)").range(0, 1024);
      sub.add("--prompt-tokens", a->prompt_tokens, "prompt length for prefill").range(1, 65536);
      sub.add("--gen-tokens", a->gen_tokens, "decode steps").range(0, 65536);
      sub.flag("--image", a->image,
               "also time the visual branch (preprocess, CLIP tower, projector) on a synthetic image");
      sub.flag("--adapter", a->adapter,
               "run a random LLaMA-Adapter V2 BIAS adapter on the model (prompts, gates, biases, a visual query)");
      sub.flag("--json", a->json, "print only the JSON line");
      return [a] { return run_bench(*a); };
    }};

}  // namespace
