// Pillow's bicubic resize of 8-bit images (ImagingResample, Pillow 9.4), re-implemented from its
// algorithm: a separable convolution, horizontal pass first, then vertical; each output sample is a
// weighted sum over input samples within `support = 2 * max(in/out, 1)` of its centre (so a
// downscale is antialiased), with the cubic kernel of a = -0.5 evaluated at distances scaled by
// 1 / max(in/out, 1); weights are normalised to sum to 1, converted to fixed point with 22
// fractional bits (rounding half away from zero), accumulated in int32 starting from 0.5, and each
// pass rounds and clamps to uint8. A pass whose dimension is unchanged is skipped (it would be
// the identity anyway), and the horizontal pass only computes the rows the vertical pass reads.
// For the same input pixels the output is bit-identical to `Image.resize((w, h), Image.BICUBIC)`
// (tests/vision/test_preprocess.cpp checks this on fixtures made by Pillow).
//
// resize_bicubic_pillow_window() computes a rectangle of that result and nothing else (each output
// sample has its own coefficient window), which is what CLIP's resize-then-centre-crop needs: the
// memory is the crop's, not the resized image's.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "lav2/core/error.hpp"
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

/// Fixed-point weights of output samples [o0, o0 + n) of one resampling pass, for each output
/// index `o`: input indices [first[j], first[j] + count[j]) with weights k[j * ksize + i], where
/// j = o - o0. `first` and `first + count` never decrease with `o`.
struct PillowCoeffs {
  int ksize = 0;
  int o0 = 0;
  std::vector<int> first, count;
  std::vector<std::int32_t> k;
};

/// Pillow's precompute_coeffs + normalize_coeffs_8bpc for a pass from `in_size` to `out_size`
/// samples over the whole input (box 0..in_size), for output samples [o0, o1) only. Output `o`'s
/// weights depend on `o`, `in_size` and `out_size` alone (its centre is (o + 0.5) * in/out), so
/// they are the very numbers Pillow computes for the full pass, at a cost of (o1 - o0) * ksize.
inline PillowCoeffs pillow_bicubic_coeffs(int in_size, int out_size, int o0, int o1) {
  LAV2_ASSERT(0 <= o0 && o0 < o1 && o1 <= out_size);
  constexpr double kSupport = 2.0;
  const float in0 = 0.0f, in1 = float(in_size);  // Pillow's box is float
  const double scale = double(in1 - in0) / out_size;
  const double filterscale = scale < 1.0 ? 1.0 : scale;
  const double support = kSupport * filterscale;
  const double ss = 1.0 / filterscale;
  PillowCoeffs c;
  c.ksize = int(std::ceil(support)) * 2 + 1;
  c.o0 = o0;
  const std::size_t n_out = std::size_t(o1 - o0);
  c.first.resize(n_out);
  c.count.resize(n_out);
  c.k.assign(n_out * std::size_t(c.ksize), 0);
  std::vector<double> w(std::size_t(c.ksize));
  for (int o = o0; o < o1; ++o) {
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
    const std::size_t j = std::size_t(o - o0);
    std::int32_t* k = c.k.data() + j * std::size_t(c.ksize);
    for (int i = 0; i < n; ++i) {
      const double v = sum != 0.0 ? w[std::size_t(i)] / sum : w[std::size_t(i)];
      const double scaled = v * double(1 << kPillowPrecisionBits);  // exact: a power of two
      k[i] = std::int32_t(v < 0 ? -0.5 + scaled : 0.5 + scaled);
    }
    c.first[j] = lo;
    c.count[j] = n;
  }
  return c;
}

/// Pillow's clip8: drop the fraction (arithmetic shift, i.e. floor) and clamp to 0..255.
inline std::uint8_t clip8(std::int32_t acc) {
  const std::int32_t v = acc >> kPillowPrecisionBits;
  return std::uint8_t(v < 0 ? 0 : (v > 255 ? 255 : v));
}

}  // namespace detail

