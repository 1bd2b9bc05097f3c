// Runs the built `lav2` binary with arguments (through /bin/sh) and captures its output.
#pragma once

#include <doctest/doctest.h>

#include <sys/wait.h>
#include <cstdio>
#include <string>

namespace lav2::test {

struct CliResult {
  int code = -1;    ///< exit code; the test fails if the process died from a signal
  std::string out;  ///< stdout and stderr together
};

/// Single-quotes `s` for the shell.
inline std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += (c == '\'') ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

/// Runs `lav2 <args>`; `args` is shell text (quote paths with shell_quote). `launcher` (shell
/// text) goes before the binary, e.g. "prlimit --as=1073741824".
inline CliResult run_cli(const std::string& args, const std::string& launcher = "") {
  const std::string cmd = launcher + (launcher.empty() ? "" : " ") + shell_quote(LAV2_CLI_PATH) + " " + args + " 2>&1";
  CliResult r;
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int status = pclose(p);
  REQUIRE(WIFEXITED(status));  // never a signal
  r.code = WEXITSTATUS(status);
  return r;
}

}  // namespace lav2::test
