// Every subcommand's --help ends with copy-paste examples, and --verbose prints every stage's time.
#include <doctest/doctest.h>

#include <string>

#include "cli/cli_runner.hpp"

namespace {
const std::string kData = LAV2_TEST_DATA_DIR;
bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }
}  // namespace

TEST_CASE("--help of the tool and of every subcommand comes with examples") {
  const lav2::test::CliResult top = lav2::test::run_cli("--help");
  CHECK(top.code == 0);
  CHECK(contains(top.out, "Examples:"));
  for (const std::string cmd : {"generate", "chat", "serve", "tokenize", "info", "selfcheck", "bench", "convert"}) {
    INFO(cmd);
    CHECK(contains(top.out, "  " + cmd));  // listed at the top level
    const lav2::test::CliResult r = lav2::test::run_cli(cmd + " --help");
    CHECK(r.code == 0);
    CHECK(contains(r.out, "Examples:\n  lav2 " + cmd));
  }
}

TEST_CASE("generate --verbose prints the time of every stage on stderr") {
  const std::string m = "generate --llama-dir '" + kData + "/tiny_llama/tiny' --adapter '" + kData +
                        "/tiny_adapter/full_bias/adapter.pth' --clip '" + kData + "/tiny_clip/ViT-tiny.pt' ";
  const lav2::test::CliResult r = lav2::test::run_cli(m + "--prompt hi --max-new-tokens 4 --temperature 0 --verbose");
  REQUIRE(r.code == 0);
  for (const char* stage :
       {"lav2: load ", " s | image encode ", " s | prefill ", " tok/s) | decode 3 tokens in ", " tok/s) | peak RSS "})
    CHECK(contains(r.out, stage));
}
