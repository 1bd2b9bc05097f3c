// `lav2 generate`: text generation with Meta's LLaMA files (CONTRACT.md, issue 3).
//   lav2 generate --llama-dir DIR [--tokenizer FILE] --prompt TEXT [--template alpaca|alpaca-input|none]
//                 [--input TEXT] [--max-new-tokens N] [--temperature T] [--top-p P] [--seed S]
//                 [--threads N] [--max-seq-len N] [--dump DIR] [--json]
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include <lav2/core/error.hpp>
#include <lav2/core/thread_pool.hpp>
#include <lav2/io/npy.hpp>
#include <lav2/model/generate.hpp>
#include <lav2/model/model_loader.hpp>
#include <lav2/text/prompt.hpp>
#include <lav2/text/tokenizer.hpp>

#include "command.hpp"
#include "process_stats.hpp"

namespace fs = std::filesystem;

namespace {

struct GenerateArgs {
  std::string llama_dir, tokenizer, prompt, input, tmpl = "alpaca", dump, adapter, clip, image;
  bool has_input = false, json = false;
  int max_new_tokens = 256, threads = 0, max_seq_len = 512;
  float temperature = 0.1f, top_p = 0.75f;
  std::uint64_t seed = 0;
};

// --tokenizer defaults to DIR/../tokenizer.model, then DIR/tokenizer.model (Meta's layout).
std::string resolve_tokenizer(const GenerateArgs& a) {
  if (!a.tokenizer.empty()) return a.tokenizer;
  const fs::path dir(a.llama_dir);
  for (const fs::path& p : {dir / ".." / "tokenizer.model", dir / "tokenizer.model"})
    if (fs::exists(p)) return p.lexically_normal().string();
  LAV2_THROW(lav2::input_error, "--tokenizer not given and no tokenizer.model in '", (dir / "..").lexically_normal().string(),
             "' or '", dir.string(), "'");
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
  if (!a.adapter.empty() || !a.clip.empty() || !a.image.empty())
    LAV2_THROW(input_error, "--adapter/--clip/--image: the adapter and its visual branch are not in this build yet "
                            "(LLaMA-Adapter V2 model and CLIP issues); run without them for plain LLaMA");
  if (a.max_new_tokens < 0) LAV2_THROW(input_error, "--max-new-tokens ", a.max_new_tokens, " is negative");
  if (a.max_seq_len < 2 || a.max_seq_len > 1 << 20)
    LAV2_THROW(input_error, "--max-seq-len ", a.max_seq_len, " is outside [2, 1048576]");

  std::error_code ec;
  if (!fs::is_directory(a.llama_dir, ec)) LAV2_THROW(input_error, "--llama-dir '", a.llama_dir, "' is not a directory");
  cli::ProcessTimer timer;
  const auto tokenizer = text::Tokenizer::load(resolve_tokenizer(a));
  auto loaded = model::load_llama(a.llama_dir, tokenizer.vocab_size(), a.max_seq_len);
  const double load_s = timer.seconds();

  const auto tmpl = text::parse_prompt_template(a.tmpl);
  const std::string prompt = text::format_prompt(tmpl, a.prompt, a.has_input ? std::optional<std::string_view>(a.input)
                                                                             : std::optional<std::string_view>());
  const std::vector<int> prompt_ids = tokenizer.encode(prompt, /*bos=*/true, /*eos=*/false);

  ThreadPool pool(a.threads);
  model::GenerateOptions opt;
  opt.max_new_tokens = a.max_new_tokens;
  opt.temperature = a.temperature;
  opt.top_p = a.top_p;
  opt.seed = a.seed;
  opt.record_logits = !a.dump.empty();
  auto stream = [&](std::string_view piece) {
    if (a.json) return;
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::fflush(stdout);
  };
  const model::GenerateResult r = std::visit(
      [&](auto& m) { return model::generate(m, pool, tokenizer, prompt_ids, opt, stream); }, loaded.model);
  if (!a.json) std::fputc('\n', stdout);

  if (!a.dump.empty()) {
    const fs::path dir(a.dump);
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) LAV2_THROW(input_error, "--dump: cannot create directory '", a.dump, "': ", ec.message());
    const std::int64_t vocab = tokenizer.vocab_size(), n = std::int64_t(r.generated_ids.size());
    std::vector<std::int64_t> ids64(prompt_ids.begin(), prompt_ids.end());
    io::write_npy((dir / "prompt_ids.npy").string(), TensorView<const std::int64_t>(ids64.data(), Shape{std::int64_t(ids64.size())}));
    if (n > 0) io::write_npy((dir / "prompt_last_logits.npy").string(), TensorView<const float>(r.step_logits.data(), Shape{1, vocab}));
    io::write_npy((dir / "step_logits.npy").string(), TensorView<const float>(r.step_logits.data(), Shape{n, vocab}));
    std::vector<std::int64_t> gen64(r.generated_ids.begin(), r.generated_ids.end());
    io::write_npy((dir / "generated_ids.npy").string(), TensorView<const std::int64_t>(gen64.data(), Shape{n}));
    write_text(dir / "prompt.txt", prompt);
  }
  if (a.json) {
    nlohmann::json j;
    j["text"] = r.text;
    j["token_ids"] = r.generated_ids;
    j["finish_reason"] = r.finish_reason;
    j["timings"] = {{"load_s", load_s},
                    {"image_encode_s", 0.0},
                    {"prefill_tok_s", r.prefill_s > 0 ? double(r.prompt_tokens) / r.prefill_s : 0.0},
                    {"decode_tok_s", r.decode_s > 0 ? double(r.decode_steps) / r.decode_s : 0.0}};
    j["peak_rss_bytes"] = cli::peak_rss_bytes();
    std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  }
  return 0;
}

