// The official generation loop (docs/model.md, section 8), continuing a request's state:
//   feed the state's pending token (unless it is EOS) and the new ids, then one token per step;
//   stop at EOS, at a stop string, after max_new_tokens, when the callback says so, or when the
//   sequence reaches max_seq_len.
// The first call on a fresh state is the official one: prefill the whole prompt at position 0.
// A later call continues from where the state stands, so a chat does not prefill its earlier
// turns again.
//
// Streaming costs O(1) per token: each id is decoded once (Tokenizer::decode_next), and text is
// emitted as it completes, never part of a UTF-8 character and never the start of what may be a
// stop string. The streamed text equals `text` of the result.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "lav2/core/error.hpp"
#include "lav2/core/thread_pool.hpp"
#include "lav2/model/llama_model.hpp"
#include "lav2/model/run_state.hpp"
#include "lav2/text/sampling.hpp"
#include "lav2/text/tokenizer.hpp"

namespace lav2::model {

/// \brief Generation settings; defaults are the official generate()'s.
struct GenerateOptions {
  int max_new_tokens = 256;
  float temperature = 0.1f;  ///< <= 0: greedy
  float top_p = 0.75f;
  std::uint64_t seed = 0;
  std::vector<std::string> stop;  ///< end generation at the first of these (not emitted), e.g. "###"
  bool record_logits = false;     ///< keep every step's logits (for --dump and tests)
};

/// \brief What a generation produced, with timings.
struct GenerateResult {
  std::vector<int> generated_ids;  ///< includes the final EOS when that ended it
  std::string text;                ///< the decoded text, without EOS and without the stop string
  /// "eos", "length" (max_new_tokens), "max_seq_len", "stop" (a stop string) or "cancelled"
  /// (the callback returned false)
  std::string finish_reason;
  std::vector<float> step_logits;  ///< (n, vocab) when record_logits; row 0 = the prefill step
  double prefill_s = 0.0, decode_s = 0.0;
  std::int64_t prompt_tokens = 0;  ///< tokens prefilled by this call
  std::int64_t decode_steps = 0;
};

/// \brief Receives streamed text; returns false to stop generation at once.
using TextCallback = std::function<bool(std::string_view)>;

namespace detail {
/// Holds back the end of the text that may be the start of a stop string, and finds stop strings.
class StopMatcher {
 public:
  explicit StopMatcher(const std::vector<std::string>& stops) : stops_(stops) {
    for (const auto& s : stops_)
      if (s.empty()) LAV2_THROW(input_error, "a stop string is empty");
  }
  /// Position of the first stop string that ends within the last `added` bytes (+ overlap) of
  /// `text`, or npos. Only the tail is searched, so the cost per token is O(stop lengths).
  std::size_t find(const std::string& text, std::size_t added) const {
    std::size_t best = std::string::npos;
    for (const auto& s : stops_) {
      const std::size_t from = text.size() >= added + s.size() ? text.size() - added - s.size() : 0;
      const std::size_t at = text.find(s, from);
      best = std::min(best, at);
    }
    return best;
  }
  /// Bytes at the end of `text` that could begin a stop string.
  std::size_t held_back(const std::string& text) const {
    std::size_t hold = 0;
    for (const auto& s : stops_)
      for (std::size_t k = std::min(s.size() - 1, text.size()); k > hold; --k)
        if (text.compare(text.size() - k, k, s, 0, k) == 0) {
          hold = k;
          break;
        }
    return hold;
  }

 private:
  const std::vector<std::string>& stops_;
};
}  // namespace detail

/// \brief Runs the official loop over `state`, feeding `new_ids` (the prompt, or the next turn).
/// Throws input_error when there is nothing to feed or no room left under max_seq_len.
inline GenerateResult generate(const LlamaModel& model, RunState& state, ThreadPool& pool,
                               const text::Tokenizer& tokenizer, const std::vector<int>& new_ids,
                               const GenerateOptions& opt, const TextCallback& on_text = {}) {
  using clock = std::chrono::steady_clock;
  const std::int64_t vocab = model.config().vocab_size, max_seq = state.max_seq_len();
  if (opt.max_new_tokens < 0) LAV2_THROW(input_error, "max_new_tokens ", opt.max_new_tokens, " is negative");
  const detail::StopMatcher stops(opt.stop);
  text::Sampler sampler(opt.temperature, opt.top_p, opt.seed);

  std::vector<int> feed;
  if (state.pending >= 0 && state.pending != tokenizer.eos_id()) feed.push_back(state.pending);
  feed.insert(feed.end(), new_ids.begin(), new_ids.end());
  if (feed.empty()) LAV2_THROW(input_error, "the prompt is empty (no tokens)");
  const std::int64_t n_feed = std::int64_t(feed.size());
  if (state.position() + n_feed >= max_seq)
    LAV2_THROW(input_error, "the prompt has ", n_feed, " tokens after ", state.position(),
               " in the state, which leaves no room under max_seq_len ", max_seq, " (at most ",
               max_seq - 1 - state.position(), " prompt tokens)");

  GenerateResult r;
  if (opt.max_new_tokens == 0) {
    r.finish_reason = "length";
    return r;
  }
  state.pending = -1;
  r.prompt_tokens = n_feed;
  std::vector<float> logits(static_cast<std::size_t>(vocab));
  text::Tokenizer::DecodeState decoder;
  std::size_t emitted = 0;  // bytes of r.text already given to on_text
  bool cancelled = false;
  auto emit_upto = [&](std::size_t end) {
    if (end <= emitted) return;
    if (on_text && !on_text(std::string_view(r.text).substr(emitted, end - emitted))) cancelled = true;
    emitted = end;
  };

  const auto t0 = clock::now();
  model.forward(pool, state, feed.data(), n_feed, logits.data());
  const auto t1 = clock::now();
  r.prefill_s = std::chrono::duration<double>(t1 - t0).count();
  for (;;) {
    if (opt.record_logits) r.step_logits.insert(r.step_logits.end(), logits.begin(), logits.end());
    const int next = sampler.sample(logits.data(), vocab);
    r.generated_ids.push_back(next);
    state.pending = next;
    if (next == tokenizer.eos_id()) {
      r.finish_reason = "eos";
      break;
    }
    const std::size_t before = r.text.size();
    tokenizer.decode_next(next, decoder, r.text);
    if (const std::size_t at = stops.find(r.text, r.text.size() - before); at != std::string::npos) {
      r.text.resize(at);
      r.finish_reason = "stop";
      break;
    }
    emit_upto(r.text.size() - stops.held_back(r.text));
    if (cancelled) {
      r.finish_reason = "cancelled";
      break;
    }
    if (std::int64_t(r.generated_ids.size()) >= opt.max_new_tokens) {
      r.finish_reason = "length";
      break;
    }
    if (state.position() + 1 >= max_seq) {
      r.finish_reason = "max_seq_len";
      break;
    }
    state.pending = -1;
    model.forward(pool, state, &next, 1, logits.data());
    ++r.decode_steps;
  }
  r.decode_s = std::chrono::duration<double>(clock::now() - t1).count();
  if (r.finish_reason != "stop" && r.finish_reason != "cancelled") {
    text::Tokenizer::decode_finish(decoder, r.text);
    if (const std::size_t at = stops.find(r.text, r.text.size()); at != std::string::npos) {
      r.text.resize(at);
      r.finish_reason = "stop";
    }
  }
  if (!cancelled) emit_upto(r.text.size());
  return r;
}

}  // namespace lav2::model
