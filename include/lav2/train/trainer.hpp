// The training loop: batches, gradient accumulation, the official per-iteration
// learning-rate schedule, and the phases, over LlamaTrainModel (the LLM) and ProjectorTrainModel
// (the visual branch), with the frozen CLIP tower's features cached per image.
//
// Phases and who is updated (train/param_groups.hpp):
//   finetune  every step one batch of all samples (instruction JSON and captions alike, as the
//             official finetune mixes text-only and image samples); AdamW on the finetune group
//             (+ LoRA with train_lora). The projector is frozen: each image's visual query is
//             computed once (with augment, per draw).
//   pretrain  every step one batch of all samples; AdamW on the pretrain group: the gates and
//             adapter_query in the LLM, every projector tensor (d loss / d visual query flows
//             into the projector's backward).
//   joint     the paper's joint training: steps cycle through `joint_ratio` image-text batches
//             (the caption samples) and then one instruction batch. An image-text step updates
//             only the visual group, an instruction step only the language group, each with its
//             own AdamW state (its own moments and step counts). Both read the latest values of
//             the other group.
// A step: lr = learning_rate(step, warmup_steps, steps, lr) (the official half-cycle cosine after
// a linear warmup, per iteration); `accum` micro-batches of `batch` samples each, their gradients
// summed and divided by accum (the official loss / accum_iter); one AdamW step; gradients zeroed.
//
// Batches: sample k of a stream (k counts the samples drawn so far) is permutation(k / n)[k % n],
// a Fisher-Yates shuffle of the n samples by std::mt19937_64 seeded from (seed, stream, epoch).
// Positions are computed from the step number, so a resumed run draws the batches the
// uninterrupted run would. Samples are padded to max_words; a batch runs only up to its longest
// sample (the trailing positions hold padding with label 0, which no kept position attends to,
// so the loss and gradients are those of the padded batch).
//
// With augment, every draw of an image is the official RandomResizedCrop (train/augment.hpp) of
// it, keyed by (seed, micro-batch, position), and goes through CLIP then; the all-zero image of
// text-only samples is never augmented (the official torch.zeros).
// Deterministic for a seed and a thread count; the training models are bit-identical for 1 and 2
// threads.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "lav2/core/aligned_alloc.hpp"
#include "lav2/core/error.hpp"
#include "lav2/core/thread_pool.hpp"
#include "lav2/model/model_loader.hpp"
#include "lav2/train/adamw.hpp"
#include "lav2/train/augment.hpp"
#include "lav2/train/data.hpp"
#include "lav2/train/llama_train.hpp"
#include "lav2/train/lr_schedule.hpp"
#include "lav2/train/param_groups.hpp"
#include "lav2/train/phase_model.hpp"
#include "lav2/train/projector_train.hpp"
#include "lav2/vision/clip_vit.hpp"
#include "lav2/vision/image.hpp"
#include "lav2/vision/image_preprocess.hpp"

