// `lav2 generate`: text generation with Meta's LLaMA files (CONTRACT.md).
//   lav2 generate --llama-dir DIR | --model BASE.gguf [--mm LAV2.gguf] [--tokenizer FILE] --prompt TEXT [--template alpaca|alpaca-input|none]
//                 [--input TEXT] [--max-new-tokens N] [--temperature T] [--top-p P] [--seed S]
//                 [--threads N] [--max-seq-len N] [--kv-dtype f32|f16] [--stop TEXT]... [--dump DIR] [--json]
//                 [--adapter FILE --clip FILE] [--image FILE] [--expert caption=FILE | --expert ocr]...
//                 [--expert-template FILE]
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include <lav2/core/error.hpp>
#include <lav2/core/thread_pool.hpp>
#include <lav2/experts/caption_expert.hpp>
#include <lav2/experts/expert.hpp>
#include <lav2/experts/ocr_expert.hpp>
#include <lav2/experts/prompt_composer.hpp>
#include <lav2/io/npy.hpp>
#include <lav2/model/generate.hpp>
#include <lav2/model/gguf_llama.hpp>
#include <lav2/model/gguf_mm.hpp>
#include <lav2/model/model_loader.hpp>
#include <lav2/text/prompt.hpp>
#include <lav2/text/tokenizer.hpp>
#include <lav2/vision/visual_encoder.hpp>

#include "command.hpp"
#include "model_files.hpp"
#include "model_session.hpp"
#include "process_stats.hpp"

namespace fs = std::filesystem;

