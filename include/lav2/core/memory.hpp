// How much memory this process may still allocate, so that a request that cannot fit is refused
// with a message before it allocates, never killed by the OOM killer halfway through.
//
//   available = min( MemAvailable                    (/proc/meminfo: what the kernel can give
//                                                      without swapping),
//                    cgroup limit - cgroup usage      (v2 memory.max - memory.current, or v1
//                                                      memory.limit_in_bytes - memory.usage_in_bytes),
//                    RLIMIT_AS - this process's size  (address space: getrlimit and /proc/self/statm) )
// Any source that is absent or unlimited is left out; with none at all the answer is "unknown"
// (the largest value), and the check passes.
#pragma once

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>

#include "lav2/core/error.hpp"

namespace lav2 {

/// \brief The sources of the memory bound, for messages (kUnknown where a source is absent).
struct MemoryBudget {
  static constexpr std::uint64_t kUnknown = std::numeric_limits<std::uint64_t>::max();
  std::uint64_t mem_available = kUnknown;       ///< /proc/meminfo MemAvailable
  std::uint64_t cgroup_free = kUnknown;         ///< cgroup limit minus usage
  std::uint64_t address_space_free = kUnknown;  ///< RLIMIT_AS minus the current virtual size

  std::uint64_t available() const { return std::min({mem_available, cgroup_free, address_space_free}); }
  std::string describe() const {
    auto part = [](const char* name, std::uint64_t v) {
      return v == kUnknown ? std::string() : std::string(name) + " " + std::to_string(v) + " bytes; ";
    };
    std::string s =
        part("MemAvailable", mem_available) + part("cgroup", cgroup_free) + part("RLIMIT_AS left", address_space_free);
    return s.empty() ? "no limit known" : s.substr(0, s.size() - 2);
  }
};

namespace detail {
inline bool read_u64_file(const std::string& path, std::uint64_t& out) {
  std::ifstream f(path);
  std::string word;
  if (!(f >> word) || word == "max") return false;
  try {
    out = std::stoull(word);
  } catch (...) {
    return false;
  }
  return true;
}
inline std::uint64_t mem_available_bytes() {
  std::ifstream f("/proc/meminfo");
  std::string key;
  std::uint64_t kib = 0;
  std::string unit;
  while (f >> key >> kib) {
    std::getline(f, unit);
    if (key == "MemAvailable:") return kib * 1024;
  }
  return MemoryBudget::kUnknown;
}
inline std::uint64_t cgroup_free_bytes() {
  std::uint64_t limit = 0, usage = 0;
  if (read_u64_file("/sys/fs/cgroup/memory.max", limit) && read_u64_file("/sys/fs/cgroup/memory.current", usage))
    return limit > usage ? limit - usage : 0;
  if (read_u64_file("/sys/fs/cgroup/memory/memory.limit_in_bytes", limit) &&
      read_u64_file("/sys/fs/cgroup/memory/memory.usage_in_bytes", usage) && limit < (std::uint64_t(1) << 60))
    return limit > usage ? limit - usage : 0;
  return MemoryBudget::kUnknown;
}
inline std::uint64_t address_space_free_bytes() {
  rlimit lim{};
  if (getrlimit(RLIMIT_AS, &lim) != 0 || lim.rlim_cur == RLIM_INFINITY) return MemoryBudget::kUnknown;
  std::ifstream f("/proc/self/statm");
  std::uint64_t pages = 0;
  if (!(f >> pages)) return MemoryBudget::kUnknown;
  const std::uint64_t used = pages * std::uint64_t(sysconf(_SC_PAGESIZE));
  return lim.rlim_cur > used ? lim.rlim_cur - used : 0;
}
}  // namespace detail

/// \brief What this process may allocate now, and from which sources.
inline MemoryBudget memory_budget() {
  MemoryBudget b;
  b.mem_available = detail::mem_available_bytes();
  b.cgroup_free = detail::cgroup_free_bytes();
  b.address_space_free = detail::address_space_free_bytes();
  return b;
}

/// \brief Throws limit_error when `bytes` (what `what` needs at most) exceeds what is available.
inline void require_memory(std::uint64_t bytes, const std::string& what) {
  const MemoryBudget b = memory_budget();
  if (bytes > b.available())
    LAV2_THROW(limit_error, what, " needs up to ", bytes, " bytes, but only ", b.available(), " bytes are available (",
               b.describe(), ")");
}

}  // namespace lav2