namespace lav2::train {

/// \brief What `lav2 train` sets.
struct TrainOptions {
  Phase phase = Phase::finetune;
  std::int64_t steps = 0;         ///< optimiser steps
  std::int64_t warmup_steps = 0;  ///< of them warming up (0 <= warmup < steps)
  double lr = 0.0;                ///< the peak (base) learning rate
  double weight_decay = 0.0;      ///< AdamW's (official 0.05 pretrain, 0.02 finetune)
  int batch = 4;                  ///< samples per micro-batch
  int accum = 1;                  ///< micro-batches per optimiser step
  int joint_ratio = 1;            ///< joint: image-text steps per instruction step
  std::uint64_t seed = 0;
  bool train_lora = false;
  bool augment = false;  ///< the official RandomResizedCrop (train/augment.hpp) on every image
  int visual_heads = 16;
  vision::ChannelOrder channel_order = vision::ChannelOrder::bgr;
};

/// \brief The training loop over one loaded model and its data.
class Trainer {
 public:
  /// \param loaded the model as the phase loads it (load_for_phase); must outlive the trainer.
  /// \param clip the frozen CLIP tower (V2 models).
  /// \param instructions the samples of the instruction JSON files; \param captions those of the
  ///   caption TSV files (joint: the image-text batches; other phases: mixed in).
  /// Every image is read, preprocessed and encoded by CLIP here, so bad data fails before training.
  Trainer(ThreadPool& pool, const model::LoadedModel& loaded, std::shared_ptr<const vision::ClipVisionModel> clip,
          const TrainOptions& o, std::vector<Sample> instructions, std::vector<Sample> captions)
      : o_(o), clip_(std::move(clip)), spec_(loaded.model.spec()), dim_(loaded.model.config().dim) {
    check_options_();
    if (o_.phase == Phase::joint) {
      if (captions.empty()) LAV2_THROW(input_error, "--phase joint needs image-text samples (--captions)");
      if (instructions.empty()) LAV2_THROW(input_error, "--phase joint needs instruction samples (--data)");
      streams_.emplace_back(std::move(instructions));
      streams_.emplace_back(std::move(captions));
    } else {
      for (Sample& s : captions) instructions.push_back(std::move(s));
      if (instructions.empty()) LAV2_THROW(input_error, "no training samples (--data, --captions)");
      streams_.emplace_back(std::move(instructions));
    }
    const std::vector<ParamGroup> groups = o_.phase == Phase::finetune ? std::vector<ParamGroup>{ParamGroup::finetune}
                                           : o_.phase == Phase::pretrain
                                               ? std::vector<ParamGroup>{ParamGroup::pretrain}
                                               : std::vector<ParamGroup>{ParamGroup::visual, ParamGroup::language};
    llm_ = std::make_unique<LlamaTrainModel>(loaded.model, groups, o_.train_lora);
    const GroupOptions gopt{spec_, loaded.model.config().n_layers, o_.train_lora};
    if (spec_.takes_visual()) {
      if (!clip_) LAV2_THROW(input_error, "training a LLaMA-Adapter V2 model needs the CLIP tower (--clip)");
      projector_ = std::make_unique<ProjectorTrainModel>(loaded.adapter.tensors, loaded.adapter.path, o_.visual_heads);
      if (projector_->config().dim != dim_)
        LAV2_THROW(load_error, "checkpoint '", loaded.adapter.path, "': visual_proj gives width ",
                   projector_->config().dim, ", but the LLaMA dim is ", dim_);
      encode_images_(pool);
    }
    const AdamWConfig acfg{0.9, 0.95, 1e-8, o_.weight_decay};
    if (o_.phase == Phase::joint) {
      add_optimizer_("visual", ParamGroup::visual, gopt, acfg);
      add_optimizer_("language", ParamGroup::language, gopt, acfg);
    } else {
      const ParamGroup g = o_.phase == Phase::finetune ? ParamGroup::finetune : ParamGroup::pretrain;
      add_optimizer_(param_group_name(g), g, gopt, acfg);
    }
  }

  const TrainOptions& options() const { return o_; }
  /// The next step to run (0 at the start; a resumed run sets it).
  std::int64_t step() const { return step_; }
  void set_step(std::int64_t s) {
    if (s < 0 || s > o_.steps) LAV2_THROW(input_error, "resuming at step ", s, " of ", o_.steps);
    step_ = s;
  }
  bool done() const { return step_ >= o_.steps; }

  /// \brief Every trainable tensor (the LLM's, then the projector's), official keys.
  std::vector<TrainableTensor*> trainable() {
    std::vector<TrainableTensor*> out;
    for (TrainableTensor& t : llm_->params()) out.push_back(&t);
    if (projector_)
      for (TrainableTensor& t : projector_->params()) out.push_back(&t);
    return out;
  }
  /// \brief The optimisers by group name (one; joint: visual and language).
  std::map<std::string, AdamW>& optimizers() { return opt_; }
  /// The optimiser that step `s` updates.
  const std::string& group_of_step(std::int64_t s) const {
    return order_[std::size_t(visual_step_(s) ? 0 : 1) % order_.size()];
  }
  /// Tokens (non-padding positions) of the last step.
  std::int64_t last_tokens() const { return last_tokens_; }

