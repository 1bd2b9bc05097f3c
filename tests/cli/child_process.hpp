// Runs the built `lav2` binary as a child with pipes to its stdin and stdout (stderr goes to a
// file), for the tests that talk to it while it runs: `lav2 chat` turn by turn, `lav2 serve`.
// A read that sees nothing for kHangSeconds fails the test instead of hanging it (a guard, not a
// measurement).
#pragma once

#include <doctest/doctest.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace lav2::test {

/// A read that sees nothing for this long fails the test.
constexpr int kHangSeconds = 300;

/// Waits for `pid` to exit; its exit code (the test fails if a signal ended it).
inline int wait_exit(pid_t pid) {
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  return WEXITSTATUS(status);
}

/// Waits until `fd` has something to read; fails the test after kHangSeconds, showing `so_far`.
inline void wait_readable(int fd, const std::string& so_far) {
  pollfd p{fd, POLLIN, 0};
  int r;
  while ((r = ::poll(&p, 1, kHangSeconds * 1000)) < 0 && errno == EINTR) {
  }
  REQUIRE_MESSAGE(r > 0, "no output from lav2 for ", kHangSeconds, " s; so far: ", so_far);
}

class ChildProcess {
 public:
  static constexpr int kHangSeconds = lav2::test::kHangSeconds;

  /// Starts `lav2 args...`. `stdout_pipe_bytes` > 0 shrinks the stdout pipe to that capacity
  /// (F_SETPIPE_SZ; at least a page), so the child blocks once that much is unread.
  explicit ChildProcess(const std::vector<std::string>& args, int stdout_pipe_bytes = 0) {
    static int counter = 0;
    err_path_ = (std::filesystem::temp_directory_path() /
                 ("lav2_child_" + std::to_string(::getpid()) + "_" + std::to_string(counter++) + ".err"))
                    .string();
    int in[2], out[2];
    REQUIRE(::pipe(in) == 0);
    REQUIRE(::pipe(out) == 0);
    if (stdout_pipe_bytes > 0) REQUIRE(::fcntl(out[1], F_SETPIPE_SZ, stdout_pipe_bytes) >= stdout_pipe_bytes);
    std::vector<std::string> argv_s{LAV2_CLI_PATH};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& s : argv_s) argv.push_back(s.data());
    argv.push_back(nullptr);
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      const int err = ::open(err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      ::dup2(in[0], 0);
      ::dup2(out[1], 1);
      if (err >= 0) ::dup2(err, 2);
      ::close(in[1]);
      ::close(out[0]);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    in_ = in[1];
    out_ = out[0];
    ::signal(SIGPIPE, SIG_IGN);  // a child that exits early makes write_stdin fail, not kill the test
  }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess() {
    if (in_ >= 0) ::close(in_);
    if (out_ >= 0) ::close(out_);
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    std::error_code ec;
    std::filesystem::remove(err_path_, ec);
  }

  pid_t pid() const { return pid_; }
  void write_stdin(const std::string& s) {
    std::size_t done = 0;
    while (done < s.size()) {
      const ssize_t n = ::write(in_, s.data() + done, s.size() - done);
      if (n < 0 && errno == EINTR) continue;
      REQUIRE(n > 0);
      done += std::size_t(n);
    }
  }
  void close_stdin() {
    if (in_ >= 0) ::close(in_);
    in_ = -1;
  }
  void send_signal(int sig) { REQUIRE(::kill(pid_, sig) == 0); }

  /// Reads stdout until what has been read (since construction) contains `needle` after byte
  /// `from`; false at end of output without it.
  bool read_until(const std::string& needle, std::size_t from = 0) {
    while (out_text_.find(needle, from) == std::string::npos)
      if (!read_some()) return false;
    return true;
  }
  /// Reads stdout until at least `n` bytes have come; false at end of output before that.
  bool read_bytes(std::size_t n) {
    while (out_text_.size() < n)
      if (!read_some()) return false;
    return true;
  }
  /// Reads stdout to its end.
  const std::string& read_all() {
    while (read_some()) {
    }
    return out_text_;
  }
  const std::string& out() const { return out_text_; }
  /// Everything the child wrote to stderr so far.
  std::string err() const {
    std::ifstream f(err_path_, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
  }
  /// Waits for the exit; the exit code (the test fails if a signal ended the child).
  int wait() {
    reaped_ = true;
    return wait_exit(pid_);
  }

 private:
  bool read_some() {
    if (out_ < 0) return false;
    wait_readable(out_, out_text_);
    char buf[4096];
    ssize_t n;
    while ((n = ::read(out_, buf, sizeof buf)) < 0 && errno == EINTR) {
    }
    if (n <= 0) {
      ::close(out_);
      out_ = -1;
      return false;
    }
    out_text_.append(buf, std::size_t(n));
    return true;
  }

  pid_t pid_ = -1;
  int in_ = -1, out_ = -1;
  bool reaped_ = false;
  std::string out_text_, err_path_;
};

}  // namespace lav2::test
