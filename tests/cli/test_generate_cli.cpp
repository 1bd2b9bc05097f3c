// `lav2 generate` end to end: the contract's flags, --dump files, exit codes and error messages.
#include <doctest/doctest.h>

#include <sys/wait.h>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include <lav2/io/npy.hpp>

#include "cli/cli_runner.hpp"
#include "common/compare.hpp"

namespace fs = std::filesystem;

namespace {
const std::string kData = LAV2_TEST_DATA_DIR;
const std::string kTiny = kData + "/tiny_llama/tiny";

using Run = lav2::test::CliResult;
using lav2::test::run_cli;
std::string quote(const std::string& s) { return lav2::test::shell_quote(s); }

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }
}  // namespace

TEST_CASE("generate --dump writes the contract's files, equal to the golden reference") {
  const fs::path dump = fs::temp_directory_path() / "lav2_cli_dump";
  fs::remove_all(dump);
  const Run r = run_cli("generate --llama-dir " + quote(kTiny) +
                        " --prompt 'Tell me about alpacas.' --temperature 0 "
                        "--max-new-tokens 24 --threads 2 --dump " +
                        quote(dump.string()));
  REQUIRE(r.code == 0);
  const std::string golden = kData + "/tiny_llama/golden/alpaca/";
  for (const char* f : {"prompt_ids.npy", "generated_ids.npy"}) {
    const auto got = lav2::io::read_npy_as<std::int64_t>((dump / f).string());
    const auto want = lav2::io::read_npy_as<std::int64_t>(golden + f);
    REQUIRE(got.numel() == want.numel());
    for (std::int64_t i = 0; i < got.numel(); ++i) CHECK(got[i] == want[i]);
  }
  for (const char* f : {"prompt_last_logits.npy", "step_logits.npy"}) {
    const auto got = lav2::io::read_npy_as<float>((dump / f).string());
    const auto want = lav2::io::read_npy_as<float>(golden + f);
    REQUIRE(got.shape() == want.shape());
    CHECK(lav2::test::max_abs_diff(got, want) <= 1e-4);
  }
  std::ifstream p(dump / "prompt.txt", std::ios::binary), q(golden + "prompt.txt", std::ios::binary);
  CHECK(std::string(std::istreambuf_iterator<char>(p), {}) == std::string(std::istreambuf_iterator<char>(q), {}));
  fs::remove_all(dump);
}

TEST_CASE("generate --json prints one object with the contract's keys") {
  const Run r = run_cli("generate --llama-dir " + quote(kTiny) + " --prompt hi --max-new-tokens 4 --seed 9 --json");
  REQUIRE(r.code == 0);
  for (const char* key : {"\"text\"", "\"token_ids\"", "\"finish_reason\"", "\"load_s\"", "\"image_encode_s\"",
                          "\"prefill_tok_s\"", "\"decode_tok_s\"", "\"peak_rss_bytes\""})
    CHECK(contains(r.out, key));
}

TEST_CASE("generate: usage and input errors exit 2 with 'lav2: error:' naming the problem") {
  Run r = run_cli("generate --llama-dir " + quote(kTiny) + " --prompt hi --input x");
  CHECK(r.code == 2);
  CHECK(contains(r.out, "lav2: error: --input is accepted only with --template alpaca-input"));

  r = run_cli("generate --llama-dir " + quote(kTiny) + " --prompt hi --template chat");
  CHECK(r.code == 2);
  CHECK(contains(r.out, "lav2: error:"));

  r = run_cli("generate --llama-dir " + quote(kTiny) +
              " --prompt hi --max-seq-len 20");  // alpaca template alone is longer
  CHECK(r.code == 2);
  CHECK(contains(r.out, "max_seq_len 20"));

  r = run_cli("generate --llama-dir /nonexistent --prompt hi");
  CHECK(r.code == 2);
  CHECK(contains(r.out, "'/nonexistent' is not a directory"));

  r = run_cli("generate --llama-dir " + quote(kData + "/tiny_llama_bad/missing_tensor") + " --tokenizer " +
              quote(kData + "/tiny_llama/tokenizer.model") + " --prompt hi");
  CHECK(r.code == 2);
  CHECK(contains(r.out, "'layers.0.feed_forward.w3.weight' is missing"));

  r = run_cli("generate --prompt hi");
  CHECK(r.code == 2);
  CHECK(contains(r.out, "--llama-dir"));

  r = run_cli("generate --llama-dir " + quote(kTiny) + " --prompt hi --threads -3");
  CHECK(r.code == 2);
}

