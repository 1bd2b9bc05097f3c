// `lav2 bench`: prefill and decode speed on a random model with real shapes, reported against the
// machine probes measured in the same run (CONTRACT.md):
//   lav2 bench --random-model 7b [--layers L] --dtype f16 --threads N --prompt-tokens P
//              --gen-tokens G [--json]
// The last line of stdout is one JSON object with prefill_tok_s, decode_tok_s,
// weight_bytes_per_token, image_encode_s, peak_rss_bytes, stream_gbs, fma_peak_gflops (plus
// bandwidth_limit_tok_s and decode_fraction_of_bandwidth = decode_tok_s / bandwidth_limit_tok_s).
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <lav2/core/error.hpp>
#include <lav2/kernels/probes.hpp>
#include <lav2/model/random_llama.hpp>

#include "command.hpp"
#include "process_stats.hpp"

namespace {

struct BenchArgs {
  std::string preset = "7b", dtype = "f16";
  int layers = 0, threads = 0, prompt_tokens = 64, gen_tokens = 32;
  bool image = false, json = false;
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

template <class W>
void run_model(lav2::model::LlamaModel<W>& m, lav2::ThreadPool& pool, const BenchArgs& a, nlohmann::json& out) {
  using clock = std::chrono::steady_clock;
  const int vocab = m.config().vocab_size;
  std::vector<int> prompt(static_cast<std::size_t>(a.prompt_tokens));
  for (int i = 0; i < a.prompt_tokens; ++i) prompt[std::size_t(i)] = 1 + int((std::uint64_t(i) * 2654435761u) % std::uint64_t(vocab - 1));
  std::vector<float> logits(static_cast<std::size_t>(vocab));
  auto cache = m.new_cache();
  auto t0 = clock::now();
  m.forward(pool, prompt.data(), a.prompt_tokens, cache, logits.data());
  const double prefill_s = seconds_since(t0);
  int token = 2;
  t0 = clock::now();
  for (int g = 0; g < a.gen_tokens; ++g) {
    m.forward(pool, &token, 1, cache, logits.data());
    token = 3 + (g * 7919) % (vocab - 3);  // decode speed does not depend on which token
  }
  const double decode_s = seconds_since(t0);
  out["prefill_tok_s"] = a.prompt_tokens / prefill_s;
  out["decode_tok_s"] = a.gen_tokens > 0 ? a.gen_tokens / decode_s : 0.0;
}

int run_bench(const BenchArgs& a) {
  using namespace lav2;
  if (a.dtype == "q8_0" || a.dtype == "q4_0")
    LAV2_THROW(input_error, "--dtype ", a.dtype, ": quantised weights are not in this build yet (use f16, bf16 or f32)");
  if (a.dtype != "f16" && a.dtype != "bf16" && a.dtype != "f32")
    LAV2_THROW(input_error, "--dtype '", a.dtype, "' is not one of f16, bf16, f32, q8_0, q4_0");
  if (a.image) LAV2_THROW(input_error, "--image: the CLIP tower is not in this build yet");
  model::LlamaConfig c = model::preset_config(a.preset);
  if (a.layers > 0) c.n_layers = a.layers;
  c.max_seq_len = a.prompt_tokens + a.gen_tokens + 1;

  ThreadPool pool(a.threads);
  nlohmann::json out;
  out["model"] = a.preset;
  out["layers"] = c.n_layers;
  out["dtype"] = a.dtype;
  out["threads"] = pool.size();
  out["prompt_tokens"] = a.prompt_tokens;
  out["gen_tokens"] = a.gen_tokens;
  out["kernel_arch"] = kernels::kernel_arch_name();
  const std::int64_t bytes_per_weight = a.dtype == "f32" ? 4 : 2;
  out["weight_bytes_per_token"] = model::decode_weight_bytes(c, bytes_per_weight);
  out["image_encode_s"] = nullptr;

  // Probes first, while the model's pages are not yet competing for memory.
  const double stream = kernels::probes::stream_gbps(pool);
  const double fma = kernels::probes::fma_peak_gflops(pool);
  out["stream_gbs"] = stream;
  out["fma_peak_gflops"] = fma;

  if (a.dtype == "f16") {
    auto m = model::random_llama<f16_t>(c, pool);
    run_model(m, pool, a, out);
  } else if (a.dtype == "bf16") {
    auto m = model::random_llama<bf16_t>(c, pool);
    run_model(m, pool, a, out);
  } else {
    auto m = model::random_llama<float>(c, pool);
    run_model(m, pool, a, out);
  }
  const double limit = stream * 1e9 / double(out["weight_bytes_per_token"].get<std::int64_t>());
  out["bandwidth_limit_tok_s"] = limit;
  out["decode_fraction_of_bandwidth"] = out["decode_tok_s"].get<double>() / limit;
  out["peak_rss_bytes"] = cli::peak_rss_bytes();
  if (!a.json) {
    std::printf("model %s, %d layers, %s, %d threads (%s)\n", a.preset.c_str(), c.n_layers, a.dtype.c_str(), pool.size(),
                kernels::kernel_arch_name());
    std::printf("stream %.2f GB/s, FMA peak %.1f GFLOP/s\n", stream, fma);
    std::printf("prefill %.2f tok/s, decode %.3f tok/s = %.1f%% of the bandwidth limit %.3f tok/s\n",
                out["prefill_tok_s"].get<double>(), out["decode_tok_s"].get<double>(),
                100.0 * out["decode_fraction_of_bandwidth"].get<double>(), limit);
  }
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

const lav2::cli::CommandRegistrar kRegister{
    "bench", "Measure prefill/decode speed on a random model against the machine probes", [](CLI::App& sub) {
      auto a = std::make_shared<BenchArgs>();
      sub.add_option("--random-model", a->preset, "preset shapes: 7b | tiny")->required();
      sub.add_option("--layers", a->layers, "override the number of layers (e.g. 2 for a quick 7B-shaped run)")
          ->check(CLI::Range(1, 1024));
      sub.add_option("--dtype", a->dtype, "weight dtype: f16 | bf16 | f32 (q8_0, q4_0 later)");
      sub.add_option("--threads", a->threads, "threads (0: all cores)")->check(CLI::Range(0, 1024));
      sub.add_option("--prompt-tokens", a->prompt_tokens, "prompt length for prefill")->check(CLI::Range(1, 65536));
      sub.add_option("--gen-tokens", a->gen_tokens, "decode steps")->check(CLI::Range(0, 65536));
      sub.add_flag("--image", a->image, "also time the CLIP image encoder");
      sub.add_flag("--json", a->json, "print only the JSON line");
      return [a] { return run_bench(*a); };
    }};

}  // namespace
