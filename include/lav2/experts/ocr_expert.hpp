// The OCR expert (docs/experts.md): reads the text in a lav2 Image with Tesseract's C++ API and
// returns its lines, top to bottom, for the prompt composer to number (the paper's Fig. 9 gives
// an OCR expert's DocVQA lines as a numbered list).
//
// Tesseract is optional. A program gets this expert by linking lav2::tesseract (CMake option
// LAV2_WITH_TESSERACT, which finds Debian's libtesseract-dev with pkg-config `tesseract`); that
// target defines LAV2_WITH_TESSERACT=1. Without it this header declares only kOcrAvailable =
// false, so code can say why OCR is missing instead of failing to compile.
//
// What it does with the image: a grey plane in the Image's channel order (luma, ITU-R 601
// weights), upscaled 2x (bilinear) when neither side exceeds kUpscaleBelow pixels, since
// Tesseract's LSTM reads text of x-height 10-15 px much better at twice the size; then Tesseract
// (automatic page segmentation, Sauvola's local threshold in place of one global Otsu level, the
// source resolution set to 300 ppi so it does not guess). When that reading's mean confidence is
// under kRetryBelow, the value plane (the largest channel) is read too and the surer reading kept.
// Lines whose confidence is under OcrOptions::min_confidence, or with no letter or digit, are
// dropped: textured backgrounds otherwise yield lines of noise.
#pragma once

#ifndef LAV2_WITH_TESSERACT
#define LAV2_WITH_TESSERACT 0
#endif

#include <string>
#include <vector>

namespace lav2::experts {

/// \brief Whether this build has the OCR expert (LAV2_WITH_TESSERACT).
inline constexpr bool kOcrAvailable = LAV2_WITH_TESSERACT != 0;

/// \brief Settings of the OCR expert.
struct OcrOptions {
  std::string language = "eng";  ///< a traineddata name (Debian: tesseract-ocr-eng)
  std::string tessdata_dir;      ///< empty: TESSDATA_PREFIX, else Tesseract's compiled-in path
  float min_confidence = 40.0f;  ///< 0..100; lines Tesseract is less sure of are dropped
  int max_lines = 64;            ///< at most this many lines, the first ones (a prompt has room for few)
  int upscale = 0;               ///< 0: 2x when both sides are at most kUpscaleBelow px; 1: never; 2: always 2x
};

}  // namespace lav2::experts

#if LAV2_WITH_TESSERACT
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <mutex>

#include <tesseract/baseapi.h>
#include <tesseract/resultiterator.h>

#include "lav2/core/error.hpp"
#include "lav2/experts/expert.hpp"
#include "lav2/vision/image.hpp"

namespace lav2::experts {

/// \brief Images at most this long (either side, pixels) are read at twice their size.
inline constexpr int kUpscaleBelow = 2048;

namespace detail {
/// Which grey plane Tesseract reads: luma (0.299 R + 0.587 G + 0.114 B) keeps coloured ink on a
/// light page dark; value (the largest channel) keeps dark ink dark against a saturated background
/// (dark text on red has luma contrast ~70, value contrast ~200).
enum class Plane { luma, value };

/// The plane of `img`, `scale` (1 or 2) times larger, bilinear with pixel centres aligned (as
/// Pillow's and OpenCV's resize).
inline std::vector<std::uint8_t> grey_plane(const vision::Image& img, Plane plane, int scale) {
  const int w = img.width, h = img.height;
  const int r = img.order == vision::ChannelOrder::rgb ? 0 : 2, b = 2 - r;
  std::vector<float> y(std::size_t(w) * std::size_t(h));
  for (int j = 0; j < h; ++j)
    for (int i = 0; i < w; ++i)
      y[std::size_t(j) * std::size_t(w) + std::size_t(i)] =
          plane == Plane::value ? float(std::max({img.at(i, j, 0), img.at(i, j, 1), img.at(i, j, 2)}))
                                : 0.299f * img.at(i, j, r) + 0.587f * img.at(i, j, 1) + 0.114f * img.at(i, j, b);
  if (scale == 1) {
    std::vector<std::uint8_t> out(y.size());
    for (std::size_t k = 0; k < y.size(); ++k) out[k] = std::uint8_t(std::lround(std::clamp(y[k], 0.0f, 255.0f)));
    return out;
  }
  const int W = w * scale, H = h * scale;
  std::vector<std::uint8_t> out(std::size_t(W) * std::size_t(H));
  auto src = [&](float v, int n, int& i0, int& i1, float& f) {
    v = std::clamp(v, 0.0f, float(n - 1));
    i0 = int(v);
    i1 = std::min(i0 + 1, n - 1);
    f = v - float(i0);
  };
  for (int J = 0; J < H; ++J) {
    int j0, j1;
    float fy;
    src((float(J) + 0.5f) / float(scale) - 0.5f, h, j0, j1, fy);
    for (int I = 0; I < W; ++I) {
      int i0, i1;
      float fx;
      src((float(I) + 0.5f) / float(scale) - 0.5f, w, i0, i1, fx);
      auto at = [&](int i, int j) { return y[std::size_t(j) * std::size_t(w) + std::size_t(i)]; };
      const float v =
          (1 - fy) * ((1 - fx) * at(i0, j0) + fx * at(i1, j0)) + fy * ((1 - fx) * at(i0, j1) + fx * at(i1, j1));
      out[std::size_t(J) * std::size_t(W) + std::size_t(I)] = std::uint8_t(std::lround(std::clamp(v, 0.0f, 255.0f)));
    }
  }
  return out;
}

inline bool has_alnum(const std::string& s) {
  for (unsigned char c : s)
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80) return true;
  return false;
}
}  // namespace detail

