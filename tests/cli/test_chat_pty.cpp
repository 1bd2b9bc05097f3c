// `lav2 chat` in a pseudo-terminal, as a person uses it: the prompt, the streamed answer, Ctrl-C
// typed on the terminal (the line discipline turns it into SIGINT) stopping the answer, and the
// next prompt still working.
//
// The first answer runs, uninterrupted, to about 10,800 tokens (15 s on one loaded core): Ctrl-C
// is typed as soon as its first bytes appear, so it always comes while the answer is being
// generated. The turn after /reset ("Thanks") ends by itself with EOS after 79 tokens.
#include <doctest/doctest.h>

#include <poll.h>
#include <pty.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

#include "cli/child_process.hpp"

namespace {

const std::string kData = LAV2_TEST_DATA_DIR;

class PtyChild {
 public:
  explicit PtyChild(std::vector<std::string> args) {
    args.insert(args.begin(), LAV2_CLI_PATH);
    std::vector<char*> argv;
    for (std::string& s : args) argv.push_back(s.data());
    argv.push_back(nullptr);
    pid_ = forkpty(&master_, nullptr, nullptr, nullptr);
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
  }
  ~PtyChild() {
    if (!reaped_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    ::close(master_);
  }
  void type(const std::string& s) { REQUIRE(::write(master_, s.data(), s.size()) == ssize_t(s.size())); }
  /// Reads until `needle` appears at or after byte `from` of the output; returns where it ends.
  std::size_t read_until(const std::string& needle, std::size_t from = 0) {
    for (;;) {
      const std::size_t at = out_.find(needle, from);
      if (at != std::string::npos) return at + needle.size();
      lav2::test::wait_readable(master_, out_);
      char buf[4096];
      const ssize_t n = ::read(master_, buf, sizeof buf);
      REQUIRE_MESSAGE(n > 0, "the terminal closed waiting for '", needle, "'; output: ", out_);
      out_.append(buf, std::size_t(n));
    }
  }
  const std::string& out() const { return out_; }
  int wait() {
    reaped_ = true;
    return lav2::test::wait_exit(pid_);
  }

 private:
  pid_t pid_ = -1;
  int master_ = -1;
  bool reaped_ = false;
  std::string out_;
};

}  // namespace

TEST_CASE("chat in a terminal: Ctrl-C stops the current answer, and the next prompt still works") {
  PtyChild chat({"chat", "--llama-dir", kData + "/tiny_llama/tiny", "--adapter",
                 kData + "/tiny_adapter/full_bias/adapter.pth", "--clip", kData + "/tiny_clip/ViT-tiny.pt",
                 "--temperature", "0", "--threads", "1", "--max-new-tokens", "60000", "--max-seq-len", "65536",
                 "--verbose"});
  std::size_t at = chat.read_until("> ");  // after the banner
  CHECK(chat.out().find("/image PATH, /reset, /quit") < at);
  chat.type("Tell me a story.\n");
  at = chat.read_until("Tell me a story.\r\n", at);  // the terminal's echo
  chat.read_until(std::string(), at + 1);            // and the first bytes of the answer
  chat.type("\x03");                                 // Ctrl-C
  at = chat.read_until("lav2: answer stopped (Ctrl-C)", at);
  at = chat.read_until("> ", at);
  CHECK(chat.out().find("(cancelled)") != std::string::npos);
  chat.type("/reset\n");
  at = chat.read_until("lav2: history cleared", at);
  at = chat.read_until("> ", at);
  chat.type("Thanks\n");
  at = chat.read_until("Thanks\r\n", at);
  at = chat.read_until("generated 79 (eos)", at);  // the answer ran to its end,
  chat.read_until("> ", at);                       // and a new prompt follows
  chat.type("/quit\n");
  CHECK(chat.wait() == 0);
}
