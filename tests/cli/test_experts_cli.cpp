// `lav2 generate --expert caption=FILE --expert ocr` (docs/experts.md): the experts' text lands in
// the prompt in the documented template, and prompt.txt under --dump holds that final prompt.
//   - caption: the block is '[ Caption expert: <caption> ]', where <caption> is what
//     `lav2 generate` with the caption adapter alone answers to "Generate caption of this image"
//     (greedy, 64 tokens), and the whole prompt is experts::compose_prompt()'s;
//   - ocr (a build with Tesseract): a PNG of rendered text made at test time comes back as
//     '[ OCR expert:' + '1. <line>' ... + ']', one numbered line per rendered line;
//   - bad --expert values exit 2 naming the flag; ocr in a build without Tesseract says so.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include <lav2/experts/prompt_composer.hpp>

#include "cli/cli_runner.hpp"
#include "common/png_file.hpp"
#include "common/text_image.hpp"

namespace fs = std::filesystem;
using lav2::test::run_cli;
using lav2::test::shell_quote;

namespace {
const std::string kData = LAV2_TEST_DATA_DIR;
const std::string kTiny = "--llama-dir " + shell_quote(kData + "/tiny_llama/tiny") + " ";
const std::string kMain = "--adapter " + shell_quote(kData + "/tiny_adapter/full_bias/adapter.pth") + " ";
const std::string kCaptionFile = kData + "/tiny_adapter/full_lora_bias/adapter.pth";
const std::string kClip = "--clip " + shell_quote(kData + "/tiny_clip/ViT-tiny.pt") + " ";
const std::string kImageFile = kData + "/images/resize/021_449x300_mixed.png";
const std::string kImage = "--image " + shell_quote(kImageFile) + " ";
const std::string kGenAny = "generate " + kTiny + "--temperature 0 ";
const std::string kGen = kGenAny + "--max-new-tokens 4 ";

std::string read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// The last line of the output: --json's object (the stream may hold nothing else).
nlohmann::json json_of(const std::string& out) {
  const std::size_t at = out.rfind("\n{");
  return nlohmann::json::parse(at == std::string::npos ? out : out.substr(at + 1));
}

fs::path fresh_dir(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / name;
  fs::remove_all(d);
  return d;
}
}  // namespace

TEST_CASE("--expert caption puts the caption adapter's caption into prompt.txt") {
  // The caption as the caption adapter alone gives it.
  const auto solo = run_cli(kGenAny + kClip + kImage + "--adapter " + shell_quote(kCaptionFile) +
                            " --max-new-tokens 64 --prompt 'Generate caption of this image' --json");
  REQUIRE(solo.code == 0);
  std::string caption = json_of(solo.out)["text"].get<std::string>();
  caption.erase(0, caption.find_first_not_of(" \n\t"));
  caption.erase(caption.find_last_not_of(" \n\t") + 1);
  REQUIRE(!caption.empty());

  const fs::path dump = fresh_dir("lav2_experts_caption");
  const auto r = run_cli(kGen + kMain + kClip + kImage + "--prompt 'What is in the image?' --expert caption=" +
                         shell_quote(kCaptionFile) + " --dump " + shell_quote(dump.string()) + " --json");
  REQUIRE(r.code == 0);
  const nlohmann::json j = json_of(r.out);
  REQUIRE(j["experts"].size() == 1);
  CHECK(j["experts"][0]["expert"] == "caption");
  CHECK(j["experts"][0]["lines"][0] == caption);
  CHECK(j["timings"].contains("experts_s"));
  const std::string prompt = read_file(dump / "prompt.txt");
  const std::string want = lav2::experts::compose_prompt(lav2::text::PromptTemplate::alpaca, "What is in the image?",
                                                         std::nullopt, {{"caption", {caption}}});
  CHECK(prompt == want);
  CHECK(prompt.find("### Input:\n[ Caption expert: ") != std::string::npos);
  // The main model's dumps are those of a run without the expert: the shared CLIP encoding is the same.
  const fs::path plain = fresh_dir("lav2_experts_plain");
  REQUIRE(
      run_cli(kGen + kMain + kClip + kImage + "--prompt 'What is in the image?' --dump " + shell_quote(plain.string()))
          .code == 0);
  for (const char* f : {"image_preprocessed.npy", "clip_features.npy", "visual_query.npy"})
    CHECK(read_file(dump / f) == read_file(plain / f));

  // Plain LLaMA with a caption expert (its CLIP only for the expert), and a template file.
  const fs::path tmpl = fs::temp_directory_path() / "lav2_experts_template.json";
  { std::ofstream(tmpl) << R"J({"placement": "instruction", "caption": "(caption: {text})"})J"; }
  const fs::path dump2 = fresh_dir("lav2_experts_caption_plain");
  const auto p =
      run_cli(kGen + kClip + kImage + "--prompt 'Describe it.' --expert caption=" + shell_quote(kCaptionFile) +
              " --expert-template " + shell_quote(tmpl.string()) + " --dump " + shell_quote(dump2.string()));
  REQUIRE(p.code == 0);
  CHECK(read_file(dump2 / "prompt.txt") ==
        lav2::text::format_prompt(
            lav2::text::PromptTemplate::alpaca,
            "Describe it.\nw/ Context: (caption: " + lav2::experts::clean_expert_line(caption) + ")"));
  fs::remove(tmpl);
  for (const fs::path& d : {dump, plain, dump2}) fs::remove_all(d);
}

