// The model flags that `chat` and `serve` share with `generate` (CONTRACT.md), and what they load:
// one immutable model (base + adapter), its tokenizer and, for a V2 adapter, the visual encoder.
// Requests then each make their own state over it (model/run_state.hpp).
//
//   auto flags = std::make_shared<ModelFlags>();
//   add_model_flags(sub, *flags);                  // --llama-dir | --model [--mm], --adapter, --clip, ...
//   ModelSession s = open_model_session(*flags);   // input_error / load_error naming the flag or file
//   Tensor<float> q = s.visual_query(pool, s.preprocess_file("cat.png"));
#pragma once

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <lav2/core/error.hpp>
#include <lav2/core/thread_pool.hpp>
#include <lav2/model/generate.hpp>
#include <lav2/model/gguf_llama.hpp>
#include <lav2/model/gguf_mm.hpp>
#include <lav2/model/llama_loader.hpp>
#include <lav2/model/model_loader.hpp>
#include <lav2/text/tokenizer.hpp>
#include <lav2/vision/image.hpp>
#include <lav2/vision/image_preprocess.hpp>
#include <lav2/vision/visual_encoder.hpp>

#include "model_files.hpp"
#include "options.hpp"
#include "process_stats.hpp"
#include "progress.hpp"

namespace lav2::cli {

/// \brief The files and per-request sizes of a model, as the flags give them.
struct ModelFlags {
  std::string llama_dir, model, mm, tokenizer, adapter, clip;
  std::string channel_order = "bgr", kv_dtype = "f32";
  int visual_heads = 16, threads = 0, max_seq_len = 512;
  bool verbose = false;
};

/// \brief Declares generate's model flags (same names, defaults and help) on `sub`.
inline void add_model_flags(Options& sub, ModelFlags& f) {
  sub.add("--llama-dir", f.llama_dir, "Meta LLaMA dir: params.json + consolidated.00.pth (or one *.safetensors)");
  sub.add("--model", f.model, "a GGUF LLaMA (llama.cpp's layout, tokenizer inside), in place of --llama-dir");
  sub.add("--mm", f.mm, "the lav2 part beside --model (lav2 convert --out-mm): adapter, CLIP, projector");
  sub.add("--tokenizer", f.tokenizer,
          "tokenizer.model (default DIR/../tokenizer.model, then DIR/tokenizer.model; with --model: the GGUF's)");
  sub.add("--adapter", f.adapter,
          "official LLaMA-Adapter V2 checkpoint (.pth holding {'model','config'}); needs --clip");
  sub.add("--clip", f.clip, "OpenAI CLIP archive (.pt, TorchScript) or a state_dict .pth / safetensors");
  sub.add("--channel-order", f.channel_order, "bgr (default: the released weights were trained on BGR) | rgb")
      .one_of({"bgr", "rgb"});
  sub.add("--visual-heads", f.visual_heads, "heads of the visual blocks (16; not inferable from the checkpoint)");
  sub.add("--threads", f.threads, "threads (0: all cores)").range(0, 1024);
  sub.add("--max-seq-len", f.max_seq_len, "prompt + generated tokens at most (512, as officially)");
  sub.add("--kv-dtype", f.kv_dtype, "KV cache element type: f32 (default) | f16 (half the memory)")
      .one_of({"f32", "f16"});
  sub.flag("--verbose", f.verbose, "print the time of every stage on stderr (load, image, prefill, decode, RSS)");
}

/// \brief A loaded model and what requests need beside it. Immutable once opened: any number of
/// request states, each with its own thread pool, may run over it at once.
struct ModelSession {
  ModelFlags flags;
  std::optional<text::Tokenizer> tokenizer;
  std::optional<model::LoadedModel> loaded;
  std::optional<vision::VisualEncoder> encoder;  ///< for adapters that take a visual query (V2)
  double load_s = 0.0;

