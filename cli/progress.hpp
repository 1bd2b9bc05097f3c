// A progress bar while the weight files are read from disk, on stderr and only when stderr is a
// terminal. lav2 maps its weight files (io/mmap.hpp), so reading happens page by page inside the
// first forward pass; before that, preload_with_progress() reads the files once, in order, which
// brings them into the page cache with a visible bar:
//   loading [##############............] 54%  3.5 / 6.5 GiB
// Files smaller than kMinProgressBytes in total are left to the mapping (no bar, no extra read).
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <sys/stat.h>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace lav2::cli {

/// Below this many bytes in all, loading is quick enough that no bar is drawn.
constexpr std::uint64_t kMinProgressBytes = std::uint64_t(256) << 20;

/// \brief The bar's text for `done` of `total` bytes (no line break).
inline std::string progress_line(std::uint64_t done, std::uint64_t total, int width = 28) {
  const double f = total ? double(done) / double(total) : 1.0;
  const int filled = int(f * width + 0.5);
  std::string bar = "loading [" + std::string(std::size_t(filled), '#') + std::string(std::size_t(width - filled), '.');
  const bool gib = total >= (std::uint64_t(2) << 30);
  const double unit = gib ? double(1u << 30) : double(1u << 20);
  char tail[80];
  std::snprintf(tail, sizeof tail, "] %3d%%  %.1f / %.1f %s", int(f * 100.0), double(done) / unit, double(total) / unit,
                gib ? "GiB" : "MiB");
  return bar + tail;
}

/// \brief Reads `files` once with a bar on stderr, when stderr is a terminal and they hold at
/// least kMinProgressBytes. Files that cannot be opened are skipped: the loader reports them.
inline void preload_with_progress(const std::vector<std::string>& files) {
  if (!isatty(STDERR_FILENO)) return;
  std::uint64_t total = 0;
  for (const std::string& f : files) {
    struct stat st {};
    if (::stat(f.c_str(), &st) == 0 && S_ISREG(st.st_mode)) total += std::uint64_t(st.st_size);
  }
  if (total < kMinProgressBytes) return;
  std::vector<char> buf(std::size_t(8) << 20);
  std::uint64_t done = 0, shown = 0;
  for (const std::string& f : files) {
    const int fd = ::open(f.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    for (ssize_t n; (n = ::read(fd, buf.data(), buf.size())) > 0;) {
      done += std::uint64_t(n);
      if (done - shown >= total / 200 || done == total) {
        std::fprintf(stderr, "\r%s", progress_line(done, total).c_str());
        shown = done;
      }
    }
    ::close(fd);
  }
  std::fprintf(stderr, "\r%s\n", progress_line(total, total).c_str());
}

}  // namespace lav2::cli
