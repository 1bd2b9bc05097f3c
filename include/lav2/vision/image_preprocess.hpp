// CLIP image preprocessing, bit-exact with the official pipeline
// (torchvision 0.15 on a PIL image, Pillow 9.4):
//   Resize(224, BICUBIC)  -> resize_bicubic_pillow() to clip_resize_size()
//   CenterCrop(224)       -> center_crop()
//   ToTensor + Normalize  -> normalize_to_tensor()
// preprocess_clip() chains the three; zero_image() is the official text-only "image".
//
// The resize is Pillow's ImagingResample for 8-bit images, re-implemented from its algorithm:
// a separable convolution, horizontal pass first, then vertical; each output sample is a weighted
// sum over input samples within `support = 2 * max(in/out, 1)` of its centre (so a downscale is
// antialiased), with the cubic kernel of a = -0.5 evaluated at distances scaled by
// 1 / max(in/out, 1); weights are normalised to sum to 1, converted to fixed point with 22
// fractional bits (rounding half away from zero), accumulated in int32 starting from 0.5, and each
// pass rounds and clamps to uint8. A pass whose dimension is unchanged is skipped (it would be
// the identity anyway), and the horizontal pass only computes the rows the vertical pass reads.
// For the same input pixels the output is bit-identical to `Image.resize((w, h), Image.BICUBIC)`
// (tests/vision/test_preprocess.cpp checks this on fixtures made by Pillow).
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "lav2/core/error.hpp"
#include "lav2/tensor/tensor.hpp"
#include "lav2/vision/image.hpp"

namespace lav2::vision {

namespace detail {

/// Pillow's PRECISION_BITS: 32 bits, minus 8 for the sample, minus 2 of headroom for kernels whose
/// partial sums exceed 1 or go negative.
inline constexpr int kPillowPrecisionBits = 32 - 8 - 2;

/// Forces `v` to be rounded to a double here. The coefficients must match Pillow's, which is built
/// without FMA; with -march=native and GCC's default -ffp-contract=fast, `p*x + c` would become one
/// fused multiply-add and could change the last bit of a weight.
inline double no_fma(double v) {
  volatile double r = v;
  return r;
}

/// Pillow's bicubic kernel (a = -0.5), evaluated in the same order of operations.
inline double pillow_bicubic(double x) {
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) {
    // ((a + 2) x - (a + 3)) x x + 1
    const double t = no_fma((a + 2.0) * x) - (a + 3.0);
    return no_fma(t * x * x) + 1.0;
  }
  if (x < 2.0) {
    // (((x - 5) x + 8) x - 4) a
    const double t = no_fma((x - 5.0) * x) + 8.0;
    return (no_fma(t * x) - 4.0) * a;
  }
  return 0.0;
}

/// Fixed-point weights of one resampling pass, for each output index `o`:
/// input indices [first[o], first[o] + count[o]) with weights k[o * ksize + i].
struct PillowCoeffs {
  int ksize = 0;
  std::vector<int> first, count;
  std::vector<std::int32_t> k;
};

/// Pillow's precompute_coeffs + normalize_coeffs_8bpc for a pass from `in_size` to `out_size`
/// samples over the whole input (box 0..in_size).
inline PillowCoeffs pillow_bicubic_coeffs(int in_size, int out_size) {
  constexpr double kSupport = 2.0;
  const float in0 = 0.0f, in1 = float(in_size);  // Pillow's box is float
  const double scale = double(in1 - in0) / out_size;
  const double filterscale = scale < 1.0 ? 1.0 : scale;
  const double support = kSupport * filterscale;
  const double ss = 1.0 / filterscale;
  PillowCoeffs c;
  c.ksize = int(std::ceil(support)) * 2 + 1;
  c.first.resize(std::size_t(out_size));
  c.count.resize(std::size_t(out_size));
  c.k.assign(std::size_t(out_size) * std::size_t(c.ksize), 0);
  std::vector<double> w(std::size_t(c.ksize));
  for (int o = 0; o < out_size; ++o) {
    const double center = in0 + no_fma((o + 0.5) * scale);
    int lo = int(center - support + 0.5);  // truncation toward zero, as Pillow's (int) cast
    if (lo < 0) lo = 0;
    int hi = int(center + support + 0.5);
    if (hi > in_size) hi = in_size;
    const int n = hi - lo;
    LAV2_ASSERT(n >= 1 && n <= c.ksize);
    double sum = 0.0;
    for (int i = 0; i < n; ++i) {
      w[std::size_t(i)] = pillow_bicubic((i + lo - center + 0.5) * ss);
      sum += w[std::size_t(i)];
    }
    std::int32_t* k = c.k.data() + std::size_t(o) * std::size_t(c.ksize);
    for (int i = 0; i < n; ++i) {
      const double v = sum != 0.0 ? w[std::size_t(i)] / sum : w[std::size_t(i)];
      const double scaled = v * double(1 << kPillowPrecisionBits);  // exact: a power of two
      k[i] = std::int32_t(v < 0 ? -0.5 + scaled : 0.5 + scaled);
    }
    c.first[std::size_t(o)] = lo;
    c.count[std::size_t(o)] = n;
  }
  return c;
}

/// Pillow's clip8: drop the fraction (arithmetic shift, i.e. floor) and clamp to 0..255.
inline std::uint8_t clip8(std::int32_t acc) {
  const std::int32_t v = acc >> kPillowPrecisionBits;
  return std::uint8_t(v < 0 ? 0 : (v > 255 ? 255 : v));
}

/// Round-half-to-even of d / 2 for d >= 0, i.e. Python's round(d / 2.0).
inline int half_round_even(int d) {
  const int q = d / 2;
  return (d % 2 == 0 || q % 2 == 0) ? q : q + 1;
}

}  // namespace detail

