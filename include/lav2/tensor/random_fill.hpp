// Reproducible random tensor contents for benchmarks and `lav2 bench`: element i of a tensor is a
// splitmix64 hash of (salt, i) mapped to a uniform value, so the values do not depend on the
// thread count or the order of filling, and building a 7B-shaped model in parallel stays fast.
#pragma once

#include <cstdint>

#include "lav2/core/thread_pool.hpp"
#include "lav2/tensor/dtype.hpp"

namespace lav2 {

/// \brief Uniform in [0, 1) from the splitmix64 finaliser of `salt + i * golden ratio`.
inline float hash_uniform(std::uint64_t salt, std::uint64_t i) {
  std::uint64_t z = salt + i * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return float(z >> 40) * (1.0f / float(1 << 24));
}

/// \brief data[i] = offset + (2 u_i - 1) * scale for i in [0, n), u_i = hash_uniform(salt, i),
/// rounded to T; filled in parallel by `pool`.
template <class T>
void fill_hash_uniform(T* data, std::int64_t n, std::uint64_t salt, float scale, ThreadPool& pool,
                       float offset = 0.0f) {
  pool.parallel_for(
      n,
      [&](std::int64_t b, std::int64_t e) {
        for (std::int64_t i = b; i < e; ++i)
          data[i] = from_f32<T>(offset + (2.0f * hash_uniform(salt, std::uint64_t(i)) - 1.0f) * scale);
      },
      1 << 16);
}

/// \brief A distinct salt for tensor number `index` of a model built from `seed`.
inline std::uint64_t tensor_salt(std::uint64_t seed, std::uint64_t index) {
  return seed * 0x9E3779B97F4A7C15ull + index * 0xD1B54A32D192ED03ull;
}

}  // namespace lav2
