// The whole visual branch of LLaMA-Adapter V2 (docs/vision.md): an image, or the all-zero
// normalised image of the text-only path, -> CLIP features [n_tokens, clip_dim] -> the visual
// query [Q, dim] that the adapter adds to its prompts. The CLIP tower is frozen and large, so it
// is held by shared_ptr and may serve several encoders (one per adapter); the projector belongs
// to one adapter checkpoint. Immutable after construction: every method is const and keeps no
// state between calls, so one encoder may serve concurrent requests (each with its own pool).
#pragma once

#include <memory>
#include <string>
#include <utility>

#include "lav2/core/error.hpp"
#include "lav2/core/thread_pool.hpp"
#include "lav2/io/tensor_map.hpp"
#include "lav2/tensor/tensor.hpp"
#include "lav2/vision/clip_vit.hpp"
#include "lav2/vision/image.hpp"
#include "lav2/vision/image_preprocess.hpp"
#include "lav2/vision/visual_projector.hpp"

namespace lav2::vision {

/// \brief Every step of one encode, for callers that dump or inspect them.
struct VisualEncoding {
  Tensor<float> image;     ///< (3, image_size, image_size), normalised as CLIP takes it
  Tensor<float> features;  ///< (n_tokens, clip_dim): [CLS] then the patches
  Tensor<float> query;     ///< (Q, dim): the visual query
};

/// \brief CLIP tower + visual projector.
class VisualEncoder {
 public:
  /// \brief Pairs a loaded tower with a projector; load_error when the tower's output width is
  /// not the projector's input width.
  VisualEncoder(std::shared_ptr<const ClipVisionModel> clip, VisualProjector projector)
      : clip_(std::move(clip)), projector_(std::move(projector)) {
    if (!clip_) LAV2_THROW(input_error, "VisualEncoder: no CLIP tower");
    if (clip_->config().out_dim != projector_.config().clip_dim)
      LAV2_THROW(load_error, "visual projector: clip_proj.weight takes CLIP features of width ",
                 projector_.config().clip_dim, ", but the CLIP tower gives ", clip_->config().out_dim,
                 " (its 'proj' columns)");
  }

  /// \brief The projector from an adapter checkpoint's 'model' tensors (model::AdapterFile's
  /// `tensors`, `path` and `keep_alive`). \param visual_heads see VisualProjector::from_tensors.
  static VisualEncoder from_adapter(std::shared_ptr<const ClipVisionModel> clip, const io::TensorMap& adapter_tensors,
                                    const std::string& adapter_path, int visual_heads = 16,
                                    std::shared_ptr<const void> keep_alive = {}) {
    return VisualEncoder(std::move(clip), VisualProjector::from_tensors(adapter_tensors, adapter_path, visual_heads,
                                                                        std::move(keep_alive)));
  }

  const ClipVisionModel& clip() const { return *clip_; }
  const std::shared_ptr<const ClipVisionModel>& clip_ptr() const { return clip_; }
  const VisualProjector& projector() const { return projector_; }
  /// Rows Q and width dim of the visual query.
  int n_queries() const { return projector_.config().n_queries; }
  int dim() const { return projector_.config().dim; }

  /// \brief The official text-only input: the all-zero normalised image at the tower's size.
  Tensor<float> zero_image() const { return vision::zero_image(clip_->config().image_size()); }
  /// \brief Decodes and preprocesses a PNG/JPEG as CLIP takes it (input_error / load_error
  /// naming the file). The released weights were trained on BGR (see image.hpp).
  Tensor<float> preprocess_file(const std::string& path, ChannelOrder order = ChannelOrder::bgr) const {
    return preprocess_clip(load_image(path, {}, order));
  }

  /// \brief CLIP features (n_tokens, clip_dim) -> visual query (Q, dim).
  Tensor<float> project(ThreadPool& pool, const Tensor<float>& clip_features) const {
    return projector_.encode(pool, clip_features);
  }
  /// \brief A normalised image (3, S, S) -> visual query (Q, dim).
  Tensor<float> encode(ThreadPool& pool, const Tensor<float>& image) const {
    return project(pool, clip_->encode(pool, image));
  }
  /// \brief The visual query of the all-zero image (the text-only path).
  Tensor<float> encode_zero_image(ThreadPool& pool) const { return encode(pool, zero_image()); }
  /// \brief The visual query of an image file.
  Tensor<float> encode_file(ThreadPool& pool, const std::string& path, ChannelOrder order = ChannelOrder::bgr) const {
    return encode(pool, preprocess_file(path, order));
  }
  /// \brief encode() keeping every step: the image as given, the CLIP features and the query.
  VisualEncoding encode_steps(ThreadPool& pool, Tensor<float> image) const {
    VisualEncoding e;
    e.features = clip_->encode(pool, image);
    e.query = project(pool, e.features);
    e.image = std::move(image);
    return e;
  }

 private:
  std::shared_ptr<const ClipVisionModel> clip_;
  VisualProjector projector_;
};

}  // namespace lav2::vision