/// \brief Columns [x0, x0 + cw) and rows [y0, y0 + ch) of resize_bicubic_pillow(src, w, h),
/// computed without the rest of the w x h image: bit-identical to resizing, then cropping.
///
/// Why this is exact: Pillow's passes are separable and each output sample depends only on its
/// own coefficient window (see pillow_bicubic_coeffs). The horizontal pass computes columns
/// [x0, x0 + cw) of the source rows the vertical pass reads for rows [y0, y0 + ch); the uint8
/// intermediate holds the same bytes as the matching part of Pillow's; the vertical pass then
/// computes rows [y0, y0 + ch). Memory: the cw x ch output, a cw x (rows read) intermediate and
/// (cw + ch) coefficient windows, whatever w and h are (a 1 x 20000 image "resizes" to
/// 224 x 4480000 for CLIP, of which 224 x 224 are kept).
/// \throws input_error when a size is not positive, the input is empty or the window is not
///         inside the w x h image.
inline Image resize_bicubic_pillow_window(const Image& src, int w, int h, int x0, int y0, int cw, int ch) {
  if (w <= 0 || h <= 0 || src.width <= 0 || src.height <= 0)
    LAV2_THROW(input_error, "resize_bicubic_pillow: cannot resize ", src.width, "x", src.height, " to ", w, "x", h);
  if (cw <= 0 || ch <= 0 || x0 < 0 || y0 < 0 || std::int64_t(x0) + cw > w || std::int64_t(y0) + ch > h)
    LAV2_THROW(input_error, "resize_bicubic_pillow: window ", cw, "x", ch, " at (", x0, ", ", y0,
               ") is not inside the ", w, "x", h, " result");
  const bool need_h = w != src.width, need_v = h != src.height;
  if (!need_h && !need_v) {  // Pillow copies the image; the window of the copy
    Image out(cw, ch, src.order);
    for (int y = 0; y < ch; ++y) std::copy_n(src.row(y0 + y) + std::size_t(x0) * 3u, std::size_t(cw) * 3u, out.row(y));
    return out;
  }
  const detail::PillowCoeffs cv =
      need_v ? detail::pillow_bicubic_coeffs(src.height, h, y0, y0 + ch) : detail::PillowCoeffs{};
  // Rows of the source the vertical pass reads: [row0, row1); all of the window without one.
  const int row0 = need_v ? cv.first.front() : y0;
  const int row1 = need_v ? cv.first.back() + cv.count.back() : y0 + ch;

  // Horizontal pass: source rows [row0, row1), columns [x0, x0 + cw) of the result.
  // `mid` row r is source row mid_row0 + r; its columns start at source column mid_col0.
  Image tmp;
  const Image* mid = &src;
  int mid_row0 = 0, mid_col0 = x0;
  if (need_h) {
    const detail::PillowCoeffs chz = detail::pillow_bicubic_coeffs(src.width, w, x0, x0 + cw);
    tmp = Image(cw, row1 - row0, src.order);
    for (int y = row0; y < row1; ++y) {
      const std::uint8_t* in = src.row(y);
      std::uint8_t* o = tmp.row(y - row0);
      for (int x = 0; x < cw; ++x) {
        const std::int32_t* k = chz.k.data() + std::size_t(x) * std::size_t(chz.ksize);
        const std::uint8_t* p = in + std::size_t(chz.first[std::size_t(x)]) * 3u;
        std::int32_t s0 = 1 << (detail::kPillowPrecisionBits - 1), s1 = s0, s2 = s0;
        for (int i = 0, n = chz.count[std::size_t(x)]; i < n; ++i, p += 3) {
          s0 += p[0] * k[i];
          s1 += p[1] * k[i];
          s2 += p[2] * k[i];
        }
        o[3 * x + 0] = detail::clip8(s0);
        o[3 * x + 1] = detail::clip8(s1);
        o[3 * x + 2] = detail::clip8(s2);
      }
    }
    if (!need_v) return tmp;  // rows [y0, y0 + ch) exactly
    mid = &tmp;
    mid_row0 = row0;
    mid_col0 = 0;
  }

  // Vertical pass: rows [y0, y0 + ch) of the result from `mid`. Accumulates whole rows (the same
  // integer sums as Pillow's per-pixel loop, in a cache-friendly order).
  Image out(cw, ch, src.order);
  const std::size_t row_len = std::size_t(cw) * 3u;
  std::vector<std::int32_t> acc(row_len);
  for (int y = 0; y < ch; ++y) {
    std::fill(acc.begin(), acc.end(), 1 << (detail::kPillowPrecisionBits - 1));
    const std::int32_t* k = cv.k.data() + std::size_t(y) * std::size_t(cv.ksize);
    const int first = cv.first[std::size_t(y)] - mid_row0;
    for (int i = 0, n = cv.count[std::size_t(y)]; i < n; ++i) {
      const std::uint8_t* in = mid->row(first + i) + std::size_t(mid_col0) * 3u;
      const std::int32_t ki = k[i];
      for (std::size_t j = 0; j < row_len; ++j) acc[j] += in[j] * ki;
    }
    std::uint8_t* o = out.row(y);
    for (std::size_t j = 0; j < row_len; ++j) o[j] = detail::clip8(acc[j]);
  }
  return out;
}

/// \brief Resizes like Pillow 9.4's `Image.resize((w, h), Image.BICUBIC)` on an 8-bit RGB image:
/// bit-identical for the same input pixels (see the top of this file for the algorithm).
/// Channels are resampled independently, so the channel order does not matter and is kept.
/// Allocates the whole w x h result; resize_bicubic_pillow_window() computes a part of it.
/// \throws input_error when `w` or `h` is not positive or the input is empty.
inline Image resize_bicubic_pillow(const Image& src, int w, int h) {
  if (w > 0 && h > 0 && w == src.width && h == src.height) return src;
  return resize_bicubic_pillow_window(src, w, h, 0, 0, std::max(w, 1), std::max(h, 1));
}

}  // namespace lav2::vision
