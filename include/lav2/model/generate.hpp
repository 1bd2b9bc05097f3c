// The official generation loop (spec section 7), for one prompt:
//   prefill the whole prompt at position 0, then one token per step; stop at EOS, after
//   max_new_tokens, or when prompt + generated tokens reach max_seq_len.
// Text is streamed as it completes: never part of a UTF-8 character, and the streamed text equals
// the decode of the generated ids (EOS excluded).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "lav2/core/error.hpp"
#include "lav2/core/thread_pool.hpp"
#include "lav2/text/sampling.hpp"

namespace lav2::model {

/// \brief Generation settings; defaults are the official generate()'s.
struct GenerateOptions {
  int max_new_tokens = 256;
  float temperature = 0.1f;  ///< <= 0: greedy
  float top_p = 0.75f;
  std::uint64_t seed = 0;
  bool record_logits = false;  ///< keep every step's logits (for --dump and tests)
};

/// \brief What a generation produced, with timings.
struct GenerateResult {
  std::vector<int> generated_ids;   ///< includes the final EOS when that ended it
  std::string text;                 ///< decode of generated_ids without EOS
  std::string finish_reason;        ///< "eos", "length" (max_new_tokens) or "max_seq_len"
  std::vector<float> step_logits;   ///< (n, vocab) when record_logits; row 0 = the prefill step
  double prefill_s = 0.0, decode_s = 0.0;
  std::int64_t prompt_tokens = 0, decode_steps = 0;
};

namespace detail {
/// Emits the growing decode of a token sequence while holding back a trailing U+FFFD, which may
/// still be an incomplete multi-byte character spread over byte-fallback pieces.
class TextStreamer {
 public:
  /// `full` is the decode of all ids so far (valid UTF-8, as SentencePiece's decode always is);
  /// returns the text not yet emitted, minus a held-back trailing run of U+FFFD unless `final`.
  std::string update(const std::string& full, bool final) {
    static constexpr std::string_view kReplacement = "\xEF\xBF\xBD";
    std::size_t stable = full.size();
    if (!final)
      while (stable >= emitted_ + 3 && std::string_view(full).substr(stable - 3, 3) == kReplacement) stable -= 3;
    if (stable <= emitted_) return {};
    std::string out = full.substr(emitted_, stable - emitted_);
    emitted_ = stable;
    return out;
  }

 private:
  std::size_t emitted_ = 0;
};
}  // namespace detail

/// \brief Runs the official loop on `model` (a LlamaModel-like type with forward/new_cache/config)
/// and `tokenizer` (decode, eos_id). `on_text` receives streamed text pieces.
template <class Model, class Tok>
GenerateResult generate(Model& model, ThreadPool& pool, const Tok& tokenizer, const std::vector<int>& prompt_ids,
                        const GenerateOptions& opt, const std::function<void(std::string_view)>& on_text = {}) {
  using clock = std::chrono::steady_clock;
  const auto& cfg = model.config();
  const std::int64_t n_prompt = std::int64_t(prompt_ids.size());
  if (n_prompt == 0) LAV2_THROW(input_error, "the prompt is empty (no tokens)");
  if (n_prompt >= cfg.max_seq_len)
    LAV2_THROW(input_error, "the prompt has ", n_prompt, " tokens, which leaves no room under max_seq_len ", cfg.max_seq_len,
               " (at most ", cfg.max_seq_len - 1, " prompt tokens)");
  if (opt.max_new_tokens < 0) LAV2_THROW(input_error, "max_new_tokens ", opt.max_new_tokens, " is negative");

  GenerateResult r;
  r.prompt_tokens = n_prompt;
  text::Sampler sampler(opt.temperature, opt.top_p, opt.seed);
  auto cache = model.new_cache();
  std::vector<float> logits(std::size_t(cfg.vocab_size));
  std::vector<int> visible;  // generated ids without EOS, for decoding
  detail::TextStreamer streamer;
  if (opt.max_new_tokens == 0) {
    r.finish_reason = "length";
    return r;
  }

  auto t0 = clock::now();
  model.forward(pool, prompt_ids.data(), n_prompt, cache, logits.data());
  auto t1 = clock::now();
  r.prefill_s = std::chrono::duration<double>(t1 - t0).count();
  for (;;) {
    if (opt.record_logits) r.step_logits.insert(r.step_logits.end(), logits.begin(), logits.end());
    const int next = sampler.sample(logits.data(), cfg.vocab_size);
    r.generated_ids.push_back(next);
    if (next == tokenizer.eos_id()) {
      r.finish_reason = "eos";
      break;
    }
    visible.push_back(next);
    if (on_text) {
      const std::string piece = streamer.update(tokenizer.decode(visible), false);
      if (!piece.empty()) on_text(piece);
    }
    if (std::int64_t(r.generated_ids.size()) >= opt.max_new_tokens) {
      r.finish_reason = "length";
      break;
    }
    if (n_prompt + std::int64_t(r.generated_ids.size()) >= cfg.max_seq_len) {
      r.finish_reason = "max_seq_len";
      break;
    }
    model.forward(pool, &next, 1, cache, logits.data());
    ++r.decode_steps;
  }
  r.decode_s = std::chrono::duration<double>(clock::now() - t1).count();
  r.text = tokenizer.decode(visible);
  if (on_text) {
    const std::string rest = streamer.update(r.text, true);
    if (!rest.empty()) on_text(rest);
  }
  return r;
}

}  // namespace lav2::model