/// \brief Tesseract over a lav2 Image. One Tesseract engine per expert, guarded by a mutex:
/// run() and read_lines() may be called from several threads, one at a time in effect.
class OcrExpert : public Expert {
 public:
  /// \brief Starts Tesseract with `opt.language`. \throws load_error when the language data
  /// cannot be loaded (naming the language and where it was looked for).
  explicit OcrExpert(OcrOptions opt = {}) : opt_(std::move(opt)), api_(std::make_unique<tesseract::TessBaseAPI>()) {
    // Tesseract's own messages (e.g. "Estimating resolution") go nowhere; failures are thrown.
    api_->SetVariable("debug_file", "/dev/null");
    const char* dir = opt_.tessdata_dir.empty() ? nullptr : opt_.tessdata_dir.c_str();
    if (opt_.upscale < 0 || opt_.upscale > 2)
      LAV2_THROW(input_error, "OCR: upscale ", opt_.upscale, " is not 0 (auto), 1 or 2");
    if (api_->Init(dir, opt_.language.c_str(), tesseract::OEM_DEFAULT) != 0)
      LAV2_THROW(load_error, "OCR: Tesseract cannot load language '", opt_.language, "' from ",
                 dir ? "'" + opt_.tessdata_dir + "'" : std::string("its default tessdata directory"),
                 " (Debian: apt-get install tesseract-ocr-", opt_.language, ")");
    api_->SetPageSegMode(tesseract::PSM_AUTO);
    // Sauvola's local threshold, not one global Otsu level: photos and uneven light vary the
    // background across the image (Tesseract 5: 0 Otsu, 1 Leptonica's tiled Otsu, 2 Sauvola).
    api_->SetVariable("thresholding_method", "2");
  }
  ~OcrExpert() override {
    if (api_) api_->End();
  }
  OcrExpert(const OcrExpert&) = delete;
  OcrExpert& operator=(const OcrExpert&) = delete;

  std::string name() const override { return "ocr"; }

  ExpertText run(ImageContext& image, ThreadPool& /*pool*/) const override {
    return ExpertText{"ocr", read_lines(image.image())};
  }

  /// \brief The text lines of `img`, top to bottom, each trimmed, without the line breaks.
  std::vector<std::string> read_lines(const vision::Image& img) const {
    if (img.empty()) LAV2_THROW(input_error, "OCR: the image is empty");
    const int scale = opt_.upscale == 0 ? (std::max(img.width, img.height) <= kUpscaleBelow ? 2 : 1) : opt_.upscale;
    std::lock_guard<std::mutex> lock(mutex_);
    // Luma first; when Tesseract is unsure of it, the value plane too, keeping the surer reading.
    Reading best = read_plane_(img, detail::Plane::luma, scale);
    if (best.mean_confidence < kRetryBelow) {
      Reading v = read_plane_(img, detail::Plane::value, scale);
      if (v.mean_confidence > best.mean_confidence) best = std::move(v);
    }
    return best.lines;
  }

  /// \brief A luma reading with a mean word confidence under this (0..100) is tried again on the
  /// value plane.
  static constexpr int kRetryBelow = 85;

 private:
  struct Reading {
    std::vector<std::string> lines;
    int mean_confidence = 0;
  };

  Reading read_plane_(const vision::Image& img, detail::Plane plane, int scale) const {
    const std::vector<std::uint8_t> grey = detail::grey_plane(img, plane, scale);
    const int W = img.width * scale, H = img.height * scale;
    api_->SetImage(grey.data(), W, H, 1, W);
    api_->SetSourceResolution(300);
    if (api_->Recognize(nullptr) != 0) {
      api_->Clear();
      LAV2_THROW(input_error, "OCR: Tesseract could not recognise the image (", img.width, "x", img.height, ")");
    }
    Reading r;
    r.mean_confidence = api_->MeanTextConf();
    std::unique_ptr<tesseract::ResultIterator> it(api_->GetIterator());
    if (it) {
      do {
        if (int(r.lines.size()) >= opt_.max_lines) break;
        std::unique_ptr<char[]> text(it->GetUTF8Text(tesseract::RIL_TEXTLINE));
        if (!text) continue;
        std::string line(text.get());
        while (!line.empty() && (line.back() == '\n' || line.back() == ' ')) line.pop_back();
        if (it->Confidence(tesseract::RIL_TEXTLINE) < opt_.min_confidence || !detail::has_alnum(line)) continue;
        r.lines.push_back(std::move(line));
      } while (it->Next(tesseract::RIL_TEXTLINE));
    }
    api_->Clear();
    return r;
  }

  OcrOptions opt_;
  std::unique_ptr<tesseract::TessBaseAPI> api_;
  mutable std::mutex mutex_;
};

}  // namespace lav2::experts
#endif  // LAV2_WITH_TESSERACT
