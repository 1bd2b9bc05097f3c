#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include <lav2/core/thread_pool.hpp>

TEST_CASE("parallel_for covers every index exactly once, for 1, 2 and 3 threads") {
  for (int threads : {1, 2, 3}) {
    lav2::ThreadPool pool(threads);
    for (std::int64_t n : {0, 1, 2, 3, 7, 1000}) {
      std::vector<std::atomic<int>> hits(static_cast<std::size_t>(n));
      pool.parallel_for(n, [&](std::int64_t b, std::int64_t e) {
        for (std::int64_t i = b; i < e; ++i) hits[std::size_t(i)]++;
      });
      for (auto& h : hits) CHECK(h.load() == 1);
    }
  }
}

TEST_CASE("parallel_for rethrows a worker's exception and stays usable") {
  lav2::ThreadPool pool(3);
  CHECK_THROWS_AS(pool.parallel_for(30,
                                    [](std::int64_t b, std::int64_t) {
                                      if (b > 0) LAV2_THROW(lav2::input_error, "chunk ", b);
                                    }),
                  lav2::input_error);
  std::atomic<int> count{0};
  pool.parallel_for(30, [&](std::int64_t b, std::int64_t e) { count += int(e - b); });
  CHECK(count == 30);
}

TEST_CASE("nested parallel_for runs serially instead of deadlocking") {
  lav2::ThreadPool pool(2);
  std::atomic<int> count{0};
  pool.parallel_for(4, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t i = b; i < e; ++i)
      pool.parallel_for(5, [&](std::int64_t b2, std::int64_t e2) { count += int(e2 - b2); });
  });
  CHECK(count == 20);
}

TEST_CASE("parallel_for_dynamic hands out grain-aligned blocks, each exactly once") {
  for (int threads : {1, 2, 3}) {
    lav2::ThreadPool pool(threads);
    for (std::int64_t n : {0, 1, 5, 64, 1001}) {
      for (std::int64_t grain : {1, 7, 64}) {
        std::vector<std::atomic<int>> hits(static_cast<std::size_t>(n));
        std::atomic<bool> aligned{true};
        pool.parallel_for_dynamic(
            n,
            [&](std::int64_t b, std::int64_t e) {
              if (b % grain != 0 || e != std::min(b + grain, n)) aligned = false;
              for (std::int64_t i = b; i < e; ++i) hits[std::size_t(i)]++;
            },
            grain);
        CHECK(aligned.load());
        for (auto& h : hits) CHECK(h.load() == 1);
      }
    }
  }
}

TEST_CASE("parallel_for_guided hands out grain-aligned, shrinking blocks, each index exactly once") {
  for (int threads : {1, 2, 3}) {
    lav2::ThreadPool pool(threads);
    for (std::int64_t n : {0, 1, 5, 64, 1001, 11008}) {
      for (std::int64_t grain : {1, 7, 64}) {
        std::vector<std::atomic<int>> hits(static_cast<std::size_t>(n));
        std::mutex m;
        std::vector<std::pair<std::int64_t, std::int64_t>> blocks;
        pool.parallel_for_guided(
            n,
            [&](std::int64_t b, std::int64_t e) {
              for (std::int64_t i = b; i < e; ++i) hits[std::size_t(i)]++;
              std::lock_guard<std::mutex> l(m);
              blocks.emplace_back(b, e);
            },
            grain);
        for (auto& h : hits) CHECK(h.load() == 1);
        std::sort(blocks.begin(), blocks.end());
        for (std::size_t i = 0; i < blocks.size(); ++i) {
          INFO("threads=", threads, " n=", n, " grain=", grain, " block ", blocks[i].first, "..", blocks[i].second);
          CHECK(blocks[i].first % grain == 0);
          // Every block but the last is a whole number of grains.
          if (blocks[i].second != n) CHECK((blocks[i].second - blocks[i].first) % grain == 0);
          // Blocks shrink (or stay at one grain) along the range.
          if (threads > 1 && i > 0 && blocks[i].second != n)
            CHECK(blocks[i].second - blocks[i].first <= blocks[i - 1].second - blocks[i - 1].first);
        }
        // With several threads the first block is a 2*threads-th of the range, not one grain.
        if (threads > 1 && n == 11008 && grain == 64)
          CHECK(blocks.front().second - blocks.front().first == 11008 / (2 * threads) / 64 * 64);
      }
    }
  }
}

TEST_CASE("parallel_for_dynamic rethrows, nests serially and uses every thread when blocks are slow") {
  lav2::ThreadPool pool(2);
  CHECK_THROWS_AS(pool.parallel_for_dynamic(
                      100,
                      [](std::int64_t b, std::int64_t) {
                        if (b == 50) LAV2_THROW(lav2::input_error, "block ", b);
                      },
                      10),
                  lav2::input_error);
  std::atomic<int> count{0};
  pool.parallel_for_dynamic(
      4,
      [&](std::int64_t b, std::int64_t e) {
        for (std::int64_t i = b; i < e; ++i)
          pool.parallel_for_dynamic(
              5, [&](std::int64_t b2, std::int64_t e2) { count += int(e2 - b2); }, 2);
      },
      1);
  CHECK(count == 20);
  // With blocks that take a while, the worker claims some: the caller does not run them all.
  std::mutex m;
  std::vector<std::thread::id> ids;
  pool.parallel_for_dynamic(
      8,
      [&](std::int64_t, std::int64_t) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        std::lock_guard<std::mutex> l(m);
        ids.push_back(std::this_thread::get_id());
      },
      1);
  CHECK(ids.size() == 8);
  CHECK(std::count(ids.begin(), ids.end(), std::this_thread::get_id()) < 8);
}

TEST_CASE("thread counts outside [0, 1024] are an input error") {
  CHECK_THROWS_AS(lav2::ThreadPool(-1), lav2::input_error);
  CHECK_THROWS_AS(lav2::ThreadPool(5000), lav2::input_error);
}

TEST_CASE("chunk t runs on the same thread every call, and back-to-back jobs never mix") {
  // Many short jobs in a row, some with fewer chunks than threads: a worker that is late for one
  // job must not run a chunk of the next one twice or skip it.
  lav2::ThreadPool pool(3);
  std::vector<std::thread::id> owner(3);
  pool.parallel_for(3, [&](std::int64_t b, std::int64_t) { owner[std::size_t(b)] = std::this_thread::get_id(); });
  for (int rep = 0; rep < 20000; ++rep) {
    const std::int64_t n = 1 + rep % 5;  // 1..5 indices: 1, 2 or 3 chunks
    std::vector<int> hits(std::size_t(n), 0);
    bool same_thread = true;
    pool.parallel_for(n, [&](std::int64_t b, std::int64_t e) {
      const std::int64_t chunks = std::min<std::int64_t>(3, n);
      for (std::int64_t c = 0; c < chunks; ++c)
        if (lav2::ThreadPool::chunk_range(n, chunks, c).first == b &&
            owner[std::size_t(c)] != std::this_thread::get_id())
          same_thread = false;
      for (std::int64_t i = b; i < e; ++i) hits[std::size_t(i)]++;
    });
    for (int h : hits) REQUIRE(h == 1);
    REQUIRE(same_thread);
  }
}

TEST_CASE("parallel_for accepts any callable, including a const std::function") {
  lav2::ThreadPool pool(2);
  std::atomic<int> count{0};
  const std::function<void(std::int64_t, std::int64_t)> fn = [&](std::int64_t b, std::int64_t e) {
    count += int(e - b);
  };
  pool.parallel_for(10, fn);
  CHECK(count == 10);
}
