// A small persistent thread pool with a static-partition parallel_for and self-scheduling
// parallel_for_dynamic (fixed blocks) and parallel_for_guided (shrinking blocks).
//
// Determinism: parallel_for splits [0, n) into contiguous chunks, chunk t always goes to thread t
// (the caller is thread 0), and each index is handled by exactly one thread with the same code a
// single thread would run. Kernels that compute each output element inside one chunk therefore
// give bit-identical results for any thread count. parallel_for_dynamic hands out blocks of
// `grain` indices from a shared counter instead: which thread runs a block varies from call to
// call, so it is for kernels whose result for an index does not depend on the block boundaries
// or the thread (matmul rows): then it is as deterministic, and a thread that the OS or the
// hypervisor delays no longer holds up the whole call by its static share. parallel_for_guided
// is the same with blocks that start large (a 2·threads-th of what is left) and shrink to
// `grain`: long contiguous runs for kernels that stream memory, fine blocks at the end.
//
// Latency: a decode step runs a few dozen parallel_for calls of ~0.1-2 ms each, so waking the
// workers must cost microseconds, not a futex round trip per call. The job is handed over
// through an atomic generation counter; workers spin on it (with a pause hint) for up to
// kSpinMicros after their last job before sleeping on a condition variable, and the caller
// likewise spins before sleeping while it waits for the last chunk. The job itself is a function
// pointer plus the address of the caller's callable: no std::function, no allocation per call.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "lav2/core/error.hpp"

namespace lav2 {

/// \brief Fixed set of worker threads; the calling thread works too.
class ThreadPool {
 public:
  /// How long a worker (or a waiting caller) spins before blocking, in microseconds.
  static constexpr int kSpinMicros = 50;

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
      stop_.store(true, std::memory_order_relaxed);
      generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    for (auto& w : workers_) w.join();
  }

  int size() const { return n_threads_; }

  /// \brief Runs fn(begin, end) over [0, n) split into at most size() contiguous chunks of at
  /// least `min_chunk` indices; chunk t runs on thread t. Blocks until all chunks finish;
  /// rethrows the first exception. Called from inside a running parallel_for it runs serially on
  /// the caller. `fn` is any callable with signature void(std::int64_t, std::int64_t).
  template <class F>
  void parallel_for(std::int64_t n, F&& fn, std::int64_t min_chunk = 1) {
    if (n <= 0) return;
    const std::int64_t chunks =
        std::min<std::int64_t>(n_threads_, (n + min_chunk - 1) / std::max<std::int64_t>(min_chunk, 1));
    if (chunks <= 1 || in_region_flag_()) {
      fn(std::int64_t(0), n);
      return;
    }
    run_job_(n, chunks, /*grain=*/0, fn);
  }

  /// \brief Runs fn(begin, end) over [0, n) in blocks of `grain` indices (the last may be
  /// shorter, each block starts at a multiple of `grain`) that the threads claim from a shared
  /// counter until none is left. Serial (one fn(0, n) call per block, in order) when the pool
  /// has one thread or when called from inside a running parallel region.
  template <class F>
  void parallel_for_dynamic(std::int64_t n, F&& fn, std::int64_t grain) {
    claim_blocks_(n, fn, grain, /*guided=*/false);
  }

  /// \brief Like parallel_for_dynamic, but each claim takes max(grain, what is left / (2 *
  /// threads)) indices, rounded down to a multiple of `grain` (OpenMP's "guided" schedule):
  /// blocks still start at multiples of `grain`, only the last may be shorter, and a streaming
  /// kernel reads long contiguous runs (a matvec's hardware prefetch streams restart at every
  /// block) while the end of the range is still shared out finely. Serial (one fn(0, n) call)
  /// when the pool has one thread or when called from inside a running parallel region.
  template <class F>
  void parallel_for_guided(std::int64_t n, F&& fn, std::int64_t grain) {
    claim_blocks_(n, fn, grain, /*guided=*/true);
  }

  /// Chunk `c` of `chunks` over [0, n): the boundaries parallel_for uses.
  static std::pair<std::int64_t, std::int64_t> chunk_range(std::int64_t n, std::int64_t chunks, std::int64_t c) {
    const std::int64_t base = n / chunks, extra = n % chunks;
    const std::int64_t begin = c * base + std::min(c, extra);
    return {begin, begin + base + (c < extra ? 1 : 0)};
  }

 private:
  /// parallel_for_dynamic (fixed blocks) and parallel_for_guided (shrinking blocks).
  template <class F>
  void claim_blocks_(std::int64_t n, F& fn, std::int64_t grain, bool guided) {
    if (n <= 0) return;
    grain = std::max<std::int64_t>(grain, 1);
    const std::int64_t blocks = (n + grain - 1) / grain;
    if (blocks <= 1 || n_threads_ <= 1 || in_region_flag_()) {
      if (guided) {
        fn(std::int64_t(0), n);
      } else {
        for (std::int64_t b = 0; b < n; b += grain) fn(b, std::min(b + grain, n));
      }
      return;
    }
    run_job_(n, std::min<std::int64_t>(n_threads_, blocks), guided ? -grain : grain, fn);
  }

