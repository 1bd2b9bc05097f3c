// Images with rendered text, made at test time: DejaVu fonts (Debian's fonts-dejavu-core)
// rasterised with stb_truetype (Debian's libstb-dev) onto a plain, a textured (paper grain and
// ruling) or a photo-like (smooth colour fields, blobs and sensor noise) background. Everything is
// a function of a seed (a SplitMix64 stream, not <random>, whose distributions differ between
// standard libraries), so an image is the same on every machine.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <lav2/vision/image.hpp>

// stb_truetype's implementation, static to this test program; from /usr/include, a system header,
// so its own warnings stay quiet.
#define STB_TRUETYPE_IMPLEMENTATION
#define STBTT_STATIC
#include <stb/stb_truetype.h>

namespace lav2::test {

inline const char* const kDejaVuDir = "/usr/share/fonts/truetype/dejavu/";

/// SplitMix64: a small, fully specified pseudo-random stream.
class SplitMix {
 public:
  explicit SplitMix(std::uint64_t seed) : s_(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (s_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  /// Uniform in [0, 1).
  double uniform() { return double(next() >> 11) * (1.0 / 9007199254740992.0); }
  /// Uniform integer in [0, n).
  int below(int n) { return int(next() % std::uint64_t(n)); }

 private:
  std::uint64_t s_;
};

/// A TrueType font file, sized by x-height.
class Font {
 public:
  explicit Font(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    data_.assign(std::istreambuf_iterator<char>(f), {});
    ok_ = !data_.empty() && stbtt_InitFont(&info_, data_.data(), stbtt_GetFontOffsetForIndex(data_.data(), 0)) != 0;
  }
  bool ok() const { return ok_; }

  /// The scale (pixels per font unit) at which 'x' is `px` pixels tall.
  float scale_for_x_height(float px) const {
    int x0, y0, x1, y1;
    stbtt_GetCodepointBox(&info_, 'x', &x0, &y0, &x1, &y1);
    return px / float(y1 - y0);
  }
  /// Ascent, descent (negative) and line gap in pixels at `scale`.
  void metrics(float scale, float& ascent, float& descent, float& gap) const {
    int a, d, g;
    stbtt_GetFontVMetrics(&info_, &a, &d, &g);
    ascent = float(a) * scale;
    descent = float(d) * scale;
    gap = float(g) * scale;
  }
  /// The advance width of `text` (ASCII) in pixels, kerning included.
  float width(const std::string& text, float scale) const {
    float x = 0;
    for (std::size_t i = 0; i < text.size(); ++i) x += advance_(text, i, scale);
    return x;
  }
  /// Draws `text` (ASCII) with its baseline at y = `baseline`, starting at x = `x`, blending `ink`
  /// (three channels, the image's order) by each pixel's glyph coverage.
  void draw(vision::Image& img, float x, float baseline, const std::string& text, float scale,
            const std::uint8_t ink[3]) const {
    std::vector<unsigned char> bitmap;
    for (std::size_t i = 0; i < text.size(); ++i) {
      const int cp = static_cast<unsigned char>(text[i]);
      const float shift = x - std::floor(x);
      int x0, y0, x1, y1;
      stbtt_GetCodepointBitmapBoxSubpixel(&info_, cp, scale, scale, shift, 0, &x0, &y0, &x1, &y1);
      const int w = x1 - x0, h = y1 - y0;
      if (w > 0 && h > 0) {
        bitmap.assign(std::size_t(w) * std::size_t(h), 0);
        stbtt_MakeCodepointBitmapSubpixel(&info_, bitmap.data(), w, h, w, scale, scale, shift, 0, cp);
        const int ox = int(std::floor(x)) + x0, oy = int(std::lround(baseline)) + y0;
        for (int j = 0; j < h; ++j)
          for (int i2 = 0; i2 < w; ++i2) {
            const int px = ox + i2, py = oy + j;
            if (px < 0 || py < 0 || px >= img.width || py >= img.height) continue;
            const float a = float(bitmap[std::size_t(j) * std::size_t(w) + std::size_t(i2)]) / 255.0f;
            for (int c = 0; c < 3; ++c) {
              std::uint8_t& v = img.at(px, py, c);
              v = std::uint8_t(std::lround(float(v) * (1 - a) + float(ink[c]) * a));
            }
          }
      }
      x += advance_(text, i, scale);
    }
  }

 private:
  float advance_(const std::string& text, std::size_t i, float scale) const {
    int adv, lsb;
    const int cp = static_cast<unsigned char>(text[i]);
    stbtt_GetCodepointHMetrics(&info_, cp, &adv, &lsb);
    const int kern = i + 1 < text.size() ? stbtt_GetCodepointKernAdvance(&info_, cp, text[i + 1]) : 0;
    return float(adv + kern) * scale;
  }

  std::vector<unsigned char> data_;
  stbtt_fontinfo info_{};
  bool ok_ = false;
};

enum class Background { plain, textured, photo };
inline const char* background_name(Background b) {
  return b == Background::plain ? "plain" : b == Background::textured ? "textured" : "photo";
}

/// Fills `img` with a background. plain: white. textured: paper, 200..240 grey-beige with a
/// low-frequency mottle, per-pixel grain of +-32 and faint ruled lines every 9 px. photo: a
/// field of colour gradients, ten soft colour blobs of +-75 per channel, a +-20 value-noise texture
/// on a 6 px lattice and +-12 sensor noise per channel (luma mostly 90..255).
inline void fill_background(vision::Image& img, Background bg, std::uint64_t seed) {
  SplitMix rng(seed);
  const int W = img.width, H = img.height;
  if (bg == Background::plain) {
    std::fill(img.pixels.begin(), img.pixels.end(), std::uint8_t(255));
    return;
  }
  auto put = [&](int x, int y, float r, float g, float b) {
    const float rgb[3] = {r, g, b};
    for (int c = 0; c < 3; ++c) {
      // Channel c of the image is R, G, B in rgb order, B, G, R in bgr.
      const float v = rgb[img.order == vision::ChannelOrder::rgb ? c : 2 - c];
      img.at(x, y, c) = std::uint8_t(std::clamp(std::lround(v), 0L, 255L));
    }
  };
  if (bg == Background::textured) {
    const double fx = 2 * M_PI / (60 + 80 * rng.uniform()), fy = 2 * M_PI / (40 + 60 * rng.uniform());
    const double px = 6.28 * rng.uniform(), py = 6.28 * rng.uniform();
    for (int y = 0; y < H; ++y)
      for (int x = 0; x < W; ++x) {
        const double mottle = 12 * std::sin(fx * x + px) * std::cos(fy * y + py);
        const double grain = 64 * (rng.uniform() - 0.5);
        const double rule = (y % 9 == 0) ? -28 : 0;
        const double v = 222 + mottle + grain + rule;
        put(x, y, float(v + 6), float(v), float(v - 14));
      }
    return;
  }
  // A value-noise texture (foliage, gravel): random levels on a 6 px lattice, bilinear between.
  const int cell = 6, gw = W / cell + 2, gh = H / cell + 2;
  std::vector<double> lattice(std::size_t(gw) * std::size_t(gh));
  for (double& v : lattice) v = 40 * (rng.uniform() - 0.5);
  struct Blob {
    double x, y, r, c[3];
  };
  std::vector<Blob> blobs(10);
  for (Blob& b : blobs) {
    b = Blob{rng.uniform() * W, rng.uniform() * H, 30 + 150 * rng.uniform(), {}};
    for (double& c : b.c) c = 150 * (rng.uniform() - 0.5);
  }
  double g0[3], gx[3], gy[3];
  for (int c = 0; c < 3; ++c) {
    g0[c] = 165 + 50 * rng.uniform();
    gx[c] = 70 * (rng.uniform() - 0.5);
    gy[c] = 70 * (rng.uniform() - 0.5);
  }
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x) {
      const int cx = x / cell, cy = y / cell;
      const double fx = double(x % cell) / cell, fy = double(y % cell) / cell;
      auto at = [&](int i, int j) { return lattice[std::size_t(j) * std::size_t(gw) + std::size_t(i)]; };
      const double tex = (1 - fy) * ((1 - fx) * at(cx, cy) + fx * at(cx + 1, cy)) +
                         fy * ((1 - fx) * at(cx, cy + 1) + fx * at(cx + 1, cy + 1));
      double v[3];
      for (int c = 0; c < 3; ++c) v[c] = g0[c] + gx[c] * (double(x) / W - 0.5) + gy[c] * (double(y) / H - 0.5) + tex;
      for (const Blob& b : blobs) {
        const double d2 = ((x - b.x) * (x - b.x) + (y - b.y) * (y - b.y)) / (b.r * b.r);
        const double k = std::exp(-d2);
        for (int c = 0; c < 3; ++c) v[c] += b.c[c] * k;
      }
      for (double& c : v) c += 24 * (rng.uniform() - 0.5);
      put(x, y, float(v[0]), float(v[1]), float(v[2]));
    }
}

/// A page of text: `lines` of words, as drawn.
struct TextImage {
  vision::Image image;
  std::vector<std::vector<std::string>> lines;
};

/// Words for the pages: common English words, a few capitalised, a few numbers.
inline const std::vector<std::string>& page_words() {
  static const std::vector<std::string> w = {
      "the",      "market",  "opens",    "at",      "nine",     "every",  "morning", "and",     "closes",  "late",
      "fresh",    "bread",   "from",     "local",   "bakers",   "costs",  "more",    "than",    "last",    "year",
      "Monday",   "River",   "Station",  "London",  "Paris",    "garden", "window",  "yellow",  "house",   "street",
      "number",   "please",  "return",   "books",   "before",   "Friday", "coffee",  "tea",     "with",    "milk",
      "train",    "leaves",  "platform", "seven",   "ticket",   "price",  "total",   "invoice", "order",   "date",
      "2024",     "135",     "48",       "1907",    "office",   "closed", "during",  "winter",  "holiday", "season",
      "meeting",  "room",    "third",    "floor",   "turn",     "left",   "after",   "bridge",  "north",   "gate",
      "museum",   "exhibit", "ancient",  "maps",    "open",     "daily",  "except",  "Sunday",  "free",    "entry",
      "children", "under",   "twelve",   "welcome", "visitors", "quiet",  "zone",    "keep",    "door",    "shut",
      "water",    "level",   "warning",  "danger",  "exit",     "only",   "parking", "limit",   "hours",   "total"};
  return w;
}

/// Renders `n_lines` lines of words (about 42 x-heights wide each) in `font` at x-height
/// `x_height` px, dark ink, on `bg`. The image is wide enough for the longest line plus margins.
inline TextImage render_text_image(const Font& font, float x_height, Background bg, std::uint64_t seed,
                                   int n_lines = 4) {
  SplitMix rng(seed * 0x9E37u + 17);
  const float scale = font.scale_for_x_height(x_height);
  float ascent, descent, gap;
  font.metrics(scale, ascent, descent, gap);
  const float line_h = (ascent - descent + gap) * 1.15f, margin = 2 * x_height;
  const float target = 42 * x_height;
  TextImage t;
  float widest = 0;
  const std::vector<std::string>& words = page_words();
  for (int l = 0; l < n_lines; ++l) {
    std::vector<std::string> line;
    std::string text;
    while (line.empty() || font.width(text, scale) < target) {
      line.push_back(words[std::size_t(rng.below(int(words.size())))]);
      text += (text.empty() ? "" : " ") + line.back();
    }
    widest = std::max(widest, font.width(text, scale));
    t.lines.push_back(std::move(line));
  }
  t.image = vision::Image(int(std::ceil(widest + 2 * margin)), int(std::ceil(n_lines * line_h + 2 * margin)),
                          vision::ChannelOrder::bgr);
  fill_background(t.image, bg, seed);
  const std::uint8_t ink[3] = {std::uint8_t(30 + rng.below(20)), std::uint8_t(20 + rng.below(20)),
                               std::uint8_t(20 + rng.below(30))};
  for (int l = 0; l < n_lines; ++l) {
    std::string text;
    for (const std::string& w : t.lines[std::size_t(l)]) text += (text.empty() ? "" : " ") + w;
    font.draw(t.image, margin, margin + ascent + float(l) * line_h, text, scale, ink);
  }
  return t;
}

/// The words of OCR output: split at spaces, punctuation trimmed from both ends.
inline std::vector<std::string> split_words(const std::vector<std::string>& lines) {
  std::vector<std::string> out;
  for (const std::string& line : lines) {
    std::string w;
    auto flush = [&] {
      std::size_t a = 0, b = w.size();
      auto punct = [](char c) { return !std::isalnum(static_cast<unsigned char>(c)); };
      while (a < b && punct(w[a])) ++a;
      while (b > a && punct(w[b - 1])) --b;
      if (b > a) out.push_back(w.substr(a, b - a));
      w.clear();
    };
    for (char c : line) {
      if (c == ' ' || c == '\t' || c == '\n') flush();
      else w += c;
    }
    flush();
  }
  return out;
}

/// Words of `truth` found, in order, in `got`: the length of their longest common subsequence
/// (exact, case-sensitive matches).
inline int words_recovered(const std::vector<std::string>& truth, const std::vector<std::string>& got) {
  std::vector<int> prev(got.size() + 1, 0), cur(got.size() + 1, 0);
  for (const std::string& t : truth) {
    for (std::size_t j = 0; j < got.size(); ++j) cur[j + 1] = t == got[j] ? prev[j] + 1 : std::max(prev[j + 1], cur[j]);
    std::swap(prev, cur);
  }
  return prev[got.size()];
}

}  // namespace lav2::test