  /// \brief Runs step step() and returns its loss (the mean of its micro-batches' losses).
  /// `before_update(loss)`, when given, is called with the step's loss once the gradients are
  /// final, before the optimiser step (`lav2 train --dump-grads`).
  template <class Fn>
  double train_step(ThreadPool& pool, Fn&& before_update) {
    if (done()) LAV2_THROW(input_error, "training: all ", o_.steps, " steps are done");
    const std::int64_t s = step_;
    const double lr = learning_rate(s, o_.warmup_steps, o_.steps, o_.lr);
    const bool visual = visual_step_(s);
    Stream& stream = streams_[visual && o_.phase == Phase::joint ? 1 : 0];
    const std::int64_t batch_no = stream_batches_before_(s) * o_.accum;
    const bool train_projector = projector_ && (o_.phase == Phase::pretrain || (o_.phase == Phase::joint && visual));
    zero_grad_();
    double loss = 0;
    last_tokens_ = 0;
    for (int micro = 0; micro < o_.accum; ++micro) {
      const TrainBatch b = fill_batch_(pool, stream, batch_no + micro, train_projector);
      loss += llm_->forward_backward(pool, b, train_projector ? d_vq_.data() : nullptr);
      if (train_projector) projector_->backward(pool, d_vq_.data());
    }
    if (o_.accum > 1) scale_grads_(1.0f / float(o_.accum));
    loss /= double(o_.accum);
    before_update(loss);
    AdamW& opt = opt_.at(group_of_step(s));
    opt.step(lr, has_grad_(group_of_step(s)));
    ++step_;
    return loss;
  }
  double train_step(ThreadPool& pool) {
    return train_step(pool, [](double) {});
  }

 private:
  struct Stream {
    explicit Stream(std::vector<Sample> s) : samples(std::move(s)) {}
    std::vector<Sample> samples;
    std::int64_t perm_epoch = -1;
    std::vector<std::int64_t> perm;
  };

  void check_options_() const {
    if (o_.steps < 1) LAV2_THROW(input_error, "--steps ", o_.steps, " must be at least 1");
    if (o_.warmup_steps < 0 || o_.warmup_steps >= o_.steps)
      LAV2_THROW(input_error, "--warmup-steps ", o_.warmup_steps, " must be in [0, --steps ", o_.steps, ")");
    if (o_.batch < 1) LAV2_THROW(input_error, "--batch ", o_.batch, " must be at least 1");
    if (o_.accum < 1) LAV2_THROW(input_error, "--accum ", o_.accum, " must be at least 1");
    if (o_.joint_ratio < 1) LAV2_THROW(input_error, "--joint-ratio ", o_.joint_ratio, " must be at least 1");
    if (!(o_.lr >= 0)) LAV2_THROW(input_error, "--lr ", o_.lr, " must be non-negative");
    if (!(o_.weight_decay >= 0)) LAV2_THROW(input_error, "--weight-decay ", o_.weight_decay, " must be non-negative");
  }

  // joint: steps cycle through joint_ratio image-text steps, then one instruction step.
  bool visual_step_(std::int64_t s) const {
    return o_.phase == Phase::joint && s % (o_.joint_ratio + 1) < o_.joint_ratio;
  }
  // Steps before `s` that drew from the stream step `s` draws from.
  std::int64_t stream_batches_before_(std::int64_t s) const {
    if (o_.phase != Phase::joint) return s;
    const std::int64_t R = o_.joint_ratio, cycles = s / (R + 1), rem = s % (R + 1);
    const std::int64_t visual_before = cycles * R + std::min(rem, R);
    return visual_step_(s) ? visual_before : s - visual_before;
  }

