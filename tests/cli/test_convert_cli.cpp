// `lav2 convert` and `lav2 generate --model`: the tiny Meta directory converted to a GGUF base,
// then run from it with the tokenizer the GGUF holds: the same prompt ids, greedy ids and logits
// as the directory (f16 in, f16 out: the same weights). Flag and input errors exit 2.
#include <doctest/doctest.h>

#include <filesystem>
#include <string>

#include <lav2/io/npy.hpp>

#include "cli/cli_runner.hpp"
#include "common/compare.hpp"

namespace fs = std::filesystem;

namespace {
const std::string kTiny = std::string(LAV2_TEST_DATA_DIR) + "/tiny_llama/tiny";

using Run = lav2::test::CliResult;
using lav2::test::run_cli;
std::string quote(const std::string& s) { return lav2::test::shell_quote(s); }
bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

fs::path temp(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / "lav2_cli_convert";
  fs::create_directories(d);
  return d / name;
}
}  // namespace

TEST_CASE("convert writes a GGUF that generate --model runs as the Meta directory") {
  const fs::path gguf = temp("tiny-f16.gguf");
  const Run c = run_cli("convert --llama-dir " + quote(kTiny) + " --out-base " + quote(gguf.string()) +
                        " --dtype f16 --name tiny --threads 2");
  INFO(c.out);
  REQUIRE(c.code == 0);
  CHECK(contains(c.out, "wrote"));

  const std::string gen = " --prompt 'Tell me about alpacas.' --temperature 0 --max-new-tokens 12 --threads 2 --dump ";
  const fs::path from_dir = temp("dump-dir"), from_gguf = temp("dump-gguf");
  fs::remove_all(from_dir);
  fs::remove_all(from_gguf);
  REQUIRE(run_cli("generate --llama-dir " + quote(kTiny) + gen + quote(from_dir.string())).code == 0);
  const Run g = run_cli("generate --model " + quote(gguf.string()) + gen + quote(from_gguf.string()));
  INFO(g.out);
  REQUIRE(g.code == 0);
  for (const char* f : {"prompt_ids.npy", "generated_ids.npy"}) {
    CAPTURE(f);
    const auto a = lav2::io::read_npy_as<std::int64_t>((from_dir / f).string());
    const auto b = lav2::io::read_npy_as<std::int64_t>((from_gguf / f).string());
    REQUIRE(a.numel() == b.numel());
    for (std::int64_t i = 0; i < a.numel(); ++i) CHECK(a[i] == b[i]);
  }
  const auto a = lav2::io::read_npy_as<float>((from_dir / "step_logits.npy").string());
  const auto b = lav2::io::read_npy_as<float>((from_gguf / "step_logits.npy").string());
  CHECK(lav2::test::max_abs_diff(a, b) == 0.0);

  // q4_0: a quarter of the matrix bytes, and it still runs.
  const fs::path q4 = temp("tiny-q4_0.gguf");
  REQUIRE(run_cli("convert --llama-dir " + quote(kTiny) + " --out-base " + quote(q4.string()) + " --dtype q4_0").code ==
          0);
  CHECK(fs::file_size(q4) < fs::file_size(gguf) / 2);
  CHECK(run_cli("generate --model " + quote(q4.string()) + " --prompt hi --max-new-tokens 4 --template none").code ==
        0);
}

TEST_CASE("convert and generate --model: flag and input errors exit 2 naming the problem") {
  const fs::path gguf = temp("errors.gguf");
  Run r = run_cli("convert --llama-dir " + quote(kTiny) + " --out-base " + quote(gguf.string()) + " --dtype q5_1");
  CHECK(r.code == 2);
  CHECK(contains(r.out, "lav2: error:"));
  CHECK(contains(r.out, "--dtype"));

  r = run_cli("convert --llama-dir " + quote(kTiny));
  CHECK(r.code == 2);
  CHECK(contains(r.out, "--out-base"));

  r = run_cli("convert --llama-dir /nonexistent/dir --out-base " + quote(gguf.string()));
  CHECK(r.code == 2);
  CHECK(contains(r.out, "/nonexistent/dir"));

  r = run_cli("convert --llama-dir " + quote(kTiny) + " --out-base /nonexistent/dir/x.gguf");
  CHECK(r.code == 2);
  CHECK(contains(r.out, "/nonexistent/dir/x.gguf"));

  r = run_cli("generate --llama-dir " + quote(kTiny) + " --model " + quote(gguf.string()) + " --prompt hi");
  CHECK(r.code == 2);
  CHECK(contains(r.out, "exactly one of --llama-dir"));

  // A Meta checkpoint is not a GGUF: the reader names the file and what it found.
  r = run_cli("generate --model " + quote(kTiny + "/consolidated.00.pth") + " --prompt hi");
  CHECK(r.code == 2);
  CHECK(contains(r.out, "consolidated.00.pth"));
}