const lav2::cli::CommandRegistrar kRegister{
    "generate", "Generate text with LLaMA (and, later, LLaMA-Adapter V2)", [](CLI::App& sub) {
      auto a = std::make_shared<GenerateArgs>();
      sub.add_option("--llama-dir", a->llama_dir, "Meta LLaMA dir: params.json + consolidated.*.pth")->required();
      sub.add_option("--tokenizer", a->tokenizer, "tokenizer.model (default DIR/../tokenizer.model, then DIR/tokenizer.model)");
      sub.add_option("--prompt", a->prompt, "the instruction")->required();
      sub.add_option("--template", a->tmpl, "alpaca | alpaca-input | none")->check(CLI::IsMember({"alpaca", "alpaca-input", "none"}));
      sub.add_option_function<std::string>("--input", [a](const std::string& v) { a->input = v; a->has_input = true; },
                                           "input text (only with --template alpaca-input)");
      sub.add_option("--max-new-tokens", a->max_new_tokens, "tokens to generate at most (256)");
      sub.add_option("--temperature", a->temperature, "sampling temperature (0.1; <= 0 greedy)");
      sub.add_option("--top-p", a->top_p, "nucleus sampling mass (0.75)");
      sub.add_option("--seed", a->seed, "sampling seed (0)");
      sub.add_option("--threads", a->threads, "threads (0: all cores)")->check(CLI::Range(0, 1024));
      sub.add_option("--max-seq-len", a->max_seq_len, "prompt + generated tokens at most (512, as officially)");
      sub.add_option("--dump", a->dump, "write .npy files of ids and logits, and prompt.txt, into DIR");
      sub.add_flag("--json", a->json, "print one JSON object instead of streaming text");
      sub.add_option("--adapter", a->adapter, "official LLaMA-Adapter V2 checkpoint (.pth)");
      sub.add_option("--clip", a->clip, "OpenAI CLIP archive (.pt)");
      sub.add_option("--image", a->image, "PNG/JPEG image");
      return [a] { return run_generate(*a); };
    }};

}  // namespace
