// The official learning-rate schedule (util/lr_sched.adjust_learning_rate, spec 8), per
// iteration: a linear warmup from 0, then a half-cycle cosine down to min_lr.
//   it <  warmup:  lr = base * it / warmup
//   it >= warmup:  lr = min + (base - min) * 0.5 * (1 + cos(pi * (it - warmup) / (total - warmup)))
// The official code counts in fractional epochs (iteration / iterations-per-epoch); the formula
// is the same in iterations. It is applied before each optimiser step, so iteration 0 of a run
// with warmup steps at lr 0 (AdamW still updates its moments then).
#pragma once

#include <cmath>
#include <cstdint>

#include "lav2/core/error.hpp"

namespace lav2::train {

/// \brief The learning rate of iteration `it` (0-based) of `total`, `warmup` of them warming up.
/// Throws input_error unless 0 <= warmup < total (or warmup == total == 0 is refused too).
inline double learning_rate(std::int64_t it, std::int64_t warmup, std::int64_t total, double base_lr,
                            double min_lr = 0.0) {
  if (total <= 0 || warmup < 0 || warmup >= total)
    LAV2_THROW(input_error, "learning rate schedule: warmup ", warmup, " of ", total,
               " iterations; expected 0 <= warmup < iterations");
  if (it < warmup) return base_lr * double(it) / double(warmup);
  const double pi = 3.14159265358979323846;
  return min_lr + (base_lr - min_lr) * 0.5 * (1.0 + std::cos(pi * double(it - warmup) / double(total - warmup)));
}

}  // namespace lav2::train
