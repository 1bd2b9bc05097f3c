// Training throughput and memory of the LLM side (docs/training.md, where the
// PyTorch side, tools/reference/bench_train_torch.py, is run against it): one finetune step =
// LlamaTrainModel::forward_backward over a batch of 4 x 128 tokens (a 32-token prompt masked) +
// AdamW on the finetune group, on random LLaMA-Adapter V2 BIAS models with f32 frozen weights,
// vocabulary 32000: "tiny" (dim 64, 3 layers, 4 heads) and "small" (dim 512, 8 layers, 8 heads).
// Threads: LAV2_BENCH_THREADS (2). Counters: tokens_per_s, peak_rss_mib (the process so far: run
// one model per process with --benchmark_filter), frozen_mib, trainable_mib, activations_mib (the
// formula of docs/training.md) and bound_mib = frozen + 4 trainable + activations.
#include <benchmark/benchmark.h>

#include <sys/resource.h>

#include <cstdlib>
#include <string>
#include <vector>

#include <lav2/model/random_llama.hpp>
#include <lav2/train/adamw.hpp>
#include <lav2/train/llama_train.hpp>
#include <lav2/train/param_groups.hpp>

namespace {

using namespace lav2;

model::LlamaConfig bench_config(const std::string& name) {
  model::LlamaConfig c = model::preset_config("tiny");
  c.vocab_size = 32000;
  if (name == "small") c.dim = 512, c.n_layers = 8, c.n_heads = 8, c.multiple_of = 256;
  c.head_dim = c.dim / c.n_heads;
  c.hidden_dim = model::ffn_hidden_dim(c.dim, c.multiple_of);
  return c;
}

double mib(double bytes) { return bytes / 1048576.0; }

// The activations LlamaTrainModel keeps and the scratch it reuses, in bytes (docs/training.md):
// per sequence and layer 8 S dim (x, xn1, q, k, v, att, h, xn2) + 3 S hidden (a, w3 x, silu(a) w3 x)
// + H S^2 (probabilities) + 3 np dim + H S np (the prompts); per sequence 2 S dim (x_L, its norm);
// logits and their gradient 2 B S V; one sequence's backward scratch 7 S dim + 3 S hidden + 2 np dim;
// the output linear's backward: its transposed matrix V dim, the transposed d logits of a sequence
// S V and the GEMM's packed copy of them S V.
double activation_bytes(const model::LlamaConfig& c, double B, double S, double np) {
  const double d = c.dim, h = c.hidden_dim, H = c.n_heads, L = c.n_layers, V = c.vocab_size;
  const double per_layer = 8 * S * d + 3 * S * h + H * S * S + 3 * np * d + H * S * np;
  const double floats =
      B * (L * per_layer + 2 * S * d) + 2 * B * S * V + 7 * S * d + 3 * S * h + 2 * np * d + V * d + 2 * S * V;
  return 4 * floats;
}

void train_step(benchmark::State& st, const std::string& name) {
  const int threads = std::getenv("LAV2_BENCH_THREADS") ? std::atoi(std::getenv("LAV2_BENCH_THREADS")) : 2;
  ThreadPool pool(threads);
  const model::LlamaConfig c = bench_config(name);
  const model::AdapterSpec spec = model::random_adapter_spec(c);
  const model::LlamaModel m = model::random_llama(c, DType::f32, pool, 1, 0.02f, spec);
  train::LlamaTrainModel tm(m, train::ParamGroup::finetune);
  const train::GroupOptions gopt{spec, c.n_layers, false};
  train::AdamW opt(train::group_params(train::ParamGroup::finetune, tm.params(), gopt), {0.9, 0.95, 1e-8, 0.02});
  const std::int64_t B = 4, S = 128, prompt = 32, Q = spec.query_len;
  std::vector<std::int32_t> tokens(std::size_t(B * S)), labels(tokens.size());
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    tokens[i] = std::int32_t(3 + (i * 2654435761u) % std::uint64_t(c.vocab_size - 3));
    labels[i] = std::int64_t(i) % S < prompt ? 0 : tokens[i];
  }
  std::vector<float> vq(std::size_t(B * Q * c.dim));
  for (std::size_t i = 0; i < vq.size(); ++i) vq[i] = float(int(i * 7919 % 2001) - 1000) * 1e-3f;
  const train::TrainBatch batch{tokens.data(), labels.data(), vq.data(), B, S, Q};
  for (auto _ : st) {
    tm.zero_grad();
    benchmark::DoNotOptimize(tm.forward_backward(pool, batch));
    opt.step(1e-4, tm.has_grad());
  }
  double frozen = 0, trainable = 0;
  model::LlamaWeights w = m.weights();
  model::for_each_tensor(w, c, spec, [&](const io::TensorSpec&, auto& slot) {
    if constexpr (std::is_same_v<std::decay_t<decltype(slot)>, MatPtr>) frozen += double(slot.bytes());
  });
  for (const train::TrainableTensor& t : tm.params()) trainable += 4.0 * double(t.value.numel());
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  const double act = activation_bytes(c, double(B), double(S), double(Q));
  st.counters["tokens_per_s"] = benchmark::Counter(double(B * S), benchmark::Counter::kIsIterationInvariantRate);
  st.counters["peak_rss_mib"] = mib(double(u.ru_maxrss) * 1024.0);
  st.counters["frozen_mib"] = mib(frozen);
  st.counters["trainable_mib"] = mib(trainable);
  st.counters["activations_mib"] = mib(act);
  st.counters["bound_mib"] = mib(frozen + 4 * trainable + act);
}

}  // namespace

BENCHMARK_CAPTURE(train_step, tiny, std::string("tiny"))->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(train_step, small, std::string("small"))->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_MAIN();
