// CLIP preprocessing against Pillow 9.4 / torchvision fixtures (tools/reference/make_image_fixtures.py).
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <lav2/vision/image.hpp>
#include <lav2/vision/image_preprocess.hpp>

#include "common/compare.hpp"

using namespace lav2;
using namespace lav2::vision;

namespace {

const std::string kDir = std::string(LAV2_TEST_DATA_DIR) + "/images/";

nlohmann::json manifest() {
  std::ifstream f(kDir + "manifest.json");
  REQUIRE(f.good());
  return nlohmann::json::parse(f);
}

struct Diff {
  int max = 0;
  long count = 0;
};
Diff diff(const Image& a, const Image& b) {
  Diff d;
  for (std::size_t i = 0; i < a.pixels.size(); ++i) {
    const int e = std::abs(int(a.pixels[i]) - int(b.pixels[i]));
    d.max = std::max(d.max, e);
    d.count += e != 0;
  }
  return d;
}

}  // namespace

TEST_CASE("clip_resize_size truncates the long side like torchvision") {
  CHECK(clip_resize_size(1000, 700) == std::array<int, 2>{320, 224});
  CHECK(clip_resize_size(7, 300) == std::array<int, 2>{224, 9600});
  CHECK(clip_resize_size(300, 7) == std::array<int, 2>{9600, 224});
  CHECK(clip_resize_size(333, 111) == std::array<int, 2>{672, 224});
  CHECK(clip_resize_size(449, 300) == std::array<int, 2>{335, 224});  // 335.25
  CHECK(clip_resize_size(224, 224) == std::array<int, 2>{224, 224});
  CHECK_THROWS_AS(clip_resize_size(0, 5), input_error);
}

TEST_CASE("center_crop offsets use Python's round-half-to-even") {
  Image img(9, 6, ChannelOrder::rgb);
  for (int y = 0; y < 6; ++y)
    for (int x = 0; x < 9; ++x) img.at(x, y, 0) = std::uint8_t(10 * y + x + 1);
  // W - w = 5 -> round(2.5) = 2; H - h = 3 -> round(1.5) = 2.
  CHECK(center_crop(img, 4, 3).at(0, 0, 0) == 23);
  // H - h = 1 -> round(0.5) = 0.
  CHECK(center_crop(img, 4, 5).at(0, 0, 0) == 3);
  // W - w = 7 -> round(3.5) = 4; H - h = 4 -> 2.
  CHECK(center_crop(img, 2, 2).at(0, 0, 0) == 25);
  // Wider than the image: zero padding split as torchvision does, left = (12 - 9) // 2 = 1, right = 2.
  const Image c = center_crop(img, 12, 6);
  CHECK(c.at(0, 0, 0) == 0);
  CHECK(c.at(1, 0, 0) == 1);
  CHECK(c.at(9, 5, 0) == 59);
  CHECK(c.at(10, 0, 0) == 0);
  CHECK(c.at(11, 0, 0) == 0);
  CHECK_THROWS_AS(center_crop(img, 0, 3), input_error);
}

TEST_CASE("resize + center crop is bit-identical to Pillow 9.4 BICUBIC + torchvision CenterCrop") {
  const nlohmann::json m = manifest();
  int identical = 0, total = 0;
  for (const auto& c : m["clip"]) {
    const std::string in = c["input"];
    CAPTURE(in);
    const Image src = load_image(kDir + in, {}, ChannelOrder::rgb);
    REQUIRE(src.width == c["width"].get<int>());
    REQUIRE(src.height == c["height"].get<int>());
    const std::array<int, 2> wh = clip_resize_size(src.width, src.height);
    CHECK(wh[0] == c["resized"][0].get<int>());
    CHECK(wh[1] == c["resized"][1].get<int>());
    const Image got = center_crop(resize_bicubic_pillow(src, wh[0], wh[1]), 224, 224);
    const Image ref = load_image(kDir + c["ref"].get<std::string>(), {}, ChannelOrder::rgb);
    REQUIRE(ref.width == 224);
    REQUIRE(ref.height == 224);
    const Diff d = diff(got, ref);
    CAPTURE(d.max);
    CAPTURE(d.count);
    CHECK(d.max == 0);
    // What preprocess_clip runs: only the crop's pixels are resampled.
    CHECK(resize_center_crop(src, wh[0], wh[1], 224, 224).pixels == ref.pixels);
    identical += d.max == 0;
    ++total;
  }
  MESSAGE(identical, " of ", total, " CLIP resize+crop cases bit-identical to Pillow");
  CHECK(total >= 50);
}

TEST_CASE("resize_bicubic_pillow to arbitrary sizes (incl. one-pass cases) is bit-identical to Pillow") {
  const nlohmann::json m = manifest();
  int identical = 0;
  for (const auto& c : m["resize"]) {
    const std::string ref_name = c["ref"];
    CAPTURE(ref_name);
    const Image src = load_image(kDir + c["input"].get<std::string>(), {}, ChannelOrder::rgb);
    const Image got = resize_bicubic_pillow(src, c["width"].get<int>(), c["height"].get<int>());
    const Image ref = load_image(kDir + ref_name, {}, ChannelOrder::rgb);
    REQUIRE(got.width == ref.width);
    REQUIRE(got.height == ref.height);
    const Diff d = diff(got, ref);
    CAPTURE(d.max);
    CHECK(d.max == 0);
    identical += d.max == 0;
  }
  MESSAGE(identical, " of ", m["resize"].size(), " arbitrary resizes bit-identical to Pillow");
}

