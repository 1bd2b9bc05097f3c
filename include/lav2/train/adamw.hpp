// AdamW as torch.optim.AdamW computes it (the single-tensor CPU path, amsgrad off), with the
// official parameter rules (spec 8): betas (0.9, 0.95); no weight decay for 1-D parameters and
// names ending in ".bias" (util/misc.add_weight_decay), so the (1, H, 1, 1) gates and the
// embeddings are decayed. For each parameter p with gradient g, at its own step t (1, 2, ...):
//   p  = p (1 - lr wd)                       decoupled weight decay
//   m  = b1 m + (1 - b1) g,   v = b2 v + (1 - b2) g^2
//   p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)     eps outside the sqrt
// The scalars (bias corrections, step size) are computed in double as Python does; the element
// updates in f32 as torch's f32 tensors do. A parameter without a gradient in a step (torch's
// p.grad is None: layer 0's gate, which the forward never reads) is left untouched, decay
// included, and its step count does not advance.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "lav2/core/error.hpp"
#include "lav2/tensor/tensor.hpp"

namespace lav2::train {

/// \brief torch.optim.AdamW's hyper-parameters, with the official betas.
struct AdamWConfig {
  double beta1 = 0.9, beta2 = 0.95;
  double eps = 1e-8;
  double weight_decay = 0.0;  ///< official: 0.05 pretrain, 0.02 finetune
};

/// \brief The official no-decay rule: 1-D parameters and names ending in ".bias".
inline bool official_weight_decay(const std::string& name, const Shape& shape) {
  const std::string bias = ".bias";
  const bool ends_bias = name.size() >= bias.size() && name.compare(name.size() - bias.size(), bias.size(), bias) == 0;
  return !(shape.rank == 1 || ends_bias);
}

/// \brief A trainable tensor as the optimiser sees it: its value and gradient buffers (numel
/// floats each, owned by the caller) and whether weight decay applies.
struct ParamRef {
  std::string name;  ///< official key, e.g. "llama.layers.1.attention.gate"
  float* value = nullptr;
  const float* grad = nullptr;
  std::int64_t numel = 0;
  bool decay = true;
};

/// \brief One AdamW optimiser over a fixed list of parameters, with its own state (m, v, step
/// per parameter): the joint schedule keeps one per parameter group.
class AdamW {
 public:
  AdamW(std::vector<ParamRef> params, const AdamWConfig& config) : params_(std::move(params)), config_(config) {
    for (const ParamRef& p : params_) {
      if (!p.value || !p.grad || p.numel <= 0)
        LAV2_THROW(input_error, "AdamW: parameter '", p.name, "' has no value or gradient buffer");
      m_.emplace_back(Shape{p.numel});
      v_.emplace_back(Shape{p.numel});
    }
    steps_.assign(params_.size(), 0);
  }

  const std::vector<ParamRef>& params() const { return params_; }
  /// The step count of parameter i (torch's state['step']).
  std::int64_t step_count(std::size_t i) const { return steps_[i]; }
  const Tensor<float>& exp_avg(std::size_t i) const { return m_[i]; }
  const Tensor<float>& exp_avg_sq(std::size_t i) const { return v_[i]; }
  /// \brief Restores parameter i's state (a resumed run): its step count and moments (numel
  /// floats each).
  void set_state(std::size_t i, std::int64_t step, const float* exp_avg, const float* exp_avg_sq) {
    if (i >= params_.size() || step < 0)
      LAV2_THROW(input_error, "AdamW: state ", i, " of ", params_.size(), " parameters, step ", step);
    steps_[i] = step;
    std::copy(exp_avg, exp_avg + params_[i].numel, m_[i].data());
    std::copy(exp_avg_sq, exp_avg_sq + params_[i].numel, v_[i].data());
  }

  /// \brief One step at learning rate `lr`. has_grad[i] false skips parameter i (no gradient
  /// this step); an empty vector means every parameter has one.
  void step(double lr, const std::vector<bool>& has_grad = {}) {
    if (!has_grad.empty() && has_grad.size() != params_.size())
      LAV2_THROW(input_error, "AdamW: ", has_grad.size(), " gradient flags for ", params_.size(), " parameters");
    for (std::size_t i = 0; i < params_.size(); ++i) {
      if (!has_grad.empty() && !has_grad[i]) continue;
      update_(i, lr);
    }
  }

 private:
  void update_(std::size_t i, double lr) {
    const ParamRef& p = params_[i];
    const std::int64_t t = ++steps_[i];
    const double wd = p.decay ? config_.weight_decay : 0.0;
    const float decay = float(1.0 - lr * wd);
    const float b1 = float(config_.beta1), b2 = float(config_.beta2);
    const float one_minus_b1 = float(1.0 - config_.beta1), one_minus_b2 = float(1.0 - config_.beta2);
    const double bc1 = 1.0 - std::pow(config_.beta1, double(t)), bc2 = 1.0 - std::pow(config_.beta2, double(t));
    const float step_size = float(lr / bc1), bc2_sqrt = float(std::sqrt(bc2)), eps = float(config_.eps);
    float *w = p.value, *m = m_[i].data(), *v = v_[i].data();
    for (std::int64_t k = 0; k < p.numel; ++k) {
      const float g = p.grad[k];
      w[k] *= decay;
      m[k] = m[k] * b1 + one_minus_b1 * g;
      v[k] = v[k] * b2 + one_minus_b2 * g * g;
      const float denom = std::sqrt(v[k]) / bc2_sqrt + eps;
      w[k] -= step_size * (m[k] / denom);
    }
  }

  std::vector<ParamRef> params_;
  AdamWConfig config_;
  std::vector<Tensor<float>> m_, v_;
  std::vector<std::int64_t> steps_;
};

}  // namespace lav2::train
