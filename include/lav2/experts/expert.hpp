// Expert models (the paper's fourth idea, docs/experts.md): at inference, models other than
// LLaMA-Adapter read the image, and the text they return joins the prompt. The official
// repository has no code for this (spec section 9); lav2 has two experts, a caption model (a
// second adapter over the same base, experts/caption_expert.hpp) and OCR (Tesseract,
// experts/ocr_expert.hpp), behind the interface below. experts/prompt_composer.hpp puts their
// text into the prompt.
//
// Layering: experts/ builds on model/ and vision/; inference (model/, vision/) never includes it.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "lav2/core/error.hpp"
#include "lav2/core/thread_pool.hpp"
#include "lav2/tensor/tensor.hpp"
#include "lav2/vision/clip_vit.hpp"
#include "lav2/vision/image.hpp"
#include "lav2/vision/image_preprocess.hpp"

namespace lav2::experts {

/// \brief One request's image, as every reader of it needs it: the pixels (OCR), and the CLIP
/// encoding, computed once and shared by the main model and every expert that runs the same CLIP
/// tower (the caption expert). Not thread-safe: one per request.
class ImageContext {
 public:
  /// \param image the decoded image (vision::load_image), in the channel order CLIP is to see.
  explicit ImageContext(vision::Image image) : image_(std::move(image)) {
    if (image_.empty()) LAV2_THROW(input_error, "ImageContext: the image is empty");
  }

  const vision::Image& image() const { return image_; }

  /// \brief The image preprocessed as `clip` takes it: (3, S, S), S = its input size.
  const Tensor<float>& clip_input(const vision::ClipVisionModel& clip) {
    const int size = clip.config().image_size();
    if (input_.numel() == 0 || input_.dim(1) != size) {
      vision::ClipPreprocess opt;
      opt.size = size;
      input_ = vision::preprocess_clip(image_, opt);
    }
    return input_;
  }

  /// \brief CLIP features (n_tokens, clip_dim) of the image under `clip`: computed on the first
  /// call, then returned again to every caller with the same tower (pointer identity).
  const Tensor<float>& clip_features(ThreadPool& pool, const vision::ClipVisionModel& clip) {
    if (features_of_ != &clip) {
      features_ = clip.encode(pool, clip_input(clip));
      features_of_ = &clip;
      ++clip_encodes_;
    }
    return features_;
  }

  /// \brief How many times CLIP ran on this image (1 when the encoding was shared).
  int clip_encodes() const { return clip_encodes_; }

 private:
  vision::Image image_;
  Tensor<float> input_;
  Tensor<float> features_;
  const vision::ClipVisionModel* features_of_ = nullptr;
  int clip_encodes_ = 0;
};

/// \brief What an expert read in the image: its name and its text, one entry per line. The
/// composer renders `caption` and `ocr` with their own templates, any other name generically.
struct ExpertText {
  std::string expert;              ///< "caption", "ocr", or another expert's name
  std::vector<std::string> lines;  ///< a caption is one line; OCR gives the text lines top to bottom
};

/// \brief An expert: image in, text context out. Implementations are immutable after
/// construction; run() may be called for many requests (one at a time unless the
/// implementation says otherwise).
class Expert {
 public:
  virtual ~Expert() = default;
  /// \brief The name the composer and the CLI know it by ("caption", "ocr").
  virtual std::string name() const = 0;
  /// \brief Reads the image. \param image the request's image and its shared CLIP encoding.
  virtual ExpertText run(ImageContext& image, ThreadPool& pool) const = 0;
};

}  // namespace lav2::experts