TEST_CASE("resize keeps the channel order and rejects bad sizes") {
  Image img(5, 4, ChannelOrder::bgr);
  for (std::size_t i = 0; i < img.pixels.size(); ++i) img.pixels[i] = std::uint8_t(i * 37);
  const Image r = resize_bicubic_pillow(img, 9, 2);
  CHECK(r.order == ChannelOrder::bgr);
  CHECK(r.width == 9);
  CHECK(r.height == 2);
  CHECK(resize_bicubic_pillow(img, 5, 4).pixels == img.pixels);
  CHECK_THROWS_AS(resize_bicubic_pillow(img, 0, 3), input_error);
  CHECK_THROWS_AS(resize_bicubic_pillow(Image(), 3, 3), input_error);
}

TEST_CASE("preprocess_clip matches the torchvision-order numpy normalisation within 1e-6") {
  // norm_lut.bin: 3 x 256 float32, (float32(v) / 255 - mean[c]) / std[c] computed by numpy.
  std::ifstream f(kDir + "norm_lut.bin", std::ios::binary);
  REQUIRE(f.good());
  std::vector<float> lut(3 * 256);
  f.read(reinterpret_cast<char*>(lut.data()), std::streamsize(lut.size() * sizeof(float)));
  REQUIRE(f.gcount() == std::streamsize(lut.size() * sizeof(float)));

  const nlohmann::json m = manifest();
  double max_err = 0.0;
  int checked = 0;
  std::vector<float> want(3 * 224 * 224);
  for (const auto& c : m["clip"]) {
    if (checked == 12) break;  // a dozen end-to-end runs; the table covers every byte value
    const Image src = load_image(kDir + c["input"].get<std::string>(), {}, ChannelOrder::rgb);
    const Image ref = load_image(kDir + c["ref"].get<std::string>(), {}, ChannelOrder::rgb);
    const Tensor<float> t = preprocess_clip(src);
    REQUIRE(t.shape() == Shape{3, 224, 224});
    const std::size_t plane = 224 * 224;
    for (int ch = 0; ch < 3; ++ch)
      for (std::size_t i = 0; i < plane; ++i)
        want[std::size_t(ch) * plane + i] = lut[std::size_t(ch) * 256 + ref.pixels[3 * i + std::size_t(ch)]];
    const double d = lav2::test::max_abs_diff(t.data(), want.data(), t.numel());
    if (std::isnan(d)) {  // a non-finite value: keep the NaN, which fails the check below
      max_err = d;
      break;
    }
    max_err = std::max(max_err, d);
    ++checked;
  }
  MESSAGE("max |preprocess_clip - numpy| = ", max_err);
  CHECK(max_err <= 1e-6);

  // Every byte value through the same table, bit-exact.
  Image all(256, 1, ChannelOrder::rgb);
  for (int v = 0; v < 256; ++v)
    for (int ch = 0; ch < 3; ++ch) all.at(v, 0, ch) = std::uint8_t(v);
  const Tensor<float> t = normalize_to_tensor(all);
  int exact = 0;
  for (int ch = 0; ch < 3; ++ch)
    for (int v = 0; v < 256; ++v) exact += t[ch * 256 + v] == lut[std::size_t(ch) * 256 + std::size_t(v)];
  CHECK(exact == 3 * 256);
}

TEST_CASE("preprocess_clip normalises by plane index: BGR input is the reversed planes") {
  const nlohmann::json m = manifest();
  const std::string in = kDir + m["clip"][21]["input"].get<std::string>();
  const Tensor<float> rgb = preprocess_clip(load_image(in, {}, ChannelOrder::rgb));
  const Tensor<float> bgr = preprocess_clip(load_image(in));  // the default: BGR, as cv2.imread
  const Image ref = load_image(kDir + m["clip"][21]["ref"].get<std::string>(), {}, ChannelOrder::rgb);
  const ClipNormalization n;
  const std::size_t plane = 224 * 224;
  int mismatches = 0;
  for (std::size_t i = 0; i < plane; ++i) {
    // Plane 0 of the BGR tensor holds blue, normalised with mean[0]/std[0] (the red statistics).
    const float want = (float(ref.pixels[3 * i + 2]) / 255.0f - float(n.mean[0])) / float(n.std[0]);
    mismatches += bgr[std::int64_t(i)] != want;
  }
  CHECK(mismatches == 0);
  int differ = 0;
  for (std::int64_t i = 0; i < 3 * std::int64_t(plane); ++i) differ += rgb[i] != bgr[i];
  CHECK(differ > 0);
}

TEST_CASE("zero_image is the official all-zero text-only image") {
  const Tensor<float> z = zero_image();
  CHECK(z.shape() == Shape{3, 224, 224});
  for (float v : z) REQUIRE(v == 0.0f);
}
