// `lav2 chat`: an interactive multi-turn conversation, optionally about an image (CONTRACT.md,
// docs/cli.md). Reads one instruction per line from stdin and streams each answer to stdout.
//   lav2 chat <model flags of generate> [--image FILE] [--system TEXT] [sampling flags] [--verbose]
//   lines: TEXT | /image PATH | /reset | /quit      (end of input quits too)
//
// The conversation is one request state (model/run_state.hpp) that each turn continues: the
// first turn prefills the official alpaca prompt; a later turn feeds only the answer's last token
// and alpaca_next_turn(instruction) (text/conversation.hpp), never the earlier turns again. When a
// turn would not fit under --max-seq-len with room for --max-new-tokens, the oldest turns are
// dropped and what remains, whose positions have shifted, is prefilled once more in a new state.
// /image starts a new state too (the visual query is part of every layer's prompt K/V), keeping
// the history. Ctrl-C (SIGINT) stops the current answer; the conversation goes on.
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <lav2/core/error.hpp>
#include <lav2/core/thread_pool.hpp>
#include <lav2/model/generate.hpp>
#include <lav2/text/conversation.hpp>

#include "command.hpp"
#include "model_session.hpp"
#include "process_stats.hpp"

namespace {

using namespace lav2;

struct ChatArgs {
  cli::ModelFlags model;
  cli::SamplingFlags sampling;
  std::string image, system;
};

std::atomic<bool> g_interrupted{false};
extern "C" void on_sigint(int) { g_interrupted.store(true); }

// Installs the SIGINT handler without SA_RESTART, so that a read() at the prompt returns EINTR.
void install_sigint_handler() {
  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;
  sigaction(SIGINT, &sa, nullptr);
}

enum class Input { line, eof, interrupted };

// One line of stdin (without its '\n', and without a '\r' before it). read() rather than stdio so
// that Ctrl-C at the prompt is seen (EINTR) instead of ending the input.
class LineReader {
 public:
  Input next(std::string& line) {
    line.clear();
    for (;;) {
      if (const std::size_t nl = buf_.find('\n'); nl != std::string::npos) {
        line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        return Input::line;
      }
      if (eof_) {
        if (buf_.empty()) return Input::eof;
        line.swap(buf_);
        return Input::line;
      }
      char chunk[4096];
      const ssize_t n = ::read(STDIN_FILENO, chunk, sizeof chunk);
      if (n < 0 && errno == EINTR) return Input::interrupted;
      if (n <= 0) eof_ = true;
      else buf_.append(chunk, std::size_t(n));
    }
  }

 private:
  std::string buf_;
  bool eof_ = false;
};

class Chat {
 public:
  Chat(const ChatArgs& a, const cli::ModelSession& s)
      : a_(a), s_(s), pool_(a.model.threads), opt_(cli::generate_options(a.sampling)) {
    if (!a.image.empty()) set_image(a.image);
  }

  void set_image(const std::string& path) {
    if (!s_.takes_visual())
      LAV2_THROW(input_error, "/image: the model (", s_.model().spec().describe(), ") has no visual branch");
    image_ = s_.preprocess_file(path);
    query_.reset();
    state_.reset();  // the history stays; it is prefilled again under the new image
  }

  void reset() {
    history_.clear();
    state_.reset();
  }

  // One turn: feeds the instruction, streams the answer, keeps it in the history.
  void turn(const std::string& instruction) {
    ++turn_;
    const text::Tokenizer& tok = s_.tok();
    const std::int64_t max_seq = a_.model.max_seq_len;
    const std::int64_t reserve = std::min<std::int64_t>(opt_.max_new_tokens, max_seq / 2);
    std::vector<int> ids;
    int dropped = 0;
    const bool had_history = !history_.empty();
    if (state_) {
      ids = continuation_ids(instruction);
      const std::int64_t pending = state_->pending >= 0 && state_->pending != tok.eos_id() ? 1 : 0;
      if (state_->position() + pending + std::int64_t(ids.size()) + reserve > max_seq) state_.reset();
    }
    cli::StageTimes times;
    if (!state_) {
      // A new state: the whole conversation, the oldest turns dropped until it fits.
      ids = tok.encode(conversation(instruction), /*bos=*/true, /*eos=*/false);
      while (!history_.empty() && std::int64_t(ids.size()) + reserve > max_seq) {
        history_.erase(history_.begin());
        ++dropped;
        ids = tok.encode(conversation(instruction), true, false);
      }
      if (std::int64_t(ids.size()) >= max_seq)
        LAV2_THROW(input_error, "the instruction makes a prompt of ", ids.size(),
                   " tokens, which leaves no room under ", "--max-seq-len ", max_seq);
      if (s_.takes_visual() && !query_) {
        cli::ProcessTimer t;
        query_ = s_.visual_query(pool_, image_ ? &*image_ : nullptr);
        times.image_encode_s = t.seconds();
      }
      state_ = s_.new_state(pool_, query_ ? &*query_ : nullptr);
    }
    const std::int64_t start = state_->position();
    g_interrupted.store(false);
    auto stream = [](std::string_view piece) {
      std::fwrite(piece.data(), 1, piece.size(), stdout);
      std::fflush(stdout);
      return !g_interrupted.load();
    };
    const model::GenerateResult r = model::generate(s_.model(), *state_, pool_, tok, ids, opt_, stream);
    std::fputc('\n', stdout);
    std::fflush(stdout);
    history_.push_back({instruction, r.text});
    // A stop string ends the text before the tokens that spell it, which the state holds: the next
    // turn starts a new state from the history's text instead.
    const bool restart = r.finish_reason == "stop";
    if (r.finish_reason == "cancelled") std::fprintf(stderr, "lav2: answer stopped (Ctrl-C)\n");
    if (a_.model.verbose) {
      std::fprintf(stderr,
                   "lav2: turn %d: prefilled %lld tokens at position %lld%s, generated %zu (%s), position %lld\n",
                   turn_, static_cast<long long>(r.prompt_tokens), static_cast<long long>(start),
                   dropped ? (", after dropping " + std::to_string(dropped) + " oldest turn(s)").c_str()
                   : start == 0 && had_history ? ", the history prefilled again"
                                               : "",
                   r.generated_ids.size(), r.finish_reason.c_str(), static_cast<long long>(state_->position()));
      times.load_s = turn_ == 1 ? s_.load_s : -1.0;
      times.prefill_tokens = r.prompt_tokens, times.prefill_s = r.prefill_s;
      times.decode_tokens = r.decode_steps, times.decode_s = r.decode_s;
      cli::print_stage_times(times, "lav2: turn " + std::to_string(turn_) + ": ");
    }
    if (restart) state_.reset();
  }