TEST_CASE("--expert caption takes a CAPTION-7B-style checkpoint (pretrain phase, no config)") {
  const fs::path dump = fresh_dir("lav2_experts_caption7b");
  const auto r = run_cli(kGen + kMain + kClip + kImage + "--prompt 'What is in the image?' --expert caption=" +
                         shell_quote(kData + "/tiny_adapter/caption/adapter.pth") + " --dump " +
                         shell_quote(dump.string()) + " --json");
  REQUIRE(r.code == 0);
  const std::string caption = json_of(r.out)["experts"][0]["lines"][0].get<std::string>();
  CHECK(!caption.empty());
  CHECK(read_file(dump / "prompt.txt").find("[ Caption expert: " + lav2::experts::clean_expert_line(caption) + " ]") !=
        std::string::npos);
  fs::remove_all(dump);
}

TEST_CASE("--expert caption over a GGUF base and lav2 part (--model --mm) gives the same prompt") {
  const fs::path dir = fresh_dir("lav2_experts_gguf");
  fs::create_directories(dir);
  const std::string base = (dir / "base.gguf").string(), mm = (dir / "mm.gguf").string();
  REQUIRE(run_cli("convert " + kTiny + kMain + kClip + "--dtype f32 --out-base " + shell_quote(base) + " --out-mm " +
                  shell_quote(mm))
              .code == 0);
  const std::string rest = "--temperature 0 --max-new-tokens 4 --prompt 'What is in the image?' " + kImage +
                           "--expert caption=" + shell_quote(kCaptionFile) + " --dump ";
  REQUIRE(run_cli("generate --model " + shell_quote(base) + " --mm " + shell_quote(mm) + " " + rest +
                  shell_quote((dir / "gguf").string()))
              .code == 0);
  REQUIRE(run_cli(kGen + kMain + kClip + "--prompt 'What is in the image?' " + kImage +
                  "--expert caption=" + shell_quote(kCaptionFile) + " --dump " + shell_quote((dir / "meta").string()))
              .code == 0);
  const std::string prompt = read_file(dir / "gguf" / "prompt.txt");
  CHECK(prompt.find("[ Caption expert: ") != std::string::npos);
  CHECK(prompt == read_file(dir / "meta" / "prompt.txt"));
  fs::remove_all(dir);
}

