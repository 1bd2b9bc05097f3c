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

TEST_CASE("convert --out-mm writes the lav2 part; generate --model --mm equals the official files bit for bit") {
  const std::string data = LAV2_TEST_DATA_DIR;
  const std::string clip = data + "/tiny_clip/ViT-tiny.pt", image = data + "/images/resize/021_449x300_mixed.png";
  const fs::path base = temp("mm-base-f16.gguf");
  REQUIRE(run_cli("convert --llama-dir " + quote(kTiny) + " --out-base " + quote(base.string())).code == 0);
  // The fixtures with a visual branch (BIAS and LORA-BIAS), and V1 (none, so no CLIP); the other
  // fusion modes and tuning sets are checked in tests/model/test_gguf_mm.cpp.
  for (const std::string variant : {"full_bias", "full_lora_bias", "v1"}) {
    CAPTURE(variant);
    const bool visual = variant != "v1";
    const std::string adapter = data + "/tiny_adapter/" + variant + "/adapter.pth";
    const fs::path mm = temp("mm-" + variant + ".gguf");
    const Run c = run_cli("convert --llama-dir " + quote(kTiny) + " --adapter " + quote(adapter) +
                          (visual ? " --clip " + quote(clip) : "") + " --out-mm " + quote(mm.string()));
    INFO(c.out);
    REQUIRE(c.code == 0);
    const std::string gen = " --prompt 'What is in the image?' --temperature 0 --max-new-tokens 8 --threads 2" +
                            (visual ? " --image " + quote(image) : std::string()) + " --dump ";
    const fs::path official = temp("mm-dump-official"), from_gguf = temp("mm-dump-gguf");
    fs::remove_all(official);
    fs::remove_all(from_gguf);
    REQUIRE(run_cli("generate --llama-dir " + quote(kTiny) + " --adapter " + quote(adapter) +
                    (visual ? " --clip " + quote(clip) : "") + gen + quote(official.string()))
                .code == 0);
    const Run g = run_cli("generate --model " + quote(base.string()) + " --mm " + quote(mm.string()) + gen +
                          quote(from_gguf.string()));
    INFO(g.out);
    REQUIRE(g.code == 0);
    const auto a = lav2::io::read_npy_as<std::int64_t>((official / "generated_ids.npy").string());
    const auto b = lav2::io::read_npy_as<std::int64_t>((from_gguf / "generated_ids.npy").string());
    REQUIRE(a.numel() == b.numel());
    for (std::int64_t i = 0; i < a.numel(); ++i) CHECK(a[i] == b[i]);
    std::vector<std::string> same = {"step_logits.npy"};
    if (visual) same.insert(same.end(), {"clip_features.npy", "visual_query.npy"});
    for (const std::string& f : same) {
      CAPTURE(f);
      const auto x = lav2::io::read_npy_as<float>((official / f).string());
      const auto y = lav2::io::read_npy_as<float>((from_gguf / f).string());
      CHECK(lav2::test::max_abs_diff(x, y) == 0.0);
    }
  }
}

TEST_CASE("convert --out-mm and generate --mm: errors exit 2 naming the file and the field") {
  const std::string data = LAV2_TEST_DATA_DIR;
  const std::string adapter = data + "/tiny_adapter/full_bias/adapter.pth";
  const fs::path base = temp("mm-err-base.gguf"), mm = temp("mm-err.gguf");
  REQUIRE(run_cli("convert --llama-dir " + quote(kTiny) + " --out-base " + quote(base.string())).code == 0);

  Run r = run_cli("convert --llama-dir " + quote(kTiny) + " --adapter " + quote(adapter) + " --out-mm " +
                  quote(mm.string()));
  CHECK(r.code == 2);
  CHECK(contains(r.out, "give --clip"));
  r = run_cli("convert --llama-dir " + quote(kTiny) + " --out-mm " + quote(mm.string()));
  CHECK(r.code == 2);
  CHECK(contains(r.out, "--out-mm and --adapter go together"));
  r = run_cli("convert --llama-dir " + quote(kTiny));
  CHECK(r.code == 2);
  CHECK(contains(r.out, "give --out-base, --out-mm or both"));

  REQUIRE(run_cli("convert --llama-dir " + quote(kTiny) + " --adapter " + quote(adapter) + " --clip " +
                  quote(data + "/tiny_clip/ViT-tiny.pt") + " --out-mm " + quote(mm.string()))
              .code == 0);
  r = run_cli("generate --llama-dir " + quote(kTiny) + " --mm " + quote(mm.string()) + " --prompt hi");
  CHECK(r.code == 2);
  CHECK(contains(r.out, "--mm needs --model"));
  r = run_cli("generate --model " + quote(base.string()) + " --mm " + quote(mm.string()) + " --adapter " +
              quote(adapter) + " --prompt hi");
  CHECK(r.code == 2);
  CHECK(contains(r.out, "in place of --adapter and --clip"));
  // The base given as the lav2 part, and a part made for another base.
  r = run_cli("generate --model " + quote(base.string()) + " --mm " + quote(base.string()) + " --prompt hi");
  CHECK(r.code == 2);
  CHECK(contains(r.out, "'general.architecture' is 'llama', expected 'lav2'"));
  const std::string k256 = data + "/llamacpp/k256-q4_0.gguf";
  r = run_cli("generate --model " + quote(k256) + " --mm " + quote(mm.string()) + " --prompt hi");
  CHECK(r.code == 2);
  CHECK(contains(r.out, "made for a base of dim 64 and 3 layers"));
}

TEST_CASE("bench --model runs a llama.cpp GGUF as stored; bad flag pairs exit 2") {
  const std::string k_m = std::string(LAV2_TEST_DATA_DIR) + "/llamacpp/k256-q4_k_m.gguf";
  Run r = run_cli("bench --model " + quote(k_m) + " --threads 2 --prompt-tokens 8 --gen-tokens 4 --json");
  INFO(r.out);
  REQUIRE(r.code == 0);
  const std::string last = r.out.substr(r.out.rfind('{'));
  for (const char* key : {"\"prefill_tok_s\"", "\"decode_tok_s\"", "\"weight_bytes_per_token\"", "\"stream_gbs\"",
                          "\"isa\"", "\"dtype\":\"q4_k\"", "\"layers\":1"})
    CHECK(contains(last, key));
  // Q4_K_M of dim 256: q4_K attn_q/k/o, ffn_gate/up; q6_K attn_v, ffn_down, output (144 and 210
  // bytes per 256 values).
  const long long want = 144LL * (3 * 256 + 2 * 768) + 210LL * (256 + 768 + 512);
  CHECK(contains(last, "\"weight_bytes_per_token\":" + std::to_string(want)));
  r = run_cli("bench --random-model tiny --model " + quote(k_m));
  CHECK(r.code == 2);
  CHECK(contains(r.out, "exactly one of --random-model"));
  r = run_cli("bench --model " + quote(k_m) + " --adapter");
  CHECK(r.code == 2);
  CHECK(contains(r.out, "not with --model"));
}