namespace {

struct GenerateArgs {
  std::string llama_dir, model, mm, tokenizer, prompt, input, tmpl = "alpaca", dump, adapter, clip, image,
                                                              channel_order = "bgr", kv_dtype = "f32", expert_template;
  std::vector<std::string> stop, experts;
  bool has_input = false, json = false, verbose = false;
  int max_new_tokens = 256, threads = 0, max_seq_len = 512, visual_heads = 16;
  float temperature = 0.1f, top_p = 0.75f;
  std::uint64_t seed = 0;
};

// The visual branch of an adapter model (vision::VisualEncoder): the image, or the all-zero
// normalised image, -> CLIP -> projector -> visual query [Q, dim], every step kept for --dump.
struct VisualResult {
  lav2::vision::VisualEncoding steps;  // image [3,224,224], features [257,C], query [Q,dim]
  double seconds = 0.0;
};

lav2::Tensor<float> copy_of(const lav2::Tensor<float>& t) {
  lav2::Tensor<float> c(t.shape());
  std::copy(t.begin(), t.end(), c.begin());
  return c;
}

// The CLIP tower, loaded once for the main model and the caption expert. `mm`: the lav2 part,
// whose CLIP tower replaces --clip.
std::shared_ptr<const lav2::vision::ClipVisionModel> load_clip(const GenerateArgs& a, const lav2::model::GgufMm* mm) {
  using lav2::vision::ClipVisionModel;
  return std::make_shared<const ClipVisionModel>(mm ? ClipVisionModel::from_tensors(mm->clip, a.mm, mm->keep_alive)
                                                    : ClipVisionModel::load(a.clip));
}

// `image`: the request's image (its CLIP features are computed once and shared with the caption
// expert), or null for the all-zero image. `mm`: its visual heads replace --visual-heads.
VisualResult encode_visual(const GenerateArgs& a, const lav2::model::LoadedModel& loaded, const lav2::model::GgufMm* mm,
                           const std::shared_ptr<const lav2::vision::ClipVisionModel>& clip,
                           lav2::experts::ImageContext* image, int model_dim, lav2::ThreadPool& pool) {
  using namespace lav2;
  cli::ProcessTimer timer;
  const std::string& adapter_file = loaded.adapter.path;
  const auto encoder = vision::VisualEncoder::from_adapter(clip, loaded.adapter.tensors, adapter_file,
                                                           mm ? mm->visual_heads : a.visual_heads);
  if (encoder.dim() != model_dim)
    LAV2_THROW(load_error, "checkpoint '", adapter_file, "': visual_proj gives width ", encoder.dim(),
               ", but the LLaMA dim is ", model_dim);
  VisualResult r;
  if (image) {
    r.steps.features = copy_of(image->clip_features(pool, *clip));
    r.steps.image = copy_of(image->clip_input(*clip));
    r.steps.query = encoder.project(pool, r.steps.features);
  } else {
    r.steps = encoder.encode_steps(pool, encoder.zero_image());
  }
  r.seconds = timer.seconds();
  return r;
}

// One --expert value: "ocr" or "caption=FILE".
struct ExpertFlag {
  std::string kind, file;
};

// Checks every --expert value before anything loads (exit 2 naming the flag).
std::vector<ExpertFlag> parse_expert_flags(const std::vector<std::string>& values) {
  using lav2::input_error;
  std::vector<ExpertFlag> out;
  for (const std::string& v : values) {
    const std::size_t eq = v.find('=');
    const std::string kind = v.substr(0, eq), file = eq == std::string::npos ? "" : v.substr(eq + 1);
    if (kind == "ocr") {
      if (eq != std::string::npos) LAV2_THROW(input_error, "--expert ocr takes no value (got '--expert ", v, "')");
      if (!lav2::experts::kOcrAvailable)
        LAV2_THROW(input_error,
                   "--expert ocr: this lav2 was built without Tesseract (configure with "
                   "-DLAV2_WITH_TESSERACT=ON; docs/experts.md)");
    } else if (kind == "caption") {
      if (file.empty()) LAV2_THROW(input_error, "--expert caption needs the caption checkpoint: --expert caption=FILE");
      std::error_code ec;
      if (!fs::is_regular_file(file, ec)) LAV2_THROW(input_error, "--expert caption='", file, "': no such file");
    } else {
      LAV2_THROW(input_error, "--expert '", v, "' is not an expert; the experts are caption=FILE and ocr");
    }
    out.push_back({kind, file});
  }
  return out;
}

// The experts, in the order of their flags; load errors name the flag.
std::vector<std::unique_ptr<lav2::experts::Expert>> load_experts(
    const GenerateArgs& a, const std::vector<ExpertFlag>& flags,
    const std::shared_ptr<const lav2::model::LlamaDir>& base,
    const std::shared_ptr<const lav2::vision::ClipVisionModel>& clip, const lav2::text::Tokenizer& tokenizer,
    const lav2::model::GgufMm* mm) {
  using namespace lav2;
  std::vector<std::unique_ptr<experts::Expert>> out;
  for (const ExpertFlag& f : flags) {
    if (f.kind == "caption") {
      experts::CaptionOptions opt;
      opt.visual_heads = mm ? mm->visual_heads : a.visual_heads;
      opt.state.kv_dtype = a.kv_dtype == "f16" ? model::KvDType::f16 : model::KvDType::f32;
      try {
        out.push_back(experts::CaptionExpert::load(base, clip, f.file, tokenizer, opt));
      } catch (const load_error& e) {
        LAV2_THROW(load_error, "--expert caption='", f.file, "': ", e.what());
      }
    } else {
#if LAV2_WITH_TESSERACT
      out.push_back(std::make_unique<experts::OcrExpert>());
#endif
    }
  }
  return out;
}

template <class T>
void dump_npy(const fs::path& path, const lav2::Tensor<T>& t, lav2::Shape shape) {
  lav2::io::write_npy(path.string(), lav2::TensorView<const T>(t.data(), shape));
}

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f << text;
  if (!f) LAV2_THROW(lav2::input_error, "--dump: cannot write '", path.string(), "'");
}