  void add_optimizer_(const std::string& name, ParamGroup g, const GroupOptions& gopt, const AdamWConfig& acfg) {
    std::vector<ParamRef> refs = group_params(g, llm_->params(), gopt);
    std::vector<int>& from_llm = llm_index_[name];
    for (const ParamRef& r : refs) {
      int idx = -1;
      for (std::size_t i = 0; i < llm_->params().size(); ++i)
        if (llm_->params()[i].value.data() == r.value) idx = int(i);
      from_llm.push_back(idx);
    }
    if (projector_ && g != ParamGroup::finetune && g != ParamGroup::language)
      for (ParamRef& r : group_params(g, projector_->params(), gopt)) {
        refs.push_back(std::move(r));
        from_llm.push_back(-1);
      }
    if (refs.empty()) LAV2_THROW(input_error, "training: parameter group '", name, "' has no tensors in this model");
    opt_.emplace(name, AdamW(std::move(refs), acfg));
    order_.push_back(name);
    if (o_.phase == Phase::joint && order_.size() == 2 && order_[0] != "visual") std::swap(order_[0], order_[1]);
  }
  // Whether each of the optimiser's parameters got a gradient (the LLM's: was it read).
  const std::vector<bool>& has_grad_(const std::string& name) {
    const std::vector<int>& idx = llm_index_.at(name);
    flags_.resize(idx.size());
    for (std::size_t i = 0; i < idx.size(); ++i) flags_[i] = idx[i] < 0 || llm_->has_grad()[std::size_t(idx[i])];
    return flags_;
  }

  void zero_grad_() {
    llm_->zero_grad();
    if (projector_) projector_->zero_grad();
  }
  void scale_grads_(float f) {
    for (TrainableTensor* t : trainable())
      for (float& g : t->grad) g *= f;
  }

  // Whether the cache holds visual queries: finetune without augmentation, where the projector
  // is frozen and each image's query never changes.
  bool queries_cached_() const { return o_.phase == Phase::finetune && !o_.augment; }

  // CLIP features of every distinct image (and of the all-zero image), computed once (with
  // augment: each image decoded once, its features computed per draw); where queries_cached_(),
  // each image's visual query instead.
  void encode_images_(ThreadPool& pool) {
    const int size = clip_->config().image_size();
    for (Stream& st : streams_)
      for (const Sample& s : st.samples) {
        if (cache_.count(s.image) || images_.count(s.image)) continue;
        Tensor<float> image;
        if (s.image.empty()) {
          image = vision::zero_image(size);
        } else {
          try {
            vision::Image decoded = vision::load_image(s.image, {}, o_.channel_order);
            if (o_.augment) {
              images_.emplace(s.image, std::move(decoded));
              continue;
            }
            image = vision::preprocess_clip(decoded);
          } catch (const lav2::input_error& e) {
            LAV2_THROW(input_error, s.where, ": field 'image': ", e.what());
          } catch (const lav2::load_error& e) {
            LAV2_THROW(input_error, s.where, ": field 'image': ", e.what());
          }
        }
        Tensor<float> f = clip_->encode(pool, image);
        if (queries_cached_()) {
          Tensor<float> vq(Shape{projector_->config().n_queries, dim_});
          projector_->forward(pool, f.data(), 1, f.dim(0), vq.data());
          f = std::move(vq);
        }
        cache_.emplace(s.image, std::move(f));
      }
    if (queries_cached_()) projector_.reset();  // frozen: its queries are cached
  }

  // The CLIP features of sample i of micro-batch `batch_no`: cached, or (augment) those of a
  // random resized crop drawn from (seed, batch_no, i), so a resumed run draws the same crops.
  const Tensor<float>& features_of_(ThreadPool& pool, const Sample& s, std::int64_t batch_no, std::int64_t i) {
    if (!o_.augment || s.image.empty()) return cache_.at(s.image);
    std::mt19937_64 rng(o_.seed * 0xD1B54A32D192ED03ull +
                        std::uint64_t(batch_no * o_.batch + i) * 0x9E3779B97F4A7C15ull +
                        std::uint64_t(&streams_[0] == stream_ ? 0 : 1));
    augmented_ = clip_->encode(pool, augment_clip(images_.at(s.image), rng, clip_->config().image_size()));
    return augmented_;
  }

  const std::vector<std::int64_t>& permutation_(Stream& st, std::int64_t epoch) const {
    if (st.perm_epoch == epoch) return st.perm;
    const std::int64_t n = std::int64_t(st.samples.size());
    st.perm.resize(std::size_t(n));
    for (std::int64_t i = 0; i < n; ++i) st.perm[std::size_t(i)] = i;
    const std::uint64_t stream_id = &st == &streams_[0] ? 0 : 1;
    std::mt19937_64 rng(o_.seed * 0x9E3779B97F4A7C15ull + stream_id * 0x100000001B3ull + std::uint64_t(epoch));
    for (std::int64_t i = n - 1; i > 0; --i) std::swap(st.perm[std::size_t(i)], st.perm[rng() % std::uint64_t(i + 1)]);
    st.perm_epoch = epoch;
    return st.perm;
  }

