// The loss-curve PNG (loss_plot.hpp). The canvas is 640 x 360 RGB: a white page, the plot area
// framed in grey with four grid lines, the curve in blue (one segment per step, Bresenham), and
// labels in a 3 x 5 pixel font scaled by 2 (digits, '.', '-', 'e' and the letters of "step" and
// "loss"). stb_image_write is compiled in this file only.
#include "loss_plot.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include <lav2/core/error.hpp>

#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#include <stb/stb_image_write.h>
#pragma GCC diagnostic pop

namespace lav2::cli {
namespace {

struct Rgb {
  std::uint8_t r, g, b;
};

class Canvas {
 public:
  Canvas(int w, int h) : w_(w), h_(h), px_(std::size_t(w) * std::size_t(h) * 3u, 255) {}
  int width() const { return w_; }
  int height() const { return h_; }
  const std::uint8_t* data() const { return px_.data(); }

  void dot(int x, int y, Rgb c) {
    if (x < 0 || y < 0 || x >= w_ || y >= h_) return;
    std::uint8_t* p = &px_[(std::size_t(y) * std::size_t(w_) + std::size_t(x)) * 3u];
    p[0] = c.r, p[1] = c.g, p[2] = c.b;
  }
  // Bresenham's line, `thick` pixels wide downwards.
  void line(int x0, int y0, int x1, int y1, Rgb c, int thick = 1) {
    const int dx = std::abs(x1 - x0), dy = -std::abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
    int err = dx + dy;
    for (;;) {
      for (int t = 0; t < thick; ++t) dot(x0, y0 + t, c);
      if (x0 == x1 && y0 == y1) return;
      const int e2 = 2 * err;
      if (e2 >= dy) err += dy, x0 += sx;
      if (e2 <= dx) err += dx, y0 += sy;
    }
  }
  // `text` in the 3 x 5 font at scale 2, its top-left corner at (x, y).
  void text(int x, int y, const std::string& text, Rgb c) {
    for (char ch : text) {
      const unsigned short g = glyph_(ch);
      for (int row = 0; row < 5; ++row)
        for (int col = 0; col < 3; ++col)
          if (g >> (14 - row * 3 - col) & 1u)
            for (int k = 0; k < 4; ++k) dot(x + col * 2 + k % 2, y + row * 2 + k / 2, c);
      x += 8;
    }
  }
  static int text_width(const std::string& s) { return int(s.size()) * 8 - 2; }

 private:
  // Rows of 3 bits, top row in the high bits.
  static unsigned short glyph_(char c) {
    switch (c) {
      case '0': return 0b111'101'101'101'111;
      case '1': return 0b010'110'010'010'111;
      case '2': return 0b111'001'111'100'111;
      case '3': return 0b111'001'111'001'111;
      case '4': return 0b101'101'111'001'001;
      case '5': return 0b111'100'111'001'111;
      case '6': return 0b111'100'111'101'111;
      case '7': return 0b111'001'010'010'010;
      case '8': return 0b111'101'111'101'111;
      case '9': return 0b111'101'111'001'111;
      case '.': return 0b000'000'000'000'010;
      case '-': return 0b000'000'111'000'000;
      case 'e': return 0b000'111'111'100'111;
      case 's': return 0b000'111'110'011'111;
      case 't': return 0b010'111'010'010'011;
      case 'p': return 0b000'111'101'111'100;
      case 'l': return 0b110'010'010'010'111;
      case 'o': return 0b000'111'101'101'111;
      default: return 0;
    }
  }
  int w_, h_;
  std::vector<std::uint8_t> px_;
};

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, std::fabs(v) >= 1e4 || (v != 0 && std::fabs(v) < 1e-2) ? "%.2e" : "%.3f", v);
  return buf;
}

}  // namespace

void write_loss_png(const std::string& path, const std::vector<float>& losses) {
  const Rgb grey{160, 160, 160}, light{225, 225, 225}, blue{31, 90, 200}, black{0, 0, 0};
  Canvas c(640, 360);
  const int left = 80, right = 620, top = 20, bottom = 320;
  double lo = 0, hi = 1;
  if (!losses.empty()) {
    lo = *std::min_element(losses.begin(), losses.end());
    hi = *std::max_element(losses.begin(), losses.end());
  }
  if (!(hi > lo)) lo -= 0.5, hi += 0.5;
  const double pad = 0.05 * (hi - lo);
  const double y_lo = lo - pad, y_hi = hi + pad;
  for (int i = 1; i < 4; ++i) c.line(left, top + (bottom - top) * i / 4, right, top + (bottom - top) * i / 4, light);
  c.line(left, top, right, top, grey);
  c.line(left, bottom, right, bottom, grey);
  c.line(left, top, left, bottom, grey);
  c.line(right, top, right, bottom, grey);
  auto px = [&](std::size_t i) {
    const double f = losses.size() > 1 ? double(i) / double(losses.size() - 1) : 0.5;
    return left + int(std::lround(f * (right - left)));
  };
  auto py = [&](double v) { return bottom - int(std::lround((v - y_lo) / (y_hi - y_lo) * (bottom - top))); };
  for (std::size_t i = 1; i < losses.size(); ++i) c.line(px(i - 1), py(losses[i - 1]), px(i), py(losses[i]), blue, 2);
  if (losses.size() == 1) c.line(px(0) - 2, py(losses[0]), px(0) + 2, py(losses[0]), blue, 2);
  const std::string hi_s = number(hi), lo_s = number(lo), last = std::to_string(losses.size());
  c.text(left - 8 - Canvas::text_width(hi_s), py(hi) - 5, hi_s, black);
  c.text(left - 8 - Canvas::text_width(lo_s), py(lo) - 5, lo_s, black);
  c.text(8, (top + bottom) / 2 - 5, "loss", black);
  c.text(left, bottom + 8, "1", black);
  c.text(right - Canvas::text_width(last), bottom + 8, last, black);
  c.text((left + right) / 2 - Canvas::text_width("step") / 2, bottom + 22, "step", black);
  const std::string tmp = path + ".tmp";
  if (!stbi_write_png(tmp.c_str(), c.width(), c.height(), 3, c.data(), c.width() * 3) ||
      std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    LAV2_THROW(input_error, "--out: cannot write '", path, "'");
  }
}

}  // namespace lav2::cli
