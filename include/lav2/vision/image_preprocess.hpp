// CLIP image preprocessing, bit-exact with the official pipeline
// (torchvision 0.15 on a PIL image, Pillow 9.4):
//   Resize(224, BICUBIC)  -> resize_bicubic_pillow() (pillow_resize.hpp) to clip_resize_size()
//   CenterCrop(224)       -> center_crop()
//   ToTensor + Normalize  -> normalize_to_tensor()
// preprocess_clip() chains the three; zero_image() is the official text-only "image".
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
