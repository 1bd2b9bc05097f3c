#include <doctest/doctest.h>

#include <atomic>
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
  CHECK_THROWS_AS(pool.parallel_for(30, [](std::int64_t b, std::int64_t) {
    if (b > 0) LAV2_THROW(lav2::input_error, "chunk ", b);
  }), lav2::input_error);
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

TEST_CASE("thread counts outside [0, 1024] are an input error") {
  CHECK_THROWS_AS(lav2::ThreadPool(-1), lav2::input_error);
  CHECK_THROWS_AS(lav2::ThreadPool(5000), lav2::input_error);
}
