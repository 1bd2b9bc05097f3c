// The caption expert (docs/experts.md): a second LLaMA-Adapter V2 adapter, trained to caption
// (the release's CAPTION-7B; the paper's Fig. 8 uses LLaMA-Adapter V1 trained on COCO Caption),
// bound to the base LLaMA and the CLIP tower that the main model already holds:
//   - its LlamaModel is model::build_model() over the same opened base: the frozen matrices are
//     views into the one mapping of consolidated.*.pth, so only the adapter's own tensors (and the
//     small f32 copies of norms and biases every model makes) are extra;
//   - its VisualEncoder pairs the caption adapter's projector with the same ClipVisionModel
//     (shared_ptr), and run() takes the CLIP features from the request's ImageContext, so the
//     image goes through CLIP once for the main model and the caption expert together;
//   - it generates from format_prompt("Generate caption of this image") (the release's caption
//     prompt, spec section 7), greedy, up to CaptionOptions::max_new_tokens, in a RunState of its
//     own that lives only during run().
#pragma once

#include <memory>
#include <string>
#include <utility>

#include "lav2/core/error.hpp"
#include "lav2/core/thread_pool.hpp"
#include "lav2/experts/expert.hpp"
#include "lav2/model/generate.hpp"
#include "lav2/model/llama_loader.hpp"
#include "lav2/model/llama_model.hpp"
#include "lav2/model/model_loader.hpp"
#include "lav2/text/prompt.hpp"
#include "lav2/text/tokenizer.hpp"
#include "lav2/vision/clip_vit.hpp"
#include "lav2/vision/visual_encoder.hpp"

namespace lav2::experts {

/// \brief Settings of the caption expert; the defaults follow the release's caption prompt.
struct CaptionOptions {
  std::string instruction = "Generate caption of this image";  ///< put through the Alpaca template
  int max_new_tokens = 64;                                     ///< a caption is one sentence
  int visual_heads = 16;       ///< heads of the adapter's visual blocks (not in the checkpoint)
  model::StateOptions state;   ///< the caption request's max_seq_len and KV dtype
  bool record_logits = false;  ///< keep each step's logits in caption_from_features()'s result
};

/// \brief A caption adapter over a loaded base and CLIP tower. Immutable after construction:
/// run() keeps its RunState on the stack, so concurrent calls are safe, each with its own pool and
/// its own ImageContext.
class CaptionExpert : public Expert {
 public:
  /// \brief Binds `adapter` (model::open_adapter over `base`'s config) to `base` and `clip`.
  /// \param tokenizer the base's tokenizer; it must outlive the expert.
  /// \throws load_error when the adapter has no visual branch (a caption adapter reads the image),
  ///         or its projector does not fit the CLIP tower or the LLaMA width.
  CaptionExpert(const std::shared_ptr<const model::LlamaDir>& base, std::shared_ptr<const vision::ClipVisionModel> clip,
                const model::AdapterFile& adapter, const text::Tokenizer& tokenizer, CaptionOptions opt = {})
      : opt_(std::move(opt)),
        tokenizer_(&tokenizer),
        model_(model::build_model(base, &adapter)),
        encoder_(make_encoder_(std::move(clip), adapter, opt_.visual_heads, model_)),
        path_(adapter.path) {
    if (opt_.max_new_tokens < 1)
      LAV2_THROW(input_error, "caption expert: max_new_tokens ", opt_.max_new_tokens, " must be positive");
  }

  /// \brief Opens the caption checkpoint at `path` and binds it (see the constructor).
  static std::unique_ptr<CaptionExpert> load(const std::shared_ptr<const model::LlamaDir>& base,
                                             std::shared_ptr<const vision::ClipVisionModel> clip,
                                             const std::string& path, const text::Tokenizer& tokenizer,
                                             CaptionOptions opt = {}) {
    const model::AdapterFile adapter = model::open_adapter(path, base->config);
    return std::make_unique<CaptionExpert>(base, std::move(clip), adapter, tokenizer, std::move(opt));
  }

  std::string name() const override { return "caption"; }

  ExpertText run(ImageContext& image, ThreadPool& pool) const override {
    return ExpertText{"caption", {caption(image, pool)}};
  }

  /// \brief The caption of the request's image (CLIP features shared through `image`).
  std::string caption(ImageContext& image, ThreadPool& pool) const {
    return caption_from_features(image.clip_features(pool, encoder_.clip()), pool).text;
  }

  /// \brief The caption from CLIP features (n_tokens, clip_dim) already computed for the image.
  model::GenerateResult caption_from_features(const Tensor<float>& clip_features, ThreadPool& pool) const {
    const Tensor<float> query = encoder_.project(pool, clip_features);
    model::RunState state = model_.new_state(pool, opt_.state, query.data(), query.dim(0));
    const std::string prompt = text::format_prompt(text::PromptTemplate::alpaca, opt_.instruction);
    model::GenerateOptions g;
    g.max_new_tokens = opt_.max_new_tokens;
    g.temperature = 0.0f;  // greedy
    g.record_logits = opt_.record_logits;
    model::GenerateResult r =
        model::generate(model_, state, pool, *tokenizer_, tokenizer_->encode(prompt, true, false), g);
    r.text = trim_(r.text);
    return r;
  }

  const model::LlamaModel& model() const { return model_; }
  const vision::VisualEncoder& encoder() const { return encoder_; }
  const std::string& path() const { return path_; }
  const CaptionOptions& options() const { return opt_; }

 private:
  static vision::VisualEncoder make_encoder_(std::shared_ptr<const vision::ClipVisionModel> clip,
                                             const model::AdapterFile& adapter, int visual_heads,
                                             const model::LlamaModel& m) {
    if (!m.spec().takes_visual())
      LAV2_THROW(load_error, "caption expert: checkpoint '", adapter.path, "' (", m.spec().describe(),
                 ") has no visual branch; a caption adapter reads the image (CAPTION-7B, a V2 adapter)");
    vision::VisualEncoder e = vision::VisualEncoder::from_adapter(std::move(clip), adapter.tensors, adapter.path,
                                                                  visual_heads, adapter.keep_alive);
    if (e.dim() != m.config().dim)
      LAV2_THROW(load_error, "caption expert: checkpoint '", adapter.path, "': visual_proj gives width ", e.dim(),
                 ", but the LLaMA dim is ", m.config().dim);
    return e;
  }
  static std::string trim_(const std::string& s) {
    const std::size_t a = s.find_first_not_of(" \n\t"), b = s.find_last_not_of(" \n\t");
    return a == std::string::npos ? std::string() : s.substr(a, b - a + 1);
  }

  CaptionOptions opt_;
  const text::Tokenizer* tokenizer_;
  model::LlamaModel model_;
  vision::VisualEncoder encoder_;
  std::string path_;
};

}  // namespace lav2::experts
