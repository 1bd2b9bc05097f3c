// A small persistent thread pool with a static-partition parallel_for.
//
// Determinism: parallel_for splits [0, n) into contiguous chunks and each index is handled by
// exactly one thread, with the same code a single thread would run. Kernels that compute each
// output element inside one chunk therefore give bit-identical results for any thread count.
#pragma once

#include <algorithm>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "lav2/core/error.hpp"

namespace lav2 {

/// \brief Fixed set of worker threads; the calling thread works too.
class ThreadPool {
 public:
  /// \param n_threads total threads including the caller; 0 means hardware_concurrency().
  explicit ThreadPool(int n_threads = 1) {
    if (n_threads < 0 || n_threads > 1024) LAV2_THROW(input_error, "thread count ", n_threads, " is outside [0, 1024]");
    if (n_threads == 0) n_threads = std::max(1, int(std::thread::hardware_concurrency()));
    n_threads_ = n_threads;
    for (int t = 1; t < n_threads; ++t) workers_.emplace_back([this, t] { worker_loop_(t); });
  }
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;
  ~ThreadPool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    for (auto& w : workers_) w.join();
  }

  int size() const { return n_threads_; }

  /// \brief Runs fn(begin, end) over [0, n) split into at most size() contiguous chunks of at
  /// least `min_chunk` indices. Blocks until all chunks finish; rethrows the first exception.
  /// Called from inside a running parallel_for it runs serially on the caller.
  void parallel_for(std::int64_t n, const std::function<void(std::int64_t, std::int64_t)>& fn,
                    std::int64_t min_chunk = 1) {
    if (n <= 0) return;
    std::int64_t chunks = std::min<std::int64_t>(n_threads_, (n + min_chunk - 1) / std::max<std::int64_t>(min_chunk, 1));
    if (chunks <= 1 || in_parallel_region_()) {
      fn(0, n);
      return;
    }
    std::unique_lock<std::mutex> lock(job_mutex_);  // one parallel_for at a time per pool
    {
      std::lock_guard<std::mutex> l(mutex_);
      job_ = &fn;
      job_n_ = n;
      job_chunks_ = chunks;
      pending_ = int(chunks) - 1;
      error_ = nullptr;
      ++generation_;
    }
    wake_.notify_all();
    run_chunk_(0);
    std::unique_lock<std::mutex> l(mutex_);
    done_.wait(l, [this] { return pending_ == 0; });
    job_ = nullptr;
    if (error_) std::rethrow_exception(error_);
  }

  /// Chunk `c` of `chunks` over [0, n): the boundaries parallel_for uses.
  static std::pair<std::int64_t, std::int64_t> chunk_range(std::int64_t n, std::int64_t chunks, std::int64_t c) {
    const std::int64_t base = n / chunks, extra = n % chunks;
    const std::int64_t begin = c * base + std::min(c, extra);
    return {begin, begin + base + (c < extra ? 1 : 0)};
  }

 private:
  static bool& in_region_flag_() {
    thread_local bool flag = false;
    return flag;
  }
  static bool in_parallel_region_() { return in_region_flag_(); }

  void run_chunk_(std::int64_t c) {
    const auto [b, e] = chunk_range(job_n_, job_chunks_, c);
    in_region_flag_() = true;
    try {
      if (b < e) (*job_)(b, e);
    } catch (...) {
      std::lock_guard<std::mutex> l(mutex_);
      if (!error_) error_ = std::current_exception();
    }
    in_region_flag_() = false;
  }

  void worker_loop_(int t) {
    std::uint64_t seen = 0;
    for (;;) {
      {
        std::unique_lock<std::mutex> l(mutex_);
        wake_.wait(l, [&] { return stop_ || generation_ != seen; });
        if (stop_) return;
        seen = generation_;
        if (t >= job_chunks_) continue;  // this job has fewer chunks than threads
      }
      run_chunk_(t);
      {
        std::lock_guard<std::mutex> l(mutex_);
        if (--pending_ == 0) done_.notify_one();
      }
    }
  }

  int n_threads_ = 1;
  std::vector<std::thread> workers_;
  std::mutex job_mutex_, mutex_;
  std::condition_variable wake_, done_;
  const std::function<void(std::int64_t, std::int64_t)>* job_ = nullptr;
  std::int64_t job_n_ = 0, job_chunks_ = 0;
  int pending_ = 0;
  std::uint64_t generation_ = 0;
  std::exception_ptr error_;
  bool stop_ = false;
};

}  // namespace lav2
