// Machine probes: the two ceilings every lav2 performance figure is quoted against.
//
// - stream: the pool's threads sum one large float array (1 GiB by default, far beyond any cache)
//   with the active kernel level's batches, four accumulators per thread, in three patterns (one
//   stream per thread, two streams, one stream with software prefetch); the best of `passes`
//   passes of the best pattern, in GB/s (1e9 bytes/s). This is the rate at which weights can come
//   from DRAM: a memory-bound matvec can at best read its weights at this rate, so the probe takes
//   the best pattern, a ceiling that an engine reading more lines in flight does not exceed.
// - FMA peak: every pool thread runs kFmaChains independent FMA dependency chains on
//   the active level's batches (KernelTable::fma_chains, the same width the kernels use), enough to cover FMA latency x
//   throughput on current cores (4 cycles x 2 ports = 8 in flight); in GFLOP/s, an FMA counting
//   2 flops per lane. A compute-bound GEMM can at best reach this.
// Both are defined once here so `lav2 bench`, benchmarks/ and docs quote the same numbers.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <new>
#include <vector>

#include "lav2/core/aligned_alloc.hpp"
#include "lav2/core/thread_pool.hpp"
#include "lav2/kernels/dispatch.hpp"

namespace lav2::kernels::probes {

namespace detail {
inline double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

/// Runs fn(thread_index) once on each pool thread; returns the wall time of the slowest.
template <class F>
double time_on_all_threads(ThreadPool& pool, F fn) {
  const auto t0 = std::chrono::steady_clock::now();
  pool.parallel_for(pool.size(), [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t t = b; t < e; ++t) fn(t);
  });
  return seconds_since(t0);
}
}  // namespace detail

/// \brief A float array for the stream probe, 64-byte aligned, first touched by the pool's threads
/// (each thread the part it will sum, so pages land on its memory node).
class StreamBuffer {
 public:
  StreamBuffer(ThreadPool& pool, std::size_t bytes) : n_(bytes / sizeof(float) / 64 * 64) {
    // The same allocator as tensors (huge pages when available): the probe measures the rate at
    // which weights held in lav2's memory can be read.
    data_ = std::unique_ptr<float, AlignedDeleter>(static_cast<float*>(aligned_alloc_bytes(n_ * sizeof(float))),
                                                   AlignedDeleter{n_ * sizeof(float)});
    const std::int64_t n_threads = pool.size();
    pool.parallel_for(n_threads, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t t = b; t < e; ++t) {
        const auto [lo, hi] = ThreadPool::chunk_range(std::int64_t(n_ / 64), n_threads, t);
        std::fill(data_.get() + lo * 64, data_.get() + hi * 64, 1.0f);
      }
    });
  }
  const float* data() const { return data_.get(); }
  std::size_t size() const { return n_; }
  std::size_t bytes() const { return n_ * sizeof(float); }

 private:
  std::size_t n_;
  std::unique_ptr<float, AlignedDeleter> data_;
};

/// \brief The read patterns of the stream probe: one stream per thread, two streams per thread,
/// one stream with software prefetch. An engine's kernels may read faster than one plain stream
/// does (more lines in flight), so the probe reports the best pattern: a ceiling, not a typical.
enum class StreamPattern { one, two, prefetch };
inline const char* stream_pattern_name(StreamPattern p) {
  return p == StreamPattern::one ? "one" : p == StreamPattern::two ? "two" : "prefetch";
}

/// \brief Best-of-`passes` read bandwidth of `buf` over all pool threads with one pattern, in GB/s.
/// `checksum`, if given, receives the sum (so the reads cannot be optimised away).
inline double stream_gbps(ThreadPool& pool, const StreamBuffer& buf, StreamPattern pattern, int passes = 5,
                          double* checksum = nullptr) {
  const KernelTable& k = active_kernels();
  const auto sum = pattern == StreamPattern::one   ? k.stream_sum
                   : pattern == StreamPattern::two ? k.stream_sum_two
                                                   : k.stream_sum_prefetch;
  const std::int64_t n_threads = pool.size();
  const std::int64_t blocks = std::int64_t(buf.size() / 128) * 2;  // 64-float blocks, even per thread
  std::vector<double> sums(std::size_t(n_threads), 0.0);
  double best = 1e30;
  for (int p = 0; p < passes; ++p) {
    const double s = detail::time_on_all_threads(pool, [&](std::int64_t t) {
      const auto [lo, hi] = ThreadPool::chunk_range(blocks / 2, n_threads, t);  // pairs of blocks
      sums[std::size_t(t)] = sum(buf.data() + lo * 128, (hi - lo) * 128);
    });
    best = std::min(best, s);
  }
  if (checksum) {
    *checksum = 0;
    for (double v : sums) *checksum += v;
  }
  return double(blocks) * 64 * sizeof(float) / best / 1e9;
}

/// \brief The probe's figure: the best of the three patterns (`which`, if given, names it).
inline double stream_gbps(ThreadPool& pool, const StreamBuffer& buf, int passes = 5, double* checksum = nullptr,
                          StreamPattern* which = nullptr) {
  double best = 0;
  for (StreamPattern p : {StreamPattern::one, StreamPattern::two, StreamPattern::prefetch}) {
    const double g = stream_gbps(pool, buf, p, passes, checksum);
    if (g > best) {
      best = g;
      if (which) *which = p;
    }
  }
  return best;
}

/// \brief Convenience: allocates `bytes` (default 1 GiB) and returns stream_gbps over it.
inline double stream_gbps(ThreadPool& pool, std::size_t bytes = std::size_t(1) << 30, int passes = 5) {
  const StreamBuffer buf(pool, bytes);
  return stream_gbps(pool, buf, passes);
}

/// \brief Best-of-`passes` FMA throughput of all pool threads, in GFLOP/s: each thread runs
/// kFmaChains independent chains of `iterations` FMAs on the active level's batches.
inline double fma_peak_gflops(ThreadPool& pool, std::int64_t iterations = 20'000'000, int passes = 5,
                              double* checksum = nullptr) {
  const KernelTable& k = active_kernels();
  std::vector<float> sums(std::size_t(pool.size()), 0.0f);
  double best = 1e30;
  for (int p = 0; p < passes; ++p) {
    const double s =
        detail::time_on_all_threads(pool, [&](std::int64_t t) { sums[std::size_t(t)] = k.fma_chains(iterations); });
    best = std::min(best, s);
  }
  if (checksum) {
    *checksum = 0;
    for (float v : sums) *checksum += v;
  }
  const double flops = 2.0 * double(k.float_lanes) * double(kFmaChains) * double(iterations) * double(pool.size());
  return flops / best / 1e9;
}

}  // namespace lav2::kernels::probes