TEST_CASE("generate: a request that cannot fit the address-space limit is refused with exit 2 and the sizes") {
  // 3 layers x 1048576 positions x 64 x (K + V) x 4 bytes = 1.6 GB of f32 cache at full length,
  // under a 1 GiB RLIMIT_AS: refused before allocating, never killed.
  Run r = run_cli("generate --llama-dir " + quote(kTiny) + " --prompt hi --max-new-tokens 2 --max-seq-len 1048576",
                  "prlimit --as=1073741824");
  CHECK(r.code == 2);
  CHECK(r.out.find("lav2: error:") != std::string::npos);
  CHECK(r.out.find("max_seq_len 1048576") != std::string::npos);
  CHECK(r.out.find("1610612736 bytes at full length") != std::string::npos);
  CHECK(r.out.find("bytes are available") != std::string::npos);
  CHECK(r.out.find("RLIMIT_AS") != std::string::npos);
  // A short limit fits and runs.
  r = run_cli("generate --llama-dir " + quote(kTiny) + " --prompt hi --max-new-tokens 2 --temperature 0",
              "prlimit --as=1073741824");
  CHECK(r.code == 0);
}

TEST_CASE("generate: a malicious checkpoint is rejected with exit 2, never run") {
  const fs::path dir = fs::temp_directory_path() / "lav2_cli_evil";
  fs::remove_all(dir);
  fs::create_directories(dir);
  fs::copy_file(kTiny + "/params.json", dir / "params.json");
  fs::copy_file(kData + "/io/evil_os_system.pth", dir / "consolidated.00.pth");
  const Run r = run_cli("generate --llama-dir " + quote(dir.string()) + " --tokenizer " +
                        quote(kData + "/tiny_llama/tokenizer.model") + " --prompt hi");
  CHECK(r.code == 2);
  CHECK(contains(r.out, "lav2: error:"));
  CHECK(contains(r.out, "os"));
  fs::remove_all(dir);
}

TEST_CASE("bench prints the contract's JSON keys on its last line; bad flags exit 2") {
  Run r = run_cli("bench --random-model tiny --threads 2 --prompt-tokens 4 --gen-tokens 2 --json");
  REQUIRE(r.code == 0);
  const std::string last = r.out.substr(r.out.rfind('{'));
  for (const char* key : {"\"prefill_tok_s\"", "\"decode_tok_s\"", "\"weight_bytes_per_token\"", "\"image_encode_s\"",
                          "\"peak_rss_bytes\"", "\"stream_gbs\"", "\"fma_peak_gflops\""})
    CHECK(contains(last, key));
  CHECK(contains(last, "\"image_encode_s\":null"));  // no --image: nothing was encoded
  r = run_cli("bench --random-model 70b");
  CHECK(r.code == 2);
  CHECK(contains(r.out, "'70b' is not a known preset"));
  r = run_cli("bench --random-model tiny --dtype q3");
  CHECK(r.code == 2);
}

TEST_CASE("bench --image times the visual branch and reports it against the FMA probe") {
  const Run r = run_cli("bench --random-model tiny --threads 2 --prompt-tokens 4 --gen-tokens 2 --image");
  REQUIRE(r.code == 0);
  CHECK(contains(r.out, "image encode "));
  const auto j = nlohmann::json::parse(r.out.substr(r.out.rfind('{')));
  REQUIRE(j["image_encode_s"].is_number());
  CHECK(j["image_encode_s"].get<double>() > 0.0);
  CHECK(j["image_encode_gflops"].get<double>() > 0.0);
  CHECK(j["image_encode_fma_frac"].get<double>() > 0.0);
}