  /// Publishes one job to the workers, runs the caller's share, waits for the rest. grain 0:
  /// static chunks; > 0: blocks of `grain` claimed from job_next_ by `chunks` threads; < 0:
  /// guided blocks, multiples of -grain.
  template <class F>
  void run_job_(std::int64_t n, std::int64_t chunks, std::int64_t grain, F& fn) {
    using Fn = std::remove_reference_t<F>;
    std::lock_guard<std::mutex> job_lock(job_mutex_);  // one parallel_for at a time per pool
    job_fn_ = [](const void* ctx, std::int64_t b, std::int64_t e) {
      (*static_cast<Fn*>(const_cast<void*>(ctx)))(b, e);
    };
    job_ctx_ = static_cast<const void*>(std::addressof(fn));
    job_n_ = n;
    job_chunks_ = chunks;
    job_grain_ = grain;
    job_next_.store(0, std::memory_order_relaxed);
    error_ = nullptr;
    // Every worker acknowledges every job, even one with fewer chunks than threads: then no worker
    // can still be reading this job's fields when the next one is published.
    pending_.store(n_threads_ - 1, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);  // publishes the job fields above
    {
      // Taking the mutex orders this publication against a worker that is between checking the
      // generation and blocking; only sleeping workers need the (syscall) notification.
      std::lock_guard<std::mutex> l(mutex_);
      if (sleepers_ > 0) wake_.notify_all();
    }
    run_chunk_(0);
    if (!spin_until_([this] { return pending_.load(std::memory_order_acquire) == 0; })) {
      std::unique_lock<std::mutex> l(mutex_);
      done_.wait(l, [this] { return pending_.load(std::memory_order_acquire) == 0; });
    }
    job_fn_ = nullptr;
    job_ctx_ = nullptr;
    if (error_) std::rethrow_exception(error_);
  }

  static bool& in_region_flag_() {
    thread_local bool flag = false;
    return flag;
  }

  static void cpu_relax_() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
  }

  /// Spins until done() or kSpinMicros have passed; returns done().
  template <class Done>
  static bool spin_until_(Done done) {
    if (done()) return true;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(kSpinMicros);
    for (;;) {
      for (int i = 0; i < 64; ++i) {
        if (done()) return true;
        cpu_relax_();
      }
      if (std::chrono::steady_clock::now() >= deadline) return done();
    }
  }

  void run_chunk_(std::int64_t c) {
    in_region_flag_() = true;
    try {
      if (job_grain_ == 0) {
        const auto [b, e] = chunk_range(job_n_, job_chunks_, c);
        if (b < e) job_fn_(job_ctx_, b, e);
      } else if (job_grain_ < 0) {
        const std::int64_t grain = -job_grain_, split = 2 * std::int64_t(n_threads_);
        std::int64_t b = job_next_.load(std::memory_order_relaxed);
        while (b < job_n_) {
          const std::int64_t size = std::max(grain, (job_n_ - b) / split / grain * grain);
          if (job_next_.compare_exchange_weak(b, b + size, std::memory_order_relaxed)) {
            job_fn_(job_ctx_, b, std::min(b + size, job_n_));
            b = job_next_.load(std::memory_order_relaxed);
          }  // else b now holds the counter's current value: retry from there
        }
      } else {
        for (;;) {
          const std::int64_t b = job_next_.fetch_add(job_grain_, std::memory_order_relaxed);
          if (b >= job_n_) break;
          job_fn_(job_ctx_, b, std::min(b + job_grain_, job_n_));
        }
      }
    } catch (...) {
      std::lock_guard<std::mutex> l(mutex_);
      if (!error_) error_ = std::current_exception();
    }
    in_region_flag_() = false;
  }

  void worker_loop_(int t) {
    std::uint64_t seen = 0;
    for (;;) {
      std::uint64_t g = 0;
      const auto fresh = [&] { return (g = generation_.load(std::memory_order_acquire)) != seen; };
      if (!spin_until_(fresh)) {
        std::unique_lock<std::mutex> l(mutex_);
        ++sleepers_;
        wake_.wait(l, fresh);
        --sleepers_;
      }
      seen = g;
      if (stop_.load(std::memory_order_relaxed)) return;
      if (t < job_chunks_) run_chunk_(t);  // else this job has fewer chunks than threads
      if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        // Under the mutex, so a caller that just found pending_ != 0 is already waiting.
        std::lock_guard<std::mutex> l(mutex_);
        done_.notify_one();
      }
    }
  }

  int n_threads_ = 1;
  std::vector<std::thread> workers_;
  std::mutex job_mutex_, mutex_;
  std::condition_variable wake_, done_;
  // The current job; written by the caller before generation_ is bumped, read by workers after.
  void (*job_fn_)(const void*, std::int64_t, std::int64_t) = nullptr;
  const void* job_ctx_ = nullptr;
  std::int64_t job_n_ = 0, job_chunks_ = 0, job_grain_ = 0;  // job_grain_ < 0: guided
  std::atomic<std::int64_t> job_next_{0};                    // next unclaimed index of a dynamic job
  std::exception_ptr error_;                                 // guarded by mutex_ while a job runs
  std::atomic<int> pending_{0};
  std::atomic<std::uint64_t> generation_{0};
  std::atomic<bool> stop_{false};
  int sleepers_ = 0;  // guarded by mutex_
};

}  // namespace lav2