/// \brief Resizes like Pillow 9.4's `Image.resize((w, h), Image.BICUBIC)` on an 8-bit RGB image:
/// bit-identical for the same input pixels (see the top of this file for the algorithm).
/// Channels are resampled independently, so the channel order does not matter and is kept.
/// \throws input_error when `w` or `h` is not positive or the input is empty.
inline Image resize_bicubic_pillow(const Image& src, int w, int h) {
  if (w <= 0 || h <= 0 || src.width <= 0 || src.height <= 0)
    LAV2_THROW(input_error, "resize_bicubic_pillow: cannot resize ", src.width, "x", src.height, " to ", w, "x", h);
  if (w == src.width && h == src.height) return src;
  const bool need_h = w != src.width, need_v = h != src.height;
  const detail::PillowCoeffs cv = detail::pillow_bicubic_coeffs(src.height, h);
  // Rows of the source the vertical pass reads: [row0, row1).
  const int row0 = need_v ? cv.first.front() : 0;
  const int row1 = need_v ? cv.first.back() + cv.count.back() : src.height;

  // Horizontal pass: (row1 - row0, src.width) -> (row1 - row0, w).
  Image tmp;
  const Image* mid = &src;
  int mid_row0 = 0;  // source row held in mid's row 0
  if (need_h) {
    const detail::PillowCoeffs ch = detail::pillow_bicubic_coeffs(src.width, w);
    tmp = Image(w, row1 - row0, src.order);
    for (int y = row0; y < row1; ++y) {
      const std::uint8_t* in = src.row(y);
      std::uint8_t* out = tmp.row(y - row0);
      for (int x = 0; x < w; ++x) {
        const std::int32_t* k = ch.k.data() + std::size_t(x) * std::size_t(ch.ksize);
        const std::uint8_t* p = in + std::size_t(ch.first[std::size_t(x)]) * 3u;
        std::int32_t s0 = 1 << (detail::kPillowPrecisionBits - 1), s1 = s0, s2 = s0;
        for (int i = 0, n = ch.count[std::size_t(x)]; i < n; ++i, p += 3) {
          s0 += p[0] * k[i];
          s1 += p[1] * k[i];
          s2 += p[2] * k[i];
        }
        out[3 * x + 0] = detail::clip8(s0);
        out[3 * x + 1] = detail::clip8(s1);
        out[3 * x + 2] = detail::clip8(s2);
      }
    }
    mid = &tmp;
    mid_row0 = row0;
  }
  if (!need_v) {
    tmp.order = src.order;
    return tmp;
  }

  // Vertical pass: (rows, w) -> (h, w). Accumulates whole rows (same integer sums as Pillow's
  // per-pixel loop, in a cache-friendly order).
  Image out(w, h, src.order);
  const std::size_t row_len = std::size_t(w) * 3u;
  std::vector<std::int32_t> acc(row_len);
  for (int y = 0; y < h; ++y) {
    std::fill(acc.begin(), acc.end(), 1 << (detail::kPillowPrecisionBits - 1));
    const std::int32_t* k = cv.k.data() + std::size_t(y) * std::size_t(cv.ksize);
    const int first = cv.first[std::size_t(y)] - mid_row0;
    for (int i = 0, n = cv.count[std::size_t(y)]; i < n; ++i) {
      const std::uint8_t* in = mid->row(first + i);
      const std::int32_t ki = k[i];
      for (std::size_t j = 0; j < row_len; ++j) acc[j] += in[j] * ki;
    }
    std::uint8_t* o = out.row(y);
    for (std::size_t j = 0; j < row_len; ++j) o[j] = detail::clip8(acc[j]);
  }
  return out;
}

