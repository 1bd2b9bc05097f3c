// Acceptance of the crop-aware resize end to end: `lav2 generate` on 4000x1 and 1x20000 PNGs
// (made here) preprocesses them bit-identically to Pillow 9.4 (the dumped image, mapped back to
// bytes, has the checksum of tests/data/images/crop_resize.json) with a peak RSS, the process's
// getrusage ru_maxrss as --json reports it, under 100 MB; so does the corpus's 1x131072 PNG.
// Resized whole, 4000x1 would be 896000 x 224 (600 MB), 1x20000 224 x 4480000 (3 GB) and 1x131072
// 224 x 29360128 (20 GB).
#include <doctest/doctest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include <lav2/io/npy.hpp>
#include <lav2/vision/image_preprocess.hpp>

#include "cli/cli_runner.hpp"
#include "common/crop_resize_content.hpp"
#include "common/png_file.hpp"

namespace fs = std::filesystem;
using namespace lav2;

namespace {

const std::string kData = LAV2_TEST_DATA_DIR;
constexpr std::int64_t kMaxRss = 100ll << 20;

/// Maps a dumped (1, 3, 224, 224) normalised image back to its HWC bytes: each plane's byte ->
/// float table (normalize_to_tensor) is strictly increasing, so every value has one byte.
vision::Image bytes_of(const Tensor<float>& t) {
  vision::Image all(256, 1, vision::ChannelOrder::rgb);
  for (int v = 0; v < 256; ++v)
    for (int c = 0; c < 3; ++c) all.at(v, 0, c) = std::uint8_t(v);
  const Tensor<float> lut = vision::normalize_to_tensor(all);  // (3, 1, 256)
  const std::int64_t plane = 224 * 224;
  REQUIRE(t.numel() == 3 * plane);
  vision::Image img(224, 224, vision::ChannelOrder::rgb);
  std::int64_t unmapped = 0;  // values no byte gives
  for (int c = 0; c < 3; ++c)
    for (std::int64_t i = 0; i < plane; ++i) {
      const float f = t[c * plane + i];
      int v = 0;
      while (v < 255 && lut[c * 256 + v] < f) ++v;
      unmapped += lut[c * 256 + v] != f;
      img.pixels[std::size_t(3 * i + c)] = std::uint8_t(v);
    }
  CHECK(unmapped == 0);
  return img;
}

/// Runs generate with the tiny adapter + CLIP on `image`; returns --json's peak_rss_bytes.
std::int64_t generate_peak_rss(const std::string& image, const fs::path& dump) {
  const auto r = lav2::test::run_cli(
      "generate --llama-dir " + lav2::test::shell_quote(kData + "/tiny_llama/tiny") + " --adapter " +
      lav2::test::shell_quote(kData + "/tiny_adapter/full_bias/adapter.pth") + " --clip " +
      lav2::test::shell_quote(kData + "/tiny_clip/ViT-tiny.pt") + " --image " + lav2::test::shell_quote(image) +
      " --channel-order rgb --prompt hi --max-new-tokens 1 --temperature 0 --json --dump " +
      lav2::test::shell_quote(dump.string()));
  INFO("output: ", r.out);
  REQUIRE(r.code == 0);
  const auto j = nlohmann::json::parse(r.out.substr(r.out.rfind("\n{") + 1));
  return j["peak_rss_bytes"].get<std::int64_t>();
}

}  // namespace

TEST_CASE("generate on 4000x1 and 1x20000 PNGs: Pillow's bytes, peak RSS under 100 MB") {
  std::ifstream f(kData + "/images/crop_resize.json");
  REQUIRE(f.good());
  const nlohmann::json cases = nlohmann::json::parse(f)["cases"];
  const fs::path dir = fs::temp_directory_path() / "lav2_thin_image_cli";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::int64_t ordinary = generate_peak_rss(kData + "/images/resize/021_449x300_mixed.png", dir / "ordinary");
  int checked = 0;
  for (const auto& c : cases) {
    const int w = c["width"], h = c["height"];
    if (!((w == 4000 && h == 1) || (w == 1 && h == 20000))) continue;
    CAPTURE(w);
    const std::string png = (dir / (std::to_string(w) + "x" + std::to_string(h) + ".png")).string();
    REQUIRE(lav2::test::write_png(png, lav2::test::crop_resize_content(w, h, c["content"], c["seed"])));
    const fs::path dump = dir / ("dump_" + std::to_string(w));
    const std::int64_t rss = generate_peak_rss(png, dump);
    MESSAGE(w, "x", h, " PNG: peak RSS ", rss / 1024, " KiB (a 449x300 PNG: ", ordinary / 1024, " KiB)");
    CHECK(rss < kMaxRss);
    const Tensor<float> t = io::read_npy_as<float>((dump / "image_preprocessed.npy").string());
    CHECK(lav2::test::fnv1a64(bytes_of(t)) == c["fnv1a64"].get<std::string>());
    ++checked;
  }
  CHECK(checked == 2);
  // The most extreme shape the decoder admits (1 x 131072, the corpus file): 224 x 29360128 resized.
  const std::int64_t rss =
      generate_peak_rss(std::string(LAV2_SOURCE_DIR) + "/tests/corpus/image/thin_1x131072.png", dir / "dump_thin");
  MESSAGE("1x131072 PNG: peak RSS ", rss / 1024, " KiB");
  CHECK(rss < kMaxRss);
  fs::remove_all(dir);
}
