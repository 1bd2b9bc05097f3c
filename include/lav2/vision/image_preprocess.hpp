// CLIP image preprocessing, bit-exact with the official pipeline
// (torchvision 0.15 on a PIL image, Pillow 9.4):
//   Resize(224, BICUBIC)  -> resize_bicubic_pillow() (pillow_resize.hpp) to clip_resize_size()
//   CenterCrop(224)       -> center_crop()
//   ToTensor + Normalize  -> normalize_to_tensor()
// preprocess_clip() chains the three, fusing the first two (resize_center_crop(): only the
// pixels the crop keeps are resampled); zero_image() is the official text-only "image".
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <vector>

#include "lav2/core/error.hpp"
#include "lav2/tensor/tensor.hpp"
#include "lav2/vision/image.hpp"
#include "lav2/vision/pillow_resize.hpp"

namespace lav2::vision {

namespace detail {

/// Round-half-to-even of d / 2 for d >= 0, i.e. Python's round(d / 2.0).
inline int half_round_even(int d) {
  const int q = d / 2;
  return (d % 2 == 0 || q % 2 == 0) ? q : q + 1;
}

}  // namespace detail

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

namespace detail {

/// A rectangle [x0, x1) x [y0, y1) in image coordinates.
struct PixelRect {
  int x0 = 0, y0 = 0, x1 = 0, y1 = 0;
  int width() const { return x1 - x0; }
  int height() const { return y1 - y0; }
  bool empty() const { return x1 <= x0 || y1 <= y0; }
};

/// torchvision's CenterCrop of a crop_w x crop_h crop from a width x height image, as the crop's
/// rectangle in image coordinates: `top = round((H - h) / 2)`, `left = round((W - w) / 2)` with
/// Python's round-half-to-even; where the image is smaller, torchvision first zero-pads it by
/// ((w - W) // 2, (h - H) // 2) on the left/top and the rest on the right/bottom, so the
/// rectangle starts at a negative offset there.
inline PixelRect center_crop_rect(int width, int height, int crop_w, int crop_h) {
  int left, top;
  if (crop_w > width || crop_h > height) {
    const int pad_l = crop_w > width ? (crop_w - width) / 2 : 0;
    const int pad_t = crop_h > height ? (crop_h - height) / 2 : 0;
    const int pad_r = crop_w > width ? (crop_w - width + 1) / 2 : 0;
    const int pad_b = crop_h > height ? (crop_h - height + 1) / 2 : 0;
    const int pw = width + pad_l + pad_r, ph = height + pad_t + pad_b;
    left = half_round_even(pw - crop_w) - pad_l;
    top = half_round_even(ph - crop_h) - pad_t;
  } else {
    left = half_round_even(width - crop_w);
    top = half_round_even(height - crop_h);
  }
  return {left, top, left + crop_w, top + crop_h};
}

/// The part of `r` inside a width x height image (empty when they do not meet).
inline PixelRect clip_rect(const PixelRect& r, int width, int height) {
  return {std::max(r.x0, 0), std::max(r.y0, 0), std::min(r.x1, width), std::min(r.y1, height)};
}

/// Copies a cw x ch block from `from` at (fx, fy) into `to` at (tx, ty); both blocks lie inside.
inline void copy_block(const Image& from, int fx, int fy, Image& to, int tx, int ty, int cw, int ch) {
  for (int y = 0; y < ch; ++y)
    std::memcpy(to.row(ty + y) + std::size_t(tx) * 3u, from.row(fy + y) + std::size_t(fx) * 3u, std::size_t(cw) * 3u);
}

}  // namespace detail

/// \brief torchvision's `CenterCrop((h, w))` on a PIL image: `top = round((H - h) / 2)`,
/// `left = round((W - w) / 2)` with Python's round-half-to-even; an image smaller than the crop is
/// first zero-padded by ((w - W) // 2, (h - H) // 2) on the left/top and the rest on the right/bottom.
inline Image center_crop(const Image& src, int w, int h) {
  if (w <= 0 || h <= 0) LAV2_THROW(input_error, "center_crop: invalid crop ", w, "x", h);
  const detail::PixelRect crop = detail::center_crop_rect(src.width, src.height, w, h);
  const detail::PixelRect in = detail::clip_rect(crop, src.width, src.height);
  Image out(w, h, src.order);  // zero-filled: the padding
  if (!in.empty())
    detail::copy_block(src, in.x0, in.y0, out, in.x0 - crop.x0, in.y0 - crop.y0, in.width(), in.height());
  return out;
}

/// \brief `center_crop(resize_bicubic_pillow(src, w, h), crop_w, crop_h)`, bit-identical, without
/// the w x h image: only the pixels the crop keeps are resampled (resize_bicubic_pillow_window), so
/// time and memory follow the crop, not the aspect ratio. (A 1 x 20000 image resizes to
/// 224 x 4480000 for CLIP, 3 GB, of which 224 x 224 survive the crop.)
/// \throws input_error when a size is not positive or `src` is empty.
inline Image resize_center_crop(const Image& src, int w, int h, int crop_w, int crop_h) {
  if (crop_w <= 0 || crop_h <= 0) LAV2_THROW(input_error, "center_crop: invalid crop ", crop_w, "x", crop_h);
  if (w <= 0 || h <= 0 || src.width <= 0 || src.height <= 0)
    LAV2_THROW(input_error, "resize_bicubic_pillow: cannot resize ", src.width, "x", src.height, " to ", w, "x", h);
  const detail::PixelRect crop = detail::center_crop_rect(w, h, crop_w, crop_h);
  const detail::PixelRect in = detail::clip_rect(crop, w, h);  // never empty: the crop is centred
  Image part = resize_bicubic_pillow_window(src, w, h, in.x0, in.y0, in.width(), in.height());
  if (in.width() == crop_w && in.height() == crop_h) return part;  // no padding: the part is the crop
  Image out(crop_w, crop_h, src.order);                            // zero-filled: the padding
  detail::copy_block(part, 0, 0, out, in.x0 - crop.x0, in.y0 - crop.y0, in.width(), in.height());
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
};

/// \brief The official `clip_transform`: Resize(224, BICUBIC) -> CenterCrop(224) -> ToTensor ->
/// Normalize. Returns (3, 224, 224) fp32, planes in the image's channel order (pass a BGR image,
/// as load_image() returns by default, to match the released weights). The resized image is never
/// built (resize_center_crop), so any aspect ratio the decoder's limits admit is preprocessed in
/// memory proportional to the crop: `1 x 131072` works as `640 x 480` does.
inline Tensor<float> preprocess_clip(const Image& img, const ClipPreprocess& opt = {}) {
  const std::array<int, 2> wh = clip_resize_size(img.width, img.height, opt.size);
  return normalize_to_tensor(resize_center_crop(img, wh[0], wh[1], opt.size, opt.size), opt.norm);
}

/// \brief The official text-only "image": `torch.zeros(3, 224, 224)`, already normalised.
inline Tensor<float> zero_image(int size = 224) { return Tensor<float>(Shape{3, size, size}); }

}  // namespace lav2::vision
