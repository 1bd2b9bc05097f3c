// `lav2 chat` driven through pipes: later turns prefill only their new tokens (the counts that
// --verbose reports, checked against the tokenizer), the oldest turns are dropped to fit
// --max-seq-len and the rest prefilled once more, the commands, and SIGINT stopping an answer
// while the conversation goes on.
#include <doctest/doctest.h>

#include <signal.h>

#include <regex>
#include <string>
#include <vector>

#include <lav2/text/conversation.hpp>
#include <lav2/text/tokenizer.hpp>

#include "cli/child_process.hpp"
#include "cli/cli_runner.hpp"

namespace {

const std::string kData = LAV2_TEST_DATA_DIR;
const std::string kTiny = kData + "/tiny_llama/tiny";

std::vector<std::string> chat_args(std::vector<std::string> extra) {
  std::vector<std::string> a{"chat", "--llama-dir", kTiny, "--temperature", "0", "--threads", "1", "--verbose"};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

struct TurnLog {
  long long prefilled, start, end;
  std::string rest;  // what follows "at position N" up to the end position
};

// The "lav2: turn N: prefilled P tokens at position A..., position B" lines of --verbose.
std::vector<TurnLog> turn_logs(const std::string& err) {
  std::vector<TurnLog> out;
  const std::regex re(R"(lav2: turn \d+: prefilled (\d+) tokens at position (\d+)([^\n]*), position (\d+)\n)");
  for (auto it = std::sregex_iterator(err.begin(), err.end(), re); it != std::sregex_iterator(); ++it)
    out.push_back({std::stoll((*it)[1]), std::stoll((*it)[2]), std::stoll((*it)[4]), (*it)[3]});
  return out;
}

// The ids a later turn feeds for `instruction`: alpaca_next_turn without the dummy-prefix "▁".
std::size_t continuation_tokens(const lav2::text::Tokenizer& tok, const std::string& instruction) {
  std::vector<int> ids = tok.encode(lav2::text::alpaca_next_turn(instruction), false, false);
  if (!ids.empty() && tok.id_to_piece(ids.front()) == "\xe2\x96\x81") ids.erase(ids.begin());
  return ids.size();
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("chat: a three-turn conversation prefills only the new tokens of each turn") {
  const auto tok = lav2::text::Tokenizer::load(kData + "/tiny_llama/tokenizer.model");
  const std::vector<std::string> turns = {"What is an alpaca?", "And a llama?", "Thanks!"};
  lav2::test::ChildProcess chat(chat_args({"--max-new-tokens", "8", "--max-seq-len", "512"}));
  for (const std::string& t : turns) chat.write_stdin(t + "\n");
  chat.close_stdin();
  chat.read_all();
  REQUIRE(chat.wait() == 0);
  const std::vector<TurnLog> log = turn_logs(chat.err());
  REQUIRE(log.size() == 3);
  // Turn 1: the official prompt, from position 0.
  CHECK(log[0].start == 0);
  CHECK(log[0].prefilled ==
        std::int64_t(
            tok.encode(lav2::text::format_prompt(lav2::text::PromptTemplate::alpaca, turns[0]), true, false).size()));
  for (std::size_t i = 1; i < 3; ++i) {
    INFO("turn ", i + 1);
    // Each answer ran its 8 tokens ("length"), so its last token is fed with the next turn.
    CHECK(contains(log[i - 1].rest, "generated 8 (length)"));
    CHECK(log[i].start == log[i - 1].end);  // the state continues where the last turn left it
    CHECK(log[i].prefilled == 1 + std::int64_t(continuation_tokens(tok, turns[i])));
  }
  // Prefilling the whole conversation again would have fed every earlier position.
  CHECK(log[2].prefilled < log[2].start);
  CHECK(contains(chat.err(), "lav2: turn 1: load "));  // the stage times, load only on the first turn
  CHECK(contains(chat.err(), "tok/s) | decode 7 tokens in"));
  CHECK(contains(chat.err(), "peak RSS"));
}

TEST_CASE("chat: the oldest turns are dropped to fit --max-seq-len, and the rest prefilled once more") {
  // The tiny tokenizer spells most text letter by letter: the prompt alone is about 110 tokens.
  lav2::test::ChildProcess chat(chat_args({"--max-new-tokens", "8", "--max-seq-len", "200"}));
  chat.write_stdin("What is an alpaca?\nAnd a llama?\nThanks!\n");
  chat.close_stdin();
  chat.read_all();
  REQUIRE(chat.wait() == 0);
  const std::vector<TurnLog> log = turn_logs(chat.err());
  REQUIRE(log.size() == 3);
  CHECK(log[1].start == log[0].end);  // turn 2 still fits: continued
  CHECK(log[2].start == 0);           // turn 3 does not: a new state
  CHECK(contains(log[2].rest, "after dropping 1 oldest turn(s)"));
  CHECK(log[2].prefilled + 8 <= 200);
  CHECK(log[2].prefilled > log[0].prefilled);  // turn 2 is still in it
}

TEST_CASE("chat: /reset, /image and unknown commands; errors end the line, not the chat") {
  lav2::test::ChildProcess chat(chat_args({"--max-new-tokens", "4"}));
  chat.write_stdin("Hi\n/reset\nHi\n/image x.png\n/bogus\n//slash text\n/quit\nnever read\n");
  chat.close_stdin();
  chat.read_all();
  CHECK(chat.wait() == 0);
  const std::string err = chat.err();
  const std::vector<TurnLog> log = turn_logs(err);
  REQUIRE(log.size() == 3);  // Hi, Hi, "/slash text"; nothing after /quit
  CHECK(log[1].start == 0);  // after /reset
  CHECK(log[1].prefilled == log[0].prefilled);
  CHECK(log[2].start == log[1].end);
  CHECK(contains(err, "lav2: history cleared"));
  CHECK(contains(err, "lav2: error: /image: the model (LLaMA) has no visual branch"));
  CHECK(contains(err, "lav2: error: unknown command '/bogus'"));
}

TEST_CASE("chat: Ctrl-C (SIGINT) stops the current answer and the next turn still works") {
  // With this adapter and prompt the greedy answer runs to --max-seq-len, about 8 KB of text, and
  // the stdout pipe holds 4 KB: the answer cannot end before the test reads on, so the signal
  // always arrives while it is being generated.
  const std::string adapter = kData + "/tiny_adapter/full_bias/adapter.pth";
  lav2::test::ChildProcess chat(chat_args({"--adapter", adapter, "--clip", kData + "/tiny_clip/ViT-tiny.pt",
                                           "--max-new-tokens", "4000", "--max-seq-len", "4096"}),
                                4096);
  chat.write_stdin("Tell me a story.\n");
  REQUIRE(chat.read_bytes(1));  // the answer has begun
  chat.send_signal(SIGINT);
  chat.write_stdin("Hi\n");
  chat.close_stdin();
  chat.read_all();
  CHECK(chat.wait() == 0);  // not killed by the signal
  const std::string err = chat.err();
  CHECK(contains(err, "lav2: answer stopped (Ctrl-C)"));
  const std::vector<TurnLog> log = turn_logs(err);
  REQUIRE(log.size() == 2);
  CHECK(contains(log[0].rest, "(cancelled)"));
  CHECK(log[0].end < 4000);
  CHECK(log[1].start == log[0].end);  // the conversation continued
  CHECK(contains(log[1].rest, "generated"));
}

TEST_CASE("chat: end of input ends the chat with exit 0; model errors exit 2 before reading") {
  lav2::test::ChildProcess ok(chat_args({}));
  ok.close_stdin();
  CHECK(ok.read_all().empty());
  CHECK(ok.wait() == 0);
  lav2::test::ChildProcess bad({"chat", "--llama-dir", "/nonexistent"});
  bad.close_stdin();
  bad.read_all();
  CHECK(bad.wait() == 2);
  CHECK(contains(bad.err(), "lav2: error: --llama-dir '/nonexistent' is not a directory"));
}

TEST_CASE("chat: usage and input errors exit 2 with one 'lav2: error:' line, before reading any input") {
  const std::string tiny = "chat --llama-dir " + lav2::test::shell_quote(kTiny) + " ";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"chat --bogus", "unknown option '--bogus' for 'lav2 chat'"},
      {tiny + "--top-p 5", "--top-p 5 is outside (0, 1]"},
      {tiny + "--max-new-tokens -1", "--max-new-tokens -1 is negative"},
      {tiny + "--mm x.gguf", "--mm needs --model"},
      {tiny + "--image x.png", "--image: the model (LLaMA) has no visual branch"},
      {tiny + "--adapter " + lav2::test::shell_quote(kData + "/tiny_adapter/full_bias/adapter.pth"),
       "--adapter needs --clip"},
  };
  for (const auto& [args, message] : cases) {
    CAPTURE(args);
    const lav2::test::CliResult r = lav2::test::run_cli(args + " </dev/null");
    CHECK(r.code == 2);
    CHECK(r.out.rfind("lav2: error: ", 0) == 0);
    CHECK(r.out.find('\n') == r.out.size() - 1);
    CHECK(contains(r.out, message));
  }
}