int run_generate(const GenerateArgs& a) {
  using namespace lav2;
  if (a.has_input && a.tmpl != "alpaca-input")
    LAV2_THROW(input_error, "--input is accepted only with --template alpaca-input (got --template ", a.tmpl, ")");
  if (!a.mm.empty() && a.model.empty())
    LAV2_THROW(input_error, "--mm needs --model (the lav2 part goes beside a GGUF base)");
  if (!a.mm.empty() && (!a.adapter.empty() || !a.clip.empty()))
    LAV2_THROW(input_error, "--mm holds the adapter and CLIP: give it in place of --adapter and --clip");
  const std::vector<ExpertFlag> expert_flags = parse_expert_flags(a.experts);
  const bool caption_expert =
      std::any_of(expert_flags.begin(), expert_flags.end(), [](const ExpertFlag& f) { return f.kind == "caption"; });
  // Plain LLaMA takes an image and a CLIP only for its experts.
  if (a.adapter.empty() && a.mm.empty() && !a.clip.empty() && !caption_expert)
    LAV2_THROW(input_error, "--clip and --image need --adapter (plain LLaMA has no visual branch)");
  if (a.adapter.empty() && a.mm.empty() && !a.image.empty() && expert_flags.empty())
    LAV2_THROW(input_error, "--clip and --image need --adapter (plain LLaMA has no visual branch)");
  if (!expert_flags.empty() && a.image.empty())
    LAV2_THROW(input_error, "--expert needs --image (the experts read the image)");
  if (caption_expert && a.clip.empty() && a.mm.empty())
    LAV2_THROW(input_error, "--expert caption needs --clip (the caption adapter's visual branch runs on CLIP)");
  if (!a.expert_template.empty() && expert_flags.empty()) LAV2_THROW(input_error, "--expert-template needs --expert");
  // Read now, so that a bad template fails before the model loads.
  const experts::ExpertTemplate expert_template =
      a.expert_template.empty() ? experts::ExpertTemplate{} : experts::read_expert_template(a.expert_template);
  if (a.visual_heads < 1) LAV2_THROW(input_error, "--visual-heads ", a.visual_heads, " must be positive");
  if (a.max_new_tokens < 0) LAV2_THROW(input_error, "--max-new-tokens ", a.max_new_tokens, " is negative");
  if (a.max_seq_len < 2 || a.max_seq_len > 1 << 20)
    LAV2_THROW(input_error, "--max-seq-len ", a.max_seq_len, " is outside [2, 1048576]");
  // The sampler checks these too, but only after loading, and without the flag's name.
  if (!(a.top_p > 0.0f && a.top_p <= 1.0f)) LAV2_THROW(input_error, "--top-p ", a.top_p, " is outside (0, 1]");

  if (a.llama_dir.empty() == a.model.empty())
    LAV2_THROW(input_error, "give exactly one of --llama-dir (Meta's LLaMA directory) or --model (a GGUF file)");
  // --dump's directory exists before any work, so a bad path fails at once, not after generating.
  if (!a.dump.empty()) {
    std::error_code ec;
    fs::create_directories(a.dump, ec);
    if (ec || !fs::is_directory(a.dump))
      LAV2_THROW(input_error, "--dump: cannot create directory '", a.dump, "'", ec ? ": " + ec.message() : "");
  }
  cli::ProcessTimer timer;
  cli::preload_with_progress(cli::weight_files(a.llama_dir, {a.model, a.mm, a.adapter, a.clip}));  // a bar on a TTY
  // The base: Meta's directory with its tokenizer.model, or a GGUF with the tokenizer inside
  // (--tokenizer overrides it; its size must still match the embedding).
  std::optional<text::Tokenizer> tok;
  std::shared_ptr<const model::LlamaDir> base;
  if (!a.model.empty()) {
    model::GgufLlama g = model::open_gguf_llama(a.model);
    base = std::move(g.base);
    tok = a.tokenizer.empty() ? std::move(g.tokenizer) : text::Tokenizer::load(a.tokenizer);
    if (tok->vocab_size() != base->config.vocab_size)
      LAV2_THROW(input_error, "--tokenizer '", a.tokenizer, "' has ", tok->vocab_size(), " pieces, but '", a.model,
                 "' has ", base->config.vocab_size, " embedding rows");
  } else {
    std::error_code ec;
    if (!fs::is_directory(a.llama_dir, ec))
      LAV2_THROW(input_error, "--llama-dir '", a.llama_dir, "' is not a directory");
    tok = text::Tokenizer::load(cli::resolve_tokenizer(a.tokenizer, a.llama_dir));
    base = model::open_llama_base(a.llama_dir, tok->vocab_size());
  }
  const text::Tokenizer& tokenizer = *tok;
  std::optional<model::GgufMm> mm;
  if (!a.mm.empty()) mm = model::open_gguf_mm(a.mm, base->config);
  const model::LoadedModel loaded = mm ? model::LoadedModel{base, model::build_model(base, &mm->adapter), mm->adapter}
                                       : model::load_model(base, a.adapter);
  const model::LlamaModel& m = loaded.model;
  const bool takes_visual = m.spec().takes_visual();
  if (!takes_visual && !a.image.empty() && expert_flags.empty())
    LAV2_THROW(input_error, "--image: the adapter '", loaded.adapter.path, "' (", m.spec().describe(),
               ") has no visual branch");
  if (takes_visual && a.clip.empty() && !mm)
    LAV2_THROW(input_error,
               "--adapter needs --clip: LLaMA-Adapter V2 computes its visual query with CLIP, even without "
               "--image (the official text-only path encodes the all-zero image)");
  // One CLIP tower for the main model and the caption expert.
  std::shared_ptr<const vision::ClipVisionModel> clip;
  if (takes_visual || caption_expert) clip = load_clip(a, mm ? &*mm : nullptr);
  const auto expert_models = load_experts(a, expert_flags, base, clip, tokenizer, mm ? &*mm : nullptr);
  const double load_s = timer.seconds();
  ThreadPool pool(a.threads);

  // The request's image, decoded once: CLIP encodes it once for the main model and the caption
  // expert, and OCR reads its pixels.
  cli::ProcessTimer decode_timer;
  std::optional<experts::ImageContext> image;
  const auto order = a.channel_order == "rgb" ? vision::ChannelOrder::rgb : vision::ChannelOrder::bgr;
  if (!a.image.empty()) image.emplace(vision::load_image(a.image, {}, order));
  const double decode_s = decode_timer.seconds();

  // The visual query, for adapters that take one (V2); computed once, before generation.
  VisualResult visual;
  if (takes_visual) {
    visual = encode_visual(a, loaded, mm ? &*mm : nullptr, clip, image ? &*image : nullptr, m.config().dim, pool);
    visual.seconds += decode_s;  // image_encode_s: decoding, preprocessing, CLIP and projector
  }

  // The experts read the image; their text joins the prompt (experts/prompt_composer.hpp).
  cli::ProcessTimer expert_timer;
  std::vector<experts::ExpertText> expert_texts;
  for (const auto& e : expert_models) expert_texts.push_back(e->run(*image, pool));
  const double experts_s = expert_timer.seconds();

  const auto tmpl = text::parse_prompt_template(a.tmpl);
  const std::string prompt = experts::compose_prompt(
      tmpl, a.prompt, a.has_input ? std::optional<std::string_view>(a.input) : std::optional<std::string_view>(),
      expert_texts, expert_template);
  const std::vector<int> prompt_ids = tokenizer.encode(prompt, /*bos=*/true, /*eos=*/false);

  model::StateOptions state_opt;
  state_opt.max_seq_len = a.max_seq_len;
  state_opt.kv_dtype = a.kv_dtype == "f16" ? model::KvDType::f16 : model::KvDType::f32;
  const Tensor<float>& query = visual.steps.query;
  auto state = m.new_state(pool, state_opt, takes_visual ? query.data() : nullptr, takes_visual ? query.dim(0) : 0);

  model::GenerateOptions opt;
  opt.max_new_tokens = a.max_new_tokens;
  opt.temperature = a.temperature;
  opt.top_p = a.top_p;
  opt.seed = a.seed;
  opt.stop = a.stop;
  opt.record_logits = !a.dump.empty();
  auto stream = [&](std::string_view piece) {
    if (a.json) return true;
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::fflush(stdout);
    return true;
  };
  const model::GenerateResult r = model::generate(m, state, pool, tokenizer, prompt_ids, opt, stream);
  if (!a.json) std::fputc('\n', stdout);

  if (!a.dump.empty()) {
    const fs::path dir(a.dump);  // created before loading
    const std::int64_t vocab = tokenizer.vocab_size(), n = std::int64_t(r.generated_ids.size());
    std::vector<std::int64_t> ids64(prompt_ids.begin(), prompt_ids.end());
    io::write_npy((dir / "prompt_ids.npy").string(),
                  TensorView<const std::int64_t>(ids64.data(), Shape{std::int64_t(ids64.size())}));
    if (n > 0)
      io::write_npy((dir / "prompt_last_logits.npy").string(),
                    TensorView<const float>(r.step_logits.data(), Shape{1, vocab}));
    io::write_npy((dir / "step_logits.npy").string(), TensorView<const float>(r.step_logits.data(), Shape{n, vocab}));
    std::vector<std::int64_t> gen64(r.generated_ids.begin(), r.generated_ids.end());
    io::write_npy((dir / "generated_ids.npy").string(), TensorView<const std::int64_t>(gen64.data(), Shape{n}));
    write_text(dir / "prompt.txt", prompt);
    if (takes_visual) {
      const vision::VisualEncoding& v = visual.steps;
      const Shape& img = v.image.shape();
      dump_npy(dir / "image_preprocessed.npy", v.image, Shape{1, img[0], img[1], img[2]});
      dump_npy(dir / "clip_features.npy", v.features, Shape{1, v.features.dim(0), v.features.dim(1)});
      dump_npy(dir / "visual_query.npy", v.query, Shape{1, v.query.dim(0), v.query.dim(1)});
    }
  }
  if (a.verbose) {
    cli::StageTimes t;
    t.load_s = load_s;
    t.image_encode_s = takes_visual ? visual.seconds : -1.0;
    t.prefill_tokens = r.prompt_tokens, t.prefill_s = r.prefill_s;
    t.decode_tokens = r.decode_steps, t.decode_s = r.decode_s;
    cli::print_stage_times(t);
  }
  if (a.json) {
    nlohmann::json j;
    j["text"] = r.text;
    j["token_ids"] = r.generated_ids;
    j["finish_reason"] = r.finish_reason;
    j["timings"] = {{"load_s", load_s},
                    {"image_encode_s", visual.seconds},
                    {"prefill_tok_s", r.prefill_s > 0 ? double(r.prompt_tokens) / r.prefill_s : 0.0},
                    {"decode_tok_s", r.decode_s > 0 ? double(r.decode_steps) / r.decode_s : 0.0},
                    {"experts_s", experts_s}};
    if (!expert_texts.empty()) {
      j["experts"] = nlohmann::json::array();
      for (const experts::ExpertText& e : expert_texts)
        j["experts"].push_back({{"expert", e.expert}, {"lines", e.lines}});
    }
    j["peak_rss_bytes"] = cli::peak_rss_bytes();
    std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  }
  return 0;
}

