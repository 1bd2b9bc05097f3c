// Next-token choice, as the official generate does:
//   temperature <= 0: argmax (the first maximum, like torch.argmax)
//   otherwise sample_top_p(softmax(logits / temperature), top_p):
//     sort descending, cumulative sum, zero every entry whose cumsum - p > top_p (so the first
//     entry always stays), renormalise, draw one. The draw uses a seeded 64-bit Mersenne Twister,
//     so a seed reproduces a run (the official CUDA multinomial is not reproducible).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

#include "lav2/core/error.hpp"

namespace lav2::text {

/// \brief Throws input_error when a logit is NaN or infinite: such a value has no argmax or
/// softmax, and comparisons with NaN would silently pick token 0 (the weights or the input made it).
inline void require_finite_logits(const float* logits, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i)
    if (!std::isfinite(logits[i]))
      LAV2_THROW(input_error, "logit ", i, " of ", n, " is ", logits[i],
                 ": the model produced a non-finite value (check the weights and the inputs)");
}

/// \brief Index of the first maximum of `logits` (n > 0); throws on a non-finite logit.
inline int argmax(const float* logits, std::int64_t n) {
  require_finite_logits(logits, n);
  std::int64_t best = 0;
  for (std::int64_t i = 1; i < n; ++i)
    if (logits[i] > logits[best]) best = i;
  return int(best);
}

/// \brief Temperature + top-p sampler with its own seeded generator.
class Sampler {
 public:
  /// \param temperature <= 0 means greedy. \param top_p in (0, 1].
  Sampler(float temperature, float top_p, std::uint64_t seed) : temperature_(temperature), top_p_(top_p), rng_(seed) {
    if (!std::isfinite(temperature)) LAV2_THROW(input_error, "temperature ", temperature, " is not a finite number");
    if (!(top_p > 0.0f && top_p <= 1.0f)) LAV2_THROW(input_error, "top_p ", top_p, " is outside (0, 1]");
  }

  /// \brief Picks the next token from `logits` (n = vocab_size).
  int sample(const float* logits, std::int64_t n) {
    if (temperature_ <= 0.0f) return argmax(logits, n);
    require_finite_logits(logits, n);
    // probs = softmax(logits / T), in f32 as torch does, max-subtracted.
    probs_.resize(std::size_t(n));
    float max_scaled = -INFINITY;
    for (std::int64_t i = 0; i < n; ++i) max_scaled = std::max(max_scaled, logits[i] / temperature_);
    float sum = 0.0f;
    for (std::int64_t i = 0; i < n; ++i)
      sum += probs_[std::size_t(i)] = std::exp(logits[i] / temperature_ - max_scaled);
    for (float& p : probs_) p /= sum;
    // Sort descending and keep the prefix whose cumulative sum before each entry is <= top_p.
    order_.resize(std::size_t(n));
    std::iota(order_.begin(), order_.end(), 0);
    std::stable_sort(order_.begin(), order_.end(),
                     [&](int a, int b) { return probs_[std::size_t(a)] > probs_[std::size_t(b)]; });
    double cumsum = 0.0, kept = 0.0;
    std::size_t n_kept = 0;
    for (; n_kept < order_.size(); ++n_kept) {
      const float p = probs_[std::size_t(order_[n_kept])];
      cumsum += p;
      if (cumsum - p > top_p_) break;  // mask = probs_sum - probs_sort > p
      kept += p;
    }
    // Draw u in [0, kept) and walk the kept entries (renormalising implicitly).
    std::uniform_real_distribution<double> uniform(0.0, kept);
    const double u = uniform(rng_);
    double acc = 0.0;
    for (std::size_t k = 0; k < n_kept; ++k) {
      acc += probs_[std::size_t(order_[k])];
      if (u < acc) return order_[k];
    }
    return order_[n_kept - 1];
  }

 private:
  float temperature_, top_p_;
  std::mt19937_64 rng_;
  std::vector<float> probs_;
  std::vector<int> order_;
};

}  // namespace lav2::text
