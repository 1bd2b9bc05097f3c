// Hostile input at the command line (docs/security.md): whatever a user types or a file holds, `lav2` exits
// 0, 2 (usage or input error: stderr begins "lav2: error:" and names the file and field) or 1
// (internal error), never by a signal. Each case runs the real binary.
#include <doctest/doctest.h>

#include <sys/wait.h>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "cli/cli_runner.hpp"

namespace fs = std::filesystem;

namespace {
const std::string kData = LAV2_TEST_DATA_DIR;
const std::string kCorpus = std::string(LAV2_SOURCE_DIR) + "/tests/corpus";
const std::string kTiny = kData + "/tiny_llama/tiny";
const std::string kTok = kData + "/tiny_llama/tokenizer.model";

using Run = lav2::test::CliResult;
std::string sh_quote(const std::string& s) { return lav2::test::shell_quote(s); }
Run run_lav2(const std::string& args) { return lav2::test::run_cli(args); }

bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

/// A Meta-layout directory with the tiny model's files, `params` replacing params.json and
/// `weights` replacing consolidated.00.pth when given.
fs::path llama_dir(const std::string& name, const std::string& params = "", const std::string& weights = "") {
  const fs::path dir = fs::temp_directory_path() / ("lav2_hostile_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  fs::copy_file(params.empty() ? kTiny + "/params.json" : params, dir / "params.json");
  fs::copy_file(weights.empty() ? kTiny + "/consolidated.00.pth" : weights, dir / "consolidated.00.pth");
  return dir;
}

void check_input_error(const Run& r, std::initializer_list<const char*> parts) {
  INFO("output: ", r.out);
  CHECK(r.code == 2);
  CHECK(r.out.rfind("lav2: error:", 0) == 0);
  for (const char* p : parts) CHECK(has(r.out, p));
}
}  // namespace

TEST_CASE("hostile cli: usage errors exit 2 with 'lav2: error:'") {
  check_input_error(run_lav2(""), {});
  check_input_error(run_lav2("no-such-command"), {});
  check_input_error(run_lav2("generate --llama-dir"), {"--llama-dir"});
  check_input_error(run_lav2("generate --llama-dir " + sh_quote(kTiny) + " --prompt hi --threads abc"), {"--threads"});
  check_input_error(run_lav2("generate --llama-dir " + sh_quote(kTiny) + " --prompt hi --max-seq-len 0"),
                    {"--max-seq-len"});
  check_input_error(run_lav2("generate --llama-dir " + sh_quote(kTiny) + " --prompt hi --max-seq-len 99999999999999"),
                    {"--max-seq-len"});
  check_input_error(
      run_lav2("generate --llama-dir " + sh_quote(kTiny) + " --prompt hi --template \"$(printf '\\377')\""),
      {"--template"});
  check_input_error(run_lav2("tokenize --tokenizer"), {"--tokenizer"});
  check_input_error(run_lav2("generate --llama-dir " + sh_quote(kTiny) + " --prompt hi --no-such-flag"),
                    {"--no-such-flag"});
}

TEST_CASE("cli: an unknown or missing command is named, with the list of commands") {
  auto r = lav2::test::run_cli("genrate --prompt hi");
  CHECK(r.code == 2);
  CHECK(r.out.find("lav2: error: unknown command 'genrate'; the commands are bench, chat, convert, generate, info, "
                   "selfcheck, serve, tokenize") != std::string::npos);
  r = lav2::test::run_cli("");
  CHECK(r.code == 2);
  CHECK(r.out.find("lav2: error: no command given; the commands are bench,") != std::string::npos);
  r = lav2::test::run_cli("--version");
  CHECK(r.code == 0);
  r = lav2::test::run_cli("--bogus generate");
  CHECK(r.code == 2);
  CHECK(r.out.find("lav2: error:") != std::string::npos);
}

TEST_CASE("hostile cli: missing and non-regular files name the path") {
  check_input_error(run_lav2("generate --llama-dir /nonexistent/lav2 --prompt hi"), {"/nonexistent/lav2"});
  check_input_error(run_lav2("tokenize --tokenizer /nonexistent/tok.model hi"), {"/nonexistent/tok.model"});
  check_input_error(run_lav2("tokenize --tokenizer " + sh_quote(kData) + " hi"), {kData.c_str()});
  check_input_error(run_lav2("tokenize --tokenizer /dev/zero hi"), {"/dev/zero"});
}

TEST_CASE("hostile cli: a hostile params.json names the file and the field") {
  const fs::path neg = llama_dir("neg_dim", kCorpus + "/params/negative_dim.json");
  check_input_error(
      run_lav2("generate --llama-dir " + sh_quote(neg.string()) + " --tokenizer " + sh_quote(kTok) + " --prompt hi"),
      {"params.json", "'dim'", "-4096"});
  const fs::path deep = llama_dir("deep_params", kCorpus + "/params/deep.json");
  check_input_error(
      run_lav2("generate --llama-dir " + sh_quote(deep.string()) + " --tokenizer " + sh_quote(kTok) + " --prompt hi"),
      {"params.json", "deeper than 64"});
  fs::remove_all(neg);
  fs::remove_all(deep);
}

TEST_CASE("hostile cli: hostile checkpoints are rejected, never executed") {
  for (const char* f : {"evil_os_system.pth", "global_subprocess_popen.pth", "stack_global_os_system.pth",
                        "deep_mark_nesting.pth", "storage_shorter_than_numel.pth", "zip_dotdot.pth",
                        "zip_deflate_bomb.pth", "legacy.pth", "size_overflow.pth"}) {
    CAPTURE(f);
    const fs::path dir = llama_dir("ckpt", "", kCorpus + "/torch/" + f);
    check_input_error(
        run_lav2("generate --llama-dir " + sh_quote(dir.string()) + " --tokenizer " + sh_quote(kTok) + " --prompt hi"),
        {"consolidated.00.pth"});
    fs::remove_all(dir);
  }
}

TEST_CASE("hostile cli: hostile tokenizer files name the file and the field") {
  check_input_error(
      run_lav2("tokenize --tokenizer " + sh_quote(kCorpus + "/tokenizer/invalid_utf8_piece.model") + " hi"),
      {"invalid_utf8_piece.model", "pieces[", "UTF-8"});
  check_input_error(run_lav2("tokenize --tokenizer " + sh_quote(kCorpus + "/tokenizer/no_pieces.model") + " hi"),
                    {"no_pieces.model"});
  check_input_error(run_lav2("tokenize --tokenizer " + sh_quote(kCorpus + "/tokenizer/hf_deep.json") + " hi"),
                    {"hf_deep.json", "nesting too deep"});
  check_input_error(run_lav2("generate --llama-dir " + sh_quote(kTiny) + " --tokenizer " +
                             sh_quote(kCorpus + "/tokenizer/truncated.model") + " --prompt hi"),
                    {"truncated.model"});
}

TEST_CASE("hostile cli: invalid UTF-8 in a prompt becomes U+FFFD") {
  const Run bad = run_lav2("tokenize --tokenizer " + sh_quote(kTok) + " \"$(printf 'a\\377\\376b')\"");
  const Run repl =
      run_lav2("tokenize --tokenizer " + sh_quote(kTok) + " \"$(printf 'a\\357\\277\\275\\357\\277\\275b')\"");
  REQUIRE(bad.code == 0);
  REQUIRE(repl.code == 0);
  CHECK(bad.out == repl.out);
  const Run gen = run_lav2("generate --llama-dir " + sh_quote(kTiny) +
                           " --prompt \"$(printf 'caf\\303 \\377\\200')\" --max-new-tokens 2 --json");
  CHECK(gen.code == 0);
}

TEST_CASE("hostile cli: a prompt longer than max_seq_len is rejected") {
  std::string prompt;
  for (int i = 0; i < 200; ++i) prompt += "alpacas ";
  const Run r =
      run_lav2("generate --llama-dir " + sh_quote(kTiny) + " --prompt " + sh_quote(prompt) + " --max-seq-len 64");
  check_input_error(r, {"max_seq_len 64"});
  std::string huge(100000, 'x');  // under Linux's 128 KiB per-argument cap
  check_input_error(run_lav2("generate --llama-dir " + sh_quote(kTiny) + " --prompt " + huge), {"max_seq_len"});
}