const lav2::cli::CommandRegistrar kRegister{
    "generate", "Generate text with LLaMA or LLaMA-Adapter V2 (with an image)", [](lav2::cli::Options& sub) {
      auto a = std::make_shared<GenerateArgs>();
      sub.add("--llama-dir", a->llama_dir, "Meta LLaMA dir: params.json + consolidated.00.pth (or one *.safetensors)");
      sub.add("--model", a->model, "a GGUF LLaMA (llama.cpp's layout, tokenizer inside), in place of --llama-dir");
      sub.add("--mm", a->mm, "the lav2 part beside --model (lav2 convert --out-mm): adapter, CLIP, projector");
      sub.add("--tokenizer", a->tokenizer,
              "tokenizer.model (default DIR/../tokenizer.model, then DIR/tokenizer.model; with --model: the GGUF's)");
      sub.add("--prompt", a->prompt, "the instruction").required();
      sub.add("--template", a->tmpl, "alpaca | alpaca-input | none").one_of({"alpaca", "alpaca-input", "none"});
      sub.add(
          "--input",
          [a](const std::string& v) {
            a->input = v;
            a->has_input = true;
          },
          "input text (only with --template alpaca-input)");
      sub.add("--max-new-tokens", a->max_new_tokens, "tokens to generate at most (256)");
      sub.add("--temperature", a->temperature, "sampling temperature (0.1; <= 0 greedy)");
      sub.add("--top-p", a->top_p, "nucleus sampling mass (0.75)");
      sub.add("--seed", a->seed, "sampling seed (0)");
      sub.add("--threads", a->threads, "threads (0: all cores)").range(0, 1024);
      sub.add("--max-seq-len", a->max_seq_len, "prompt + generated tokens at most (512, as officially)");
      sub.add("--kv-dtype", a->kv_dtype, "KV cache element type: f32 (default) | f16 (half the memory)")
          .one_of({"f32", "f16"});
      sub.add("--stop", a->stop, "end generation at this text, not emitted (repeatable; e.g. ###)");
      sub.add("--dump", a->dump, "write .npy files of ids and logits, and prompt.txt, into DIR");
      sub.flag("--json", a->json, "print one JSON object instead of streaming text");
      sub.flag("--verbose", a->verbose, "print the time of every stage on stderr (load, image, prefill, decode, RSS)");
      sub.add("--adapter", a->adapter,
              "official LLaMA-Adapter V2 checkpoint (.pth holding {'model','config'}); needs --clip");
      sub.add("--clip", a->clip, "OpenAI CLIP archive (.pt, TorchScript) or a state_dict .pth / safetensors");
      sub.add("--image", a->image, "PNG/JPEG; without it an adapter uses the all-zero normalised image");
      sub.add("--channel-order", a->channel_order, "bgr (default: the released weights were trained on BGR) | rgb")
          .one_of({"bgr", "rgb"});
      sub.add("--visual-heads", a->visual_heads, "heads of the visual blocks (16; not inferable from the checkpoint)");
      sub.add("--expert", a->experts,
              "caption=FILE (a caption adapter over the same base and CLIP) | ocr (Tesseract); repeatable: "
              "their text joins the prompt (docs/experts.md)");
      sub.add("--expert-template", a->expert_template, "JSON file overriding the expert context's wording");
      return [a] { return run_generate(*a); };
    }};

}  // namespace
