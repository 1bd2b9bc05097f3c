// Process measurements for --json and `lav2 bench`: wall time and peak resident memory.
#pragma once

#include <sys/resource.h>

#include <chrono>
#include <cstdint>

namespace lav2::cli {

/// Peak resident set size of this process so far, in bytes (getrusage: ru_maxrss is in KiB on Linux).
inline std::int64_t peak_rss_bytes() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return std::int64_t(u.ru_maxrss) * 1024;
}

/// Seconds since construction.
class ProcessTimer {
 public:
  double seconds() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count(); }

 private:
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

}  // namespace lav2::cli
