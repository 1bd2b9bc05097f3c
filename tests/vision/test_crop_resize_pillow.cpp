// CLIP's resize + centre crop of extreme aspect ratios (4000x1, 1x20000, 3000x7, 5x2000, ...) and
// ordinary sizes, bit-identical to Pillow 9.4: tests/data/images/crop_resize.json holds the
// FNV-1a 64 of Pillow's 224x224x3 result for each case (tools/reference/make_crop_resize_fixture.py);
// the input pixels are made here by the same rule, so no image is stored.
#include <doctest/doctest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include <lav2/vision/image.hpp>
#include <lav2/vision/image_preprocess.hpp>

#include "common/crop_resize_content.hpp"
#include "common/png_file.hpp"

using namespace lav2;
using namespace lav2::vision;
using lav2::test::crop_resize_content;
using lav2::test::fnv1a64;

namespace {

nlohmann::json cases() {
  std::ifstream f(std::string(LAV2_TEST_DATA_DIR) + "/images/crop_resize.json");
  REQUIRE(f.good());
  return nlohmann::json::parse(f)["cases"];
}

}  // namespace

TEST_CASE("resize + centre crop of extreme aspect ratios is bit-identical to Pillow 9.4") {
  int n = 0;
  for (const auto& c : cases()) {
    const int w = c["width"], h = c["height"];
    CAPTURE(w);
    CAPTURE(h);
    const Image src = crop_resize_content(w, h, c["content"], c["seed"].get<std::uint32_t>());
    const std::array<int, 2> wh = clip_resize_size(w, h);
    CHECK(wh[0] == c["resized"][0].get<int>());
    CHECK(wh[1] == c["resized"][1].get<int>());
    const vision::detail::PixelRect crop = vision::detail::center_crop_rect(wh[0], wh[1], 224, 224);
    CHECK(crop.x0 == c["crop_origin"][0].get<int>());
    CHECK(crop.y0 == c["crop_origin"][1].get<int>());
    const Image got = resize_center_crop(src, wh[0], wh[1], 224, 224);
    CHECK(fnv1a64(got) == c["fnv1a64"].get<std::string>());
    // preprocess_clip normalises exactly these bytes.
    if (n < 4) CHECK(preprocess_clip(src).shape() == Shape{3, 224, 224});
    ++n;
  }
  CHECK(n >= 19);
}

TEST_CASE("4000x1 and 1x20000 PNG files through load_image + preprocessing match Pillow") {
  const std::filesystem::path dir = std::filesystem::temp_directory_path();
  int checked = 0;
  for (const auto& c : cases()) {
    const int w = c["width"], h = c["height"];
    if (!((w == 4000 && h == 1) || (w == 1 && h == 20000))) continue;
    CAPTURE(w);
    const Image src = crop_resize_content(w, h, c["content"], c["seed"].get<std::uint32_t>());
    const std::string path =
        (dir / ("lav2_crop_resize_" + std::to_string(w) + "x" + std::to_string(h) + ".png")).string();
    REQUIRE(lav2::test::write_png(path, src));
    const Image loaded = load_image(path, {}, ChannelOrder::rgb);
    std::filesystem::remove(path);
    REQUIRE(loaded.pixels == src.pixels);  // PNG is lossless
    const std::array<int, 2> wh = clip_resize_size(w, h);
    CHECK(fnv1a64(resize_center_crop(loaded, wh[0], wh[1], 224, 224)) == c["fnv1a64"].get<std::string>());
    ++checked;
  }
  CHECK(checked == 2);
}