/// \brief The size torchvision's `Resize(short_side)` gives a w x h image: the short side becomes
/// `short_side`, the long side `int(short_side * long / short)` (truncated).
inline std::array<int, 2> clip_resize_size(int w, int h, int short_side = 224) {
  if (w <= 0 || h <= 0 || short_side <= 0)
    LAV2_THROW(input_error, "clip_resize_size: invalid size ", w, "x", h, " -> ", short_side);
  const std::int64_t s = std::min(w, h), l = std::max(w, h);
  const std::int64_t nl = std::int64_t(short_side) * l / s;
  if (nl > INT32_MAX) LAV2_THROW(limit_error, "clip_resize_size: ", w, "x", h, " resizes to a side of ", nl);
  return w <= h ? std::array<int, 2>{short_side, int(nl)} : std::array<int, 2>{int(nl), short_side};
}

/// \brief torchvision's `CenterCrop((h, w))` on a PIL image: `top = round((H - h) / 2)`,
/// `left = round((W - w) / 2)` with Python's round-half-to-even; an image smaller than the crop is
/// first zero-padded by ((w - W) // 2, (h - H) // 2) on the left/top and the rest on the right/bottom.
inline Image center_crop(const Image& src, int w, int h) {
  if (w <= 0 || h <= 0) LAV2_THROW(input_error, "center_crop: invalid crop ", w, "x", h);
  // Offsets of the crop in source coordinates (negative where torchvision pads).
  int left, top;
  if (w > src.width || h > src.height) {
    const int pad_l = w > src.width ? (w - src.width) / 2 : 0;
    const int pad_t = h > src.height ? (h - src.height) / 2 : 0;
    const int pad_r = w > src.width ? (w - src.width + 1) / 2 : 0;
    const int pad_b = h > src.height ? (h - src.height + 1) / 2 : 0;
    const int pw = src.width + pad_l + pad_r, ph = src.height + pad_t + pad_b;
    left = detail::half_round_even(pw - w) - pad_l;
    top = detail::half_round_even(ph - h) - pad_t;
  } else {
    left = detail::half_round_even(src.width - w);
    top = detail::half_round_even(src.height - h);
  }
  Image out(w, h, src.order);  // zero-filled
  for (int y = 0; y < h; ++y) {
    const int sy = y + top;
    if (sy < 0 || sy >= src.height) continue;
    const int x0 = std::max(0, -left), x1 = std::min(w, src.width - left);
    if (x1 > x0)
      std::memcpy(out.row(y) + std::size_t(x0) * 3u, src.row(sy) + std::size_t(x0 + left) * 3u,
                  std::size_t(x1 - x0) * 3u);
  }
  return out;
}

