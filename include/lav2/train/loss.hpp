// The training loss of the official code (spec 8), and its gradient:
//   CrossEntropyLoss(ignore_index=0)(logits[:, :-1], labels[:, 1:])
// Position t of a sequence predicts labels[t + 1]; a label of 0 (the prompt, the padding, set to
// 0 by the datasets) is ignored; the loss is the mean over the n kept positions of all sequences:
//   loss = 1/n sum_(b,t kept) (logsumexp(z_bt) - z_bt[label])
//   dz_bt = (softmax(z_bt) - onehot(label)) / n   (kept),   0 otherwise (and at t = S - 1)
// With no kept position the official code returns output.mean() * 0: the loss is 0 and so is
// every gradient.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "lav2/core/error.hpp"
#include "lav2/core/thread_pool.hpp"
#include "lav2/kernels/dispatch.hpp"

namespace lav2::train {

/// \brief The label that no loss is computed for (torch's ignore_index in the official code).
inline constexpr std::int32_t kIgnoreLabel = 0;

/// \brief Returns the mean loss over the batch and writes d_logits (B, S, V) (null: loss only).
/// logits (B, S, V) f32 or double, labels (B, S); a label outside 0..V-1 throws input_error.
/// The sums run in double.
template <class T>
double cross_entropy_forward_backward(T* d_logits, const T* logits, const std::int32_t* labels, std::int64_t B,
                                      std::int64_t S, std::int64_t V) {
  std::int64_t kept = 0;
  for (std::int64_t i = 0; i < B * S; ++i) {
    if (labels[i] < 0 || labels[i] >= V)
      LAV2_THROW(input_error, "cross-entropy: label ", i, " is ", labels[i], ", expected 0..", V - 1);
    if (i % S != 0 && labels[i] != kIgnoreLabel) ++kept;  // labels[b, t + 1] for t = 0..S-2
  }
  double loss = 0.0;
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t t = 0; t < S; ++t) {
      const T* z = logits + (b * S + t) * V;
      T* dz = d_logits ? d_logits + (b * S + t) * V : nullptr;
      const std::int32_t label = t + 1 < S ? labels[b * S + t + 1] : kIgnoreLabel;
      if (label == kIgnoreLabel) {
        if (dz)
          for (std::int64_t v = 0; v < V; ++v) dz[v] = 0;
        continue;
      }
      double max_z = double(z[0]), sum = 0.0;
      for (std::int64_t v = 1; v < V; ++v) max_z = std::fmax(max_z, double(z[v]));
      for (std::int64_t v = 0; v < V; ++v) sum += std::exp(double(z[v]) - max_z);
      loss += std::log(sum) + max_z - double(z[label]);
      if (!dz) continue;
      for (std::int64_t v = 0; v < V; ++v)
        dz[v] = T((std::exp(double(z[v]) - max_z) / sum - (v == label ? 1.0 : 0.0)) / double(kept));
    }
  return kept ? loss / double(kept) : 0.0;
}

/// \brief The fast path of cross_entropy_forward_backward for f32 logits: the rows (positions)
/// split over `pool`, each row's softmax by kernels::softmax into d_logits, then
/// dz = (p - onehot) / n and the row's loss -log p[label]; where p[label] is below 1e-30 (a loss
/// past 69, where the f32 probability loses its digits) the row's loss is recomputed in double as
/// the reference does. The row losses are summed in row order, so any thread count gives the
/// same bits. `row_loss` is scratch of B * S doubles.
inline double cross_entropy_forward_backward(ThreadPool& pool, float* d_logits, const float* logits,
                                             const std::int32_t* labels, std::int64_t B, std::int64_t S, std::int64_t V,
                                             std::vector<double>& row_loss) {
  std::int64_t kept = 0;
  for (std::int64_t i = 0; i < B * S; ++i) {
    if (labels[i] < 0 || labels[i] >= V)
      LAV2_THROW(input_error, "cross-entropy: label ", i, " is ", labels[i], ", expected 0..", V - 1);
    if (i % S != 0 && labels[i] != kIgnoreLabel) ++kept;
  }
  row_loss.assign(std::size_t(B * S), 0.0);
  const float inv_kept = kept ? float(1.0 / double(kept)) : 0.0f;
  pool.parallel_for(B * S, [&](std::int64_t r0, std::int64_t r1) {
    for (std::int64_t r = r0; r < r1; ++r) {
      const std::int64_t t = r % S;
      const std::int32_t label = t + 1 < S ? labels[r + 1] : kIgnoreLabel;
      float* dz = d_logits + r * V;
      const float* z = logits + r * V;
      if (label == kIgnoreLabel) {
        std::memset(dz, 0, std::size_t(V) * sizeof(float));
        continue;
      }
      std::memcpy(dz, z, std::size_t(V) * sizeof(float));
      kernels::softmax(dz, V);
      const float p = dz[label];
      if (p >= 1e-30f) {
        row_loss[std::size_t(r)] = -std::log(double(p));
      } else {  // the reference's logsumexp, in double
        double max_z = double(z[0]), sum = 0.0;
        for (std::int64_t v = 1; v < V; ++v) max_z = std::max(max_z, double(z[v]));
        for (std::int64_t v = 0; v < V; ++v) sum += std::exp(double(z[v]) - max_z);
        row_loss[std::size_t(r)] = std::log(sum) + max_z - double(z[label]);
      }
      for (std::int64_t v = 0; v < V; ++v) dz[v] *= inv_kept;
      dz[label] -= inv_kept;
    }
  });
  double loss = 0.0;
  for (double l : row_loss) loss += l;
  return kept ? loss / double(kept) : 0.0;
}

}  // namespace lav2::train