  // Micro-batch `batch_no` of `st`: tokens, labels and visual queries in the trainer's buffers.
  TrainBatch fill_batch_(ThreadPool& pool, Stream& st, std::int64_t batch_no, bool train_projector) {
    const std::int64_t B = o_.batch, n = std::int64_t(st.samples.size());
    picked_.resize(std::size_t(B));
    std::int64_t S = 2;
    for (std::int64_t i = 0; i < B; ++i) {
      const std::int64_t k = batch_no * B + i;
      const Sample& s = st.samples[std::size_t(permutation_(st, k / n)[std::size_t(k % n)])];
      picked_[std::size_t(i)] = &s;
      S = std::max(S, s.length);
      last_tokens_ += s.length;
    }
    tokens_.resize(std::size_t(B * S));
    labels_.resize(std::size_t(B * S));
    for (std::int64_t i = 0; i < B; ++i) {
      const Sample& s = *picked_[std::size_t(i)];
      std::copy(s.tokens.begin(), s.tokens.begin() + S, tokens_.begin() + i * S);
      std::copy(s.labels.begin(), s.labels.begin() + S, labels_.begin() + i * S);
    }
    TrainBatch b{tokens_.data(), labels_.data(), nullptr, B, S, 0};
    if (!spec_.takes_visual()) return b;
    if (queries_cached_()) {
      const Tensor<float>& first = cache_.at(picked_[0]->image);
      const std::int64_t Q = first.dim(0);
      vq_.resize(std::size_t(B * Q * dim_));
      for (std::int64_t i = 0; i < B; ++i) {
        const Tensor<float>& q = cache_.at(picked_[std::size_t(i)]->image);
        std::copy(q.begin(), q.end(), vq_.begin() + i * Q * dim_);
      }
      b.visual_query = vq_.data(), b.n_visual = Q;
      return b;
    }
    stream_ = &st;
    const std::int64_t Q = projector_->config().n_queries;
    std::int64_t T = 0, C = 0;
    for (std::int64_t i = 0; i < B; ++i) {
      const Tensor<float>& f = features_of_(pool, *picked_[std::size_t(i)], batch_no, i);
      if (i == 0) {
        T = f.dim(0), C = f.dim(1);
        features_.resize(std::size_t(B * T * C));
      }
      std::copy(f.begin(), f.end(), features_.begin() + i * T * C);
    }
    vq_.resize(std::size_t(B * Q * dim_));
    if (train_projector) d_vq_.resize(vq_.size());
    projector_->forward(pool, features_.data(), B, T, vq_.data());
    b.visual_query = vq_.data(), b.n_visual = Q;
    return b;
  }

  TrainOptions o_;
  std::shared_ptr<const vision::ClipVisionModel> clip_;
  model::AdapterSpec spec_;
  std::int64_t dim_ = 0;
  std::vector<Stream> streams_;
  std::unique_ptr<LlamaTrainModel> llm_;
  std::unique_ptr<ProjectorTrainModel> projector_;
  std::map<std::string, AdamW> opt_;
  std::vector<std::string> order_;  // joint: visual, language
  std::map<std::string, std::vector<int>> llm_index_;
  std::vector<bool> flags_;
  std::map<std::string, Tensor<float>> cache_;   // image ("" = all-zero) -> CLIP features (or visual query)
  std::map<std::string, vision::Image> images_;  // augment: image -> decoded pixels
  Tensor<float> augmented_;                      // augment: the features of the last crop
  const Stream* stream_ = nullptr;               // the stream of the batch being filled
  std::vector<const Sample*> picked_;
  std::vector<std::int32_t> tokens_, labels_;
  AlignedVector<float> features_, vq_, d_vq_;
  std::int64_t step_ = 0, last_tokens_ = 0;
};

}  // namespace lav2::train