 private:
  // The history with the system text joined to its first instruction, then `instruction`.
  std::string conversation(const std::string& instruction) const {
    std::vector<text::ConversationTurn> turns = history_;
    if (!turns.empty()) turns.front().instruction = text::with_system_text(a_.system, turns.front().instruction);
    return text::format_alpaca_conversation(
        turns, turns.empty() ? text::with_system_text(a_.system, instruction) : instruction);
  }

  // The ids of alpaca_next_turn(instruction) as they continue the text: SentencePiece's dummy
  // prefix puts a lone "▁" before the text's first character, which mid-text would be a space
  // that the full prompt does not have, so it is left out.
  std::vector<int> continuation_ids(const std::string& instruction) const {
    const text::Tokenizer& tok = s_.tok();
    std::vector<int> ids = tok.encode(text::alpaca_next_turn(instruction), false, false);
    if (!ids.empty() && tok.id_to_piece(ids.front()) == "\xe2\x96\x81") ids.erase(ids.begin());
    return ids;
  }

  const ChatArgs& a_;
  const cli::ModelSession& s_;
  ThreadPool pool_;
  model::GenerateOptions opt_;
  std::optional<Tensor<float>> image_, query_;
  std::optional<model::RunState> state_;
  std::vector<text::ConversationTurn> history_;
  int turn_ = 0;
};

int run_chat(const ChatArgs& a) {
  (void)cli::generate_options(a.sampling);  // flag errors before loading
  const cli::ModelSession session = cli::open_model_session(a.model);
  if (!a.image.empty() && !session.takes_visual())
    LAV2_THROW(input_error, "--image: the model (", session.model().spec().describe(), ") has no visual branch");
  Chat chat(a, session);
  install_sigint_handler();
  const bool interactive = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
  if (interactive)
    std::fprintf(stderr,
                 "lav2 chat: type an instruction; /image PATH, /reset, /quit. Ctrl-C stops an answer.\n"
                 "(The released model was trained on single turns: earlier turns are context it has not learned.)\n");
  LineReader in;
  std::string line;
  for (;;) {
    if (interactive) {
      std::fputs("> ", stdout);
      std::fflush(stdout);
    }
    const Input got = in.next(line);
    if (got == Input::eof) break;
    if (got == Input::interrupted) {
      if (interactive) std::fputc('\n', stdout);
      continue;
    }
    if (line.empty()) continue;
    try {
      if (line == "/quit") break;
      if (line == "/reset") {
        chat.reset();
        std::fprintf(stderr, "lav2: history cleared\n");
      } else if (line.rfind("/image", 0) == 0 && (line.size() == 6 || line[6] == ' ')) {
        const std::string path = line.size() > 7 ? line.substr(7) : "";
        if (path.empty()) LAV2_THROW(input_error, "/image needs a path: /image PATH");
        chat.set_image(path);
        std::fprintf(stderr, "lav2: image '%s' loaded\n", path.c_str());
      } else if (line[0] == '/' && line.size() > 1 && line[1] != '/') {
        LAV2_THROW(input_error, "unknown command '", line, "' (the commands are /image PATH, /reset, /quit; start a ",
                   "line with // to send a text that begins with /)");
      } else {
        chat.turn(line[0] == '/' ? line.substr(1) : line);
      }
    } catch (const lav2::error& e) {
      // A bad image or an over-long instruction ends that line, not the conversation.
      std::fprintf(stderr, "lav2: error: %s\n", e.what());
    }
  }
  return 0;
}

const lav2::cli::CommandRegistrar kRegister{
    "chat", "Chat with LLaMA-Adapter V2 about an image, one line per turn", [](lav2::cli::Options& sub) {
      auto a = std::make_shared<ChatArgs>();
      sub.add("--image", a->image, "PNG/JPEG to talk about (later: /image PATH); none: the all-zero image");
      sub.add("--system", a->system, "text put before the first instruction (on the line above it)");
      cli::add_model_flags(sub, a->model);
      cli::add_sampling_flags(sub, a->sampling);
      return [a] { return run_chat(*a); };
    }};

}  // namespace
