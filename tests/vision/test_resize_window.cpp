// The crop-aware resize (vision/pillow_resize.hpp, vision/image_preprocess.hpp) against the full one:
// resize_bicubic_pillow_window(src, w, h, x0, y0, cw, ch) must equal the window of
// resize_bicubic_pillow(src, w, h), and resize_center_crop() must equal center_crop() of it, byte
// for byte, for up- and downscales, one-pass and identity sizes, odd crop offsets and padding.
#include <doctest/doctest.h>

#include <cstdint>

#include <lav2/vision/image_preprocess.hpp>
#include <lav2/vision/pillow_resize.hpp>

using namespace lav2;
using namespace lav2::vision;

namespace {

/// A small deterministic generator (the same sequence on every platform).
struct Lcg {
  std::uint64_t s;
  int next(int lo, int hi) {  // uniform enough in [lo, hi]
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    return lo + int((s >> 33) % std::uint64_t(hi - lo + 1));
  }
};

/// Noise with full-range steps: bicubic overshoot clamps at both ends.
Image noise_image(int w, int h, Lcg& g) {
  Image img(w, h, ChannelOrder::bgr);
  for (std::uint8_t& v : img.pixels) v = std::uint8_t(g.next(0, 3) == 0 ? 255 * g.next(0, 1) : g.next(0, 255));
  return img;
}

Image crop_of(const Image& img, int x0, int y0, int cw, int ch) {
  Image out(cw, ch, img.order);
  for (int y = 0; y < ch; ++y)
    for (int x = 0; x < cw; ++x)
      for (int c = 0; c < 3; ++c) out.at(x, y, c) = img.at(x0 + x, y0 + y, c);
  return out;
}

}  // namespace

TEST_CASE("resize_bicubic_pillow_window is the window of the full resize") {
  Lcg g{12345};
  int cases = 0;
  for (int t = 0; t < 400; ++t) {
    const int sw = g.next(1, 40), sh = g.next(1, 40);
    // Up, down, unchanged (one pass or none) in each direction.
    const int kind = g.next(0, 3);
    const int w = kind == 0 ? sw : g.next(1, 90), h = kind == 1 ? sh : (kind == 2 ? g.next(1, 6) : g.next(1, 90));
    const Image src = noise_image(sw, sh, g);
    const Image full = resize_bicubic_pillow(src, w, h);
    const int cw = g.next(1, w), ch = g.next(1, h);
    const int x0 = g.next(0, w - cw), y0 = g.next(0, h - ch);
    CAPTURE(sw);
    CAPTURE(sh);
    CAPTURE(w);
    CAPTURE(h);
    CAPTURE(x0);
    CAPTURE(y0);
    const Image win = resize_bicubic_pillow_window(src, w, h, x0, y0, cw, ch);
    REQUIRE(win.width == cw);
    REQUIRE(win.height == ch);
    CHECK(win.order == ChannelOrder::bgr);
    CHECK(win.pixels == crop_of(full, x0, y0, cw, ch).pixels);
    ++cases;
  }
  // Identity size: the window of the copy.
  const Image src = noise_image(9, 7, g);
  CHECK(resize_bicubic_pillow_window(src, 9, 7, 2, 3, 4, 4).pixels == crop_of(src, 2, 3, 4, 4).pixels);
  MESSAGE(cases, " random windows equal the full resize's");
}

TEST_CASE("resize_center_crop equals center_crop of the full resize, padding included") {
  Lcg g{777};
  for (int t = 0; t < 300; ++t) {
    const int sw = g.next(1, 30), sh = g.next(1, 30);
    const int w = g.next(1, 70), h = g.next(1, 70);
    // Mostly crops inside the resized image (CLIP's case), sometimes larger (torchvision pads).
    const int cw = g.next(1, w + (t % 4 == 0 ? 9 : 0)), ch = g.next(1, h + (t % 5 == 0 ? 9 : 0));
    CAPTURE(sw);
    CAPTURE(sh);
    CAPTURE(w);
    CAPTURE(h);
    CAPTURE(cw);
    CAPTURE(ch);
    const Image src = noise_image(sw, sh, g);
    const Image want = center_crop(resize_bicubic_pillow(src, w, h), cw, ch);
    const Image got = resize_center_crop(src, w, h, cw, ch);
    REQUIRE(got.width == cw);
    REQUIRE(got.height == ch);
    CHECK(got.pixels == want.pixels);
  }
}

TEST_CASE("the resized image of an extreme aspect ratio is never built") {
  Lcg g{99};
  // 1 x 131072 passes the decoder's limits; CLIP resizes it to 224 x 29360128 (20 GB as RGB).
  const Image thin = noise_image(1, 131072, g);
  const std::array<int, 2> wh = clip_resize_size(thin.width, thin.height);
  CHECK(wh == std::array<int, 2>{224, 29360128});
  const Image c = resize_center_crop(thin, wh[0], wh[1], 224, 224);
  CHECK(c.width == 224);
  CHECK(c.height == 224);
  const Tensor<float> t = preprocess_clip(thin);
  CHECK(t.shape() == Shape{3, 224, 224});
}

TEST_CASE("resize_bicubic_pillow_window rejects windows outside the result") {
  Lcg g{5};
  const Image src = noise_image(6, 5, g);
  CHECK_THROWS_AS(resize_bicubic_pillow_window(src, 10, 10, 5, 0, 6, 1), input_error);
  CHECK_THROWS_AS(resize_bicubic_pillow_window(src, 10, 10, -1, 0, 2, 2), input_error);
  CHECK_THROWS_AS(resize_bicubic_pillow_window(src, 10, 10, 0, 0, 0, 2), input_error);
  CHECK_THROWS_AS(resize_bicubic_pillow_window(src, 0, 10, 0, 0, 1, 1), input_error);
  CHECK_THROWS_AS(resize_bicubic_pillow_window(Image(), 10, 10, 0, 0, 1, 1), input_error);
  CHECK_THROWS_AS(resize_center_crop(src, 10, 10, 0, 3), input_error);
}