/// \brief Mean and std of CLIP's Normalize, indexed by plane (not by colour: with BGR input,
/// plane 0 is blue and is still normalised with mean[0], exactly as the official code does).
struct ClipNormalization {
  std::array<double, 3> mean{0.48145466, 0.4578275, 0.40821073};
  std::array<double, 3> std{0.26862954, 0.26130258, 0.27577711};
};

/// \brief torchvision `ToTensor` then `Normalize`: (3, H, W) fp32 with
/// `plane[c] = (float(v) / 255 - mean[c]) / std[c]`, computed in float32 in that order
/// (`img.float().div(255)`, then `sub_(mean).div_(std)` with mean/std cast to float32).
inline Tensor<float> normalize_to_tensor(const Image& img, const ClipNormalization& norm = {}) {
  Tensor<float> t(Shape{3, img.height, img.width});
  // Each plane maps a byte to a float; a 256-entry table per plane gives the same values.
  std::array<std::array<float, 256>, 3> lut;
  for (int c = 0; c < 3; ++c) {
    const float m = float(norm.mean[std::size_t(c)]), s = float(norm.std[std::size_t(c)]);
    for (int v = 0; v < 256; ++v) {
      const float x = float(v) / 255.0f;
      lut[std::size_t(c)][std::size_t(v)] = (x - m) / s;
    }
  }
  const std::size_t plane = std::size_t(img.width) * std::size_t(img.height);
  float* out = t.data();
  for (std::size_t i = 0; i < plane; ++i) {
    const std::uint8_t* p = img.pixels.data() + 3 * i;
    out[i] = lut[0][p[0]];
    out[plane + i] = lut[1][p[1]];
    out[2 * plane + i] = lut[2][p[2]];
  }
  return t;
}

/// \brief Options of preprocess_clip(); the defaults are the official ViT-L/14 transform.
struct ClipPreprocess {
  int size = 224;  ///< Resize(size) then CenterCrop(size)
  ClipNormalization norm;
  /// The resized image (before the crop) is materialised: a thin image (1 x 131072 passes the
  /// decoder's limits in a few hundred bytes) would resize to 224 x 29360128, 20 GB. Refused above
  /// this many pixels (limit_error); the default admits aspect ratios up to ~1300:1.
  std::uint64_t max_resized_pixels = 1ull << 26;
};

/// \brief The official `clip_transform`: Resize(224, BICUBIC) -> CenterCrop(224) -> ToTensor ->
/// Normalize. Returns (3, 224, 224) fp32, planes in the image's channel order (pass a BGR image,
/// as load_image() returns by default, to match the released weights).
inline Tensor<float> preprocess_clip(const Image& img, const ClipPreprocess& opt = {}) {
  const std::array<int, 2> wh = clip_resize_size(img.width, img.height, opt.size);
  if (std::uint64_t(wh[0]) * std::uint64_t(wh[1]) > opt.max_resized_pixels)
    LAV2_THROW(limit_error, "preprocess_clip: a ", img.width, " x ", img.height, " image resizes to ", wh[0], " x ",
               wh[1], " pixels before the crop, over the limit of ", opt.max_resized_pixels,
               " (aspect ratio too extreme)");
  const Image resized = resize_bicubic_pillow(img, wh[0], wh[1]);
  return normalize_to_tensor(center_crop(resized, opt.size, opt.size), opt.norm);
}

/// \brief The official text-only "image": `torch.zeros(3, 224, 224)`, already normalised.
inline Tensor<float> zero_image(int size = 224) { return Tensor<float>(Shape{3, size, size}); }

}  // namespace lav2::vision