  const model::LlamaModel& model() const { return loaded->model; }
  const text::Tokenizer& tok() const { return *tokenizer; }
  bool takes_visual() const { return encoder.has_value(); }
  vision::ChannelOrder order() const {
    return flags.channel_order == "rgb" ? vision::ChannelOrder::rgb : vision::ChannelOrder::bgr;
  }
  model::StateOptions state_options() const {
    model::StateOptions o;
    o.max_seq_len = flags.max_seq_len;
    o.kv_dtype = flags.kv_dtype == "f16" ? model::KvDType::f16 : model::KvDType::f32;
    return o;
  }
  /// The CLIP input of a decoded image: resized, cropped and normalised (vision/image_preprocess.hpp).
  Tensor<float> preprocess(const vision::Image& img) const { return vision::preprocess_clip(img); }
  Tensor<float> preprocess_file(const std::string& path) const { return encoder->preprocess_file(path, order()); }
  /// The visual query [Q, dim] of a preprocessed image, or of the all-zero image (the official
  /// text-only path) when `image` is null.
  Tensor<float> visual_query(ThreadPool& pool, const Tensor<float>* image) const {
    return image ? encoder->encode(pool, *image) : encoder->encode_zero_image(pool);
  }
  /// A fresh request state over the model with `query` [Q, dim] (null for a model without a
  /// visual branch).
  model::RunState new_state(ThreadPool& pool, const Tensor<float>* query) const {
    return model().new_state(pool, state_options(), query ? query->data() : nullptr, query ? query->dim(0) : 0);
  }
};

namespace detail {

// The flag combinations that name a model, checked before any file is read.
inline void check_model_flags(const ModelFlags& f) {
  if (f.llama_dir.empty() == f.model.empty())
    LAV2_THROW(input_error, "give exactly one of --llama-dir (Meta's LLaMA directory) or --model (a GGUF file)");
  if (!f.mm.empty()) {
    if (f.model.empty()) LAV2_THROW(input_error, "--mm needs --model (the lav2 part goes beside a GGUF base)");
    if (!f.adapter.empty() || !f.clip.empty())
      LAV2_THROW(input_error, "--mm holds the adapter and CLIP: give it in place of --adapter and --clip");
  }
  if (f.adapter.empty() && f.mm.empty() && !f.clip.empty())
    LAV2_THROW(input_error, "--clip needs --adapter (plain LLaMA has no visual branch)");
  if (f.visual_heads < 1) LAV2_THROW(input_error, "--visual-heads ", f.visual_heads, " must be positive");
  if (f.max_seq_len < 2 || f.max_seq_len > 1 << 20)
    LAV2_THROW(input_error, "--max-seq-len ", f.max_seq_len, " is outside [2, 1048576]");
}

}  // namespace detail

/// \brief The weight files of a model, for the loading bar: `files` that are given, and the
/// checkpoint of `llama_dir` (skipped when there is none: the loader reports that).
inline std::vector<std::string> weight_files(const std::string& llama_dir, std::vector<std::string> files) {
  files.erase(std::remove(files.begin(), files.end(), std::string()), files.end());
  if (!llama_dir.empty()) {
    try {
      files.push_back(model::find_llama_checkpoint(llama_dir));
    } catch (const lav2::error&) {
    }
  }
  return files;
}

/// \brief Opens the model the flags name; input_error / load_error naming the flag or file.
inline ModelSession open_model_session(const ModelFlags& f) {
  namespace fs = std::filesystem;
  detail::check_model_flags(f);
  if (!f.llama_dir.empty()) {
    std::error_code ec;
    if (!fs::is_directory(f.llama_dir, ec))
      LAV2_THROW(input_error, "--llama-dir '", f.llama_dir, "' is not a directory");
  }
  ProcessTimer timer;
  preload_with_progress(weight_files(f.llama_dir, {f.model, f.mm, f.adapter, f.clip}));
  ModelSession s;
  s.flags = f;
  std::shared_ptr<const model::LlamaDir> base;
  if (f.model.empty()) {
    s.tokenizer = text::Tokenizer::load(resolve_tokenizer(f.tokenizer, f.llama_dir));
    base = model::open_llama_base(f.llama_dir, s.tokenizer->vocab_size());
  } else {
    model::GgufLlama gguf = model::open_gguf_llama(f.model);
    base = std::move(gguf.base);
    s.tokenizer = f.tokenizer.empty() ? std::move(gguf.tokenizer) : text::Tokenizer::load(f.tokenizer);
    if (s.tokenizer->vocab_size() != base->config.vocab_size)
      LAV2_THROW(input_error, "--tokenizer '", f.tokenizer, "' has ", s.tokenizer->vocab_size(), " pieces, but '",
                 f.model, "' has ", base->config.vocab_size, " embedding rows");
  }
  std::optional<model::GgufMm> part;
  if (!f.mm.empty()) {
    part = model::open_gguf_mm(f.mm, base->config);
    s.loaded = model::LoadedModel{base, model::build_model(base, &part->adapter), part->adapter};
  } else {
    s.loaded = model::load_model(base, f.adapter);
  }
  const model::LlamaModel& m = s.loaded->model;
  if (m.spec().takes_visual()) {
    if (!part && f.clip.empty())
      LAV2_THROW(input_error,
                 "--adapter needs --clip: LLaMA-Adapter V2 computes its visual query with CLIP, even without an "
                 "image (the official text-only path encodes the all-zero image)");
    auto clip = std::make_shared<const vision::ClipVisionModel>(
        part ? vision::ClipVisionModel::from_tensors(part->clip, f.mm, part->keep_alive)
             : vision::ClipVisionModel::load(f.clip));
    s.encoder = vision::VisualEncoder::from_adapter(std::move(clip), s.loaded->adapter.tensors, s.loaded->adapter.path,
                                                    part ? part->visual_heads : f.visual_heads);
    if (s.encoder->dim() != m.config().dim)
      LAV2_THROW(load_error, "checkpoint '", s.loaded->adapter.path, "': visual_proj gives width ", s.encoder->dim(),
                 ", but the LLaMA dim is ", m.config().dim);
  }
  s.load_s = timer.seconds();
  return s;
}

/// \brief Per-stage times of one request, for --verbose.
struct StageTimes {
  double load_s = -1.0, image_encode_s = -1.0;  ///< < 0: not part of this request
  std::int64_t prefill_tokens = 0, decode_tokens = 0;
  double prefill_s = 0.0, decode_s = 0.0;
};

/// \brief One line on stderr: `lav2: load 0.51 s | image encode 0.12 s | prefill 37 tokens in 0.02 s
/// (1850.0 tok/s) | decode 24 tokens in 0.01 s (2400.0 tok/s) | peak RSS 9.1 MiB`.
inline void print_stage_times(const StageTimes& t, const std::string& prefix = "lav2: ") {
  auto rate = [](std::int64_t n, double s) { return s > 0 ? double(n) / s : 0.0; };
  std::string line = prefix;
  char buf[160];
  if (t.load_s >= 0) line += (std::snprintf(buf, sizeof buf, "load %.3f s | ", t.load_s), buf);
  if (t.image_encode_s >= 0) line += (std::snprintf(buf, sizeof buf, "image encode %.3f s | ", t.image_encode_s), buf);
  std::snprintf(buf, sizeof buf,
                "prefill %lld tokens in %.3f s (%.1f tok/s) | decode %lld tokens in %.3f s (%.1f tok/s)",
                static_cast<long long>(t.prefill_tokens), t.prefill_s, rate(t.prefill_tokens, t.prefill_s),
                static_cast<long long>(t.decode_tokens), t.decode_s, rate(t.decode_tokens, t.decode_s));
  line += buf;
  std::snprintf(buf, sizeof buf, " | peak RSS %.1f MiB\n", double(peak_rss_bytes()) / (1024.0 * 1024.0));
  line += buf;
  std::fputs(line.c_str(), stderr);
}

/// \brief The sampling flags `chat` and `serve` share with `generate`, read straight into the
/// generation options (the official defaults).
using SamplingFlags = model::GenerateOptions;

inline void add_sampling_flags(Options& sub, SamplingFlags& f) {
  sub.add("--max-new-tokens", f.max_new_tokens, "tokens to generate at most per answer (256)");
  sub.add("--temperature", f.temperature, "sampling temperature (0.1; <= 0 greedy)");
  sub.add("--top-p", f.top_p, "nucleus sampling mass (0.75)");
  sub.add("--seed", f.seed, "sampling seed (0)");
  sub.add("--stop", f.stop, "end an answer at this text, not emitted (repeatable)");
}

/// \brief The flags as generation options; input_error naming the flag for values out of range.
inline model::GenerateOptions generate_options(const SamplingFlags& f) {
  if (f.max_new_tokens < 0) LAV2_THROW(input_error, "--max-new-tokens ", f.max_new_tokens, " is negative");
  if (!(f.top_p > 0.0f && f.top_p <= 1.0f)) LAV2_THROW(input_error, "--top-p ", f.top_p, " is outside (0, 1]");
  for (const std::string& s : f.stop)
    if (s.empty()) LAV2_THROW(input_error, "--stop: an empty text");
  return f;
}

}  // namespace lav2::cli
