// The official training augmentation (spec 4.3): torchvision's
//   RandomResizedCrop(224, scale=(0.9, 1.0), ratio=(0.75, 1.3333), interpolation=BICUBIC)
// then ToTensor and CLIP's Normalize, as data/dataset.py applies it to every training image
// (lav2 train --augment; without it the images go through generate's Resize + CenterCrop).
//
// The box is RandomResizedCrop.get_params, step by step:
//   area = W H; up to 10 tries: target = area * U(scale), aspect = exp(U(log ratio)),
//   w = round(sqrt(target aspect)), h = round(sqrt(target / aspect)); the first with
//   0 < w <= W and 0 < h <= H is taken, at top = U{0..H-h}, left = U{0..W-w};
//   otherwise the central crop of the ratio nearest the image's.
// The crop is then resized to 224 x 224 by Pillow's bicubic resampler (vision/pillow_resize.hpp,
// bit-identical to Pillow), as F.resized_crop does on a PIL image. Python's round is
// half-to-even (std::nearbyint under the default rounding mode). The random numbers are lav2's
// (std::mt19937_64, keyed by the caller), not torch's, so a crop is reproducible from the seed but
// is not the official run's crop.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>

#include "lav2/core/error.hpp"
#include "lav2/tensor/tensor.hpp"
#include "lav2/vision/image.hpp"
#include "lav2/vision/image_preprocess.hpp"
#include "lav2/vision/pillow_resize.hpp"

namespace lav2::train {

/// \brief A crop: rows [top, top + height), columns [left, left + width).
struct CropBox {
  int top = 0, left = 0, height = 0, width = 0;
};

/// \brief RandomResizedCrop.get_params (above) for a `width` x `height` image.
inline CropBox random_resized_crop_box(int width, int height, std::mt19937_64& rng, double scale_lo = 0.9,
                                       double scale_hi = 1.0, double ratio_lo = 0.75, double ratio_hi = 4.0 / 3.0) {
  if (width <= 0 || height <= 0) LAV2_THROW(input_error, "random resized crop of a ", width, "x", height, " image");
  auto uniform = [&](double lo, double hi) { return lo + (hi - lo) * (double(rng() >> 11) * 0x1.0p-53); };
  auto below = [&](int n) { return int(rng() % std::uint64_t(n)); };  // 0..n-1
  const double area = double(width) * double(height);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target = area * uniform(scale_lo, scale_hi);
    const double aspect = std::exp(uniform(std::log(ratio_lo), std::log(ratio_hi)));
    const int w = int(std::nearbyint(std::sqrt(target * aspect))), h = int(std::nearbyint(std::sqrt(target / aspect)));
    if (w > 0 && w <= width && h > 0 && h <= height) return {below(height - h + 1), below(width - w + 1), h, w};
  }
  const double in_ratio = double(width) / double(height);
  int w = width, h = height;
  if (in_ratio < ratio_lo) h = int(std::nearbyint(double(w) / ratio_lo));
  else if (in_ratio > ratio_hi) w = int(std::nearbyint(double(h) * ratio_hi));
  return {(height - h) / 2, (width - w) / 2, h, w};
}

/// \brief The augmented CLIP input (3, size, size) of `img`: the crop of a random box, resized to
/// size x size (Pillow bicubic), normalised.
inline Tensor<float> augment_clip(const vision::Image& img, std::mt19937_64& rng, int size = 224) {
  const CropBox box = random_resized_crop_box(img.width, img.height, rng);
  vision::Image crop(box.width, box.height, img.order);
  for (int y = 0; y < box.height; ++y)
    std::memcpy(crop.row(y), img.row(box.top + y) + std::size_t(box.left) * 3u, std::size_t(box.width) * 3u);
  return vision::normalize_to_tensor(vision::resize_bicubic_pillow(crop, size, size));
}

}  // namespace lav2::train