#if LAV2_TEST_OCR
TEST_CASE("--expert ocr puts the image's text lines, numbered, into prompt.txt") {
  const lav2::test::Font font(std::string(lav2::test::kDejaVuDir) + "DejaVuSans.ttf");
  REQUIRE(font.ok());
  const lav2::test::TextImage t = lav2::test::render_text_image(font, 16, lav2::test::Background::plain, 7, 3);
  const fs::path png = fs::temp_directory_path() / "lav2_experts_ocr.png";
  REQUIRE(lav2::test::write_png(png.string(), t.image));
  const fs::path dump = fresh_dir("lav2_experts_ocr");
  const auto r = run_cli(kGen + kMain + kClip + "--image " + shell_quote(png.string()) +
                         " --prompt 'What does it say?' --expert ocr --expert caption=" + shell_quote(kCaptionFile) +
                         " --dump " + shell_quote(dump.string()) + " --json");
  REQUIRE(r.code == 0);
  const nlohmann::json j = json_of(r.out);
  REQUIRE(j["experts"].size() == 2);
  CHECK(j["experts"][0]["expert"] == "ocr");  // in the order of the flags
  CHECK(j["experts"][1]["expert"] == "caption");
  const std::vector<std::string> lines = j["experts"][0]["lines"].get<std::vector<std::string>>();
  REQUIRE(lines.size() == t.lines.size());
  std::vector<std::string> truth;
  for (const auto& l : t.lines) truth.insert(truth.end(), l.begin(), l.end());
  CHECK(lav2::test::words_recovered(truth, lav2::test::split_words(lines)) >= 0.9 * double(truth.size()));
  // The documented template: '[ OCR expert:', then '1. <line>' per line, then ']'.
  std::string block = "[ OCR expert:\n";
  for (std::size_t i = 0; i < lines.size(); ++i)
    block += std::to_string(i + 1) + ". " + lav2::experts::clean_expert_line(lines[i]) + "\n";
  block += "]";
  const std::string prompt = read_file(dump / "prompt.txt");
  CHECK(prompt.find("### Input:\n" + block + "\n[ Caption expert: ") != std::string::npos);
  fs::remove(png);
  fs::remove_all(dump);
}
#else
TEST_CASE("--expert ocr in a build without Tesseract exits 2 and says so") {
  const auto r = run_cli(kGen + kMain + kClip + kImage + "--prompt hi --expert ocr");
  CHECK(r.code == 2);
  CHECK(r.out.find("lav2: error: --expert ocr: this lav2 was built without Tesseract") != std::string::npos);
}
#endif

TEST_CASE("bad --expert values exit 2 before loading, naming the flag") {
  const std::string base = kGen + kMain + kClip + kImage + "--prompt hi ";
  const std::string caption = "--expert caption=" + shell_quote(kCaptionFile) + " ";
  const std::string v1 = kData + "/tiny_adapter/v1/adapter.pth";
  const std::pair<std::string, std::string> cases[] = {
      {base + "--expert depth", "--expert 'depth' is not an expert; the experts are caption=FILE and ocr"},
      {base + "--expert caption", "--expert caption needs the caption checkpoint: --expert caption=FILE"},
      {base + "--expert caption=", "--expert caption needs the caption checkpoint"},
      {base + "--expert caption=/nonexistent/cap.pth", "--expert caption='/nonexistent/cap.pth': no such file"},
      {base + "--expert ocr=fast", "--expert ocr takes no value"},
      {base + "--expert", "--expert"},
      {kGen + kMain + kClip + "--prompt hi " + caption, "--expert needs --image"},
      {kGen + kImage + "--prompt hi " + caption, "--expert caption needs --clip"},
      {base + "--expert-template /nonexistent/t.json", "--expert-template needs --expert"},
      {base + caption + "--expert-template /nonexistent/t.json", "/nonexistent/t.json"},
      {base + "--expert caption=" + shell_quote(v1), "--expert caption='" + v1 + "'"},
      {kGen + kClip + "--prompt hi", "--clip and --image need --adapter"},
  };
  for (const auto& [args, message] : cases) {
    CAPTURE(args);
    const auto r = run_cli(args);
    CHECK(r.code == 2);
    CHECK(r.out.find("lav2: error: ") != std::string::npos);
    CHECK(r.out.find(message) != std::string::npos);
    CAPTURE(r.out);
  }
}
