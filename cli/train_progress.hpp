// The training progress bar: one line on stderr, redrawn in place, shown only when stderr is a terminal
// (pipes and logs get nothing from it): step, bar, loss, tokens/s and ETA.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>

namespace lav2::cli {

class ProgressBar {
 public:
  /// `total` steps; the bar starts at `first` (a resumed run).
  ProgressBar(std::int64_t total, std::int64_t first) : total_(total), first_(first), tty_(::isatty(2) == 1) {}

  bool shown() const { return tty_; }

  /// Redraws after `done` steps, with the last loss, the training throughput and the seconds
  /// spent since the first step of this run.
  void update(std::int64_t done, double loss, double tokens_per_s, double seconds) {
    if (!tty_) return;
    const int width = 30;
    const int filled = total_ > 0 ? int(double(width) * double(done) / double(total_)) : width;
    std::string bar(std::size_t(filled), '=');
    bar.resize(std::size_t(width), ' ');
    const std::int64_t ran = done - first_;
    const double eta = ran > 0 ? seconds / double(ran) * double(total_ - done) : 0.0;
    std::fprintf(stderr, "\r\033[Kstep %lld/%lld [%s] loss %.4f  %.0f tok/s  ETA %s", (long long)done,
                 (long long)total_, bar.c_str(), loss, tokens_per_s, clock_(eta).c_str());
    std::fflush(stderr);
  }
  /// Ends the line (before anything else is printed).
  void finish() {
    if (tty_) std::fputc('\n', stderr);
  }

 private:
  static std::string clock_(double s) {
    const long long t = (long long)(s + 0.5);
    char buf[32];
    std::snprintf(buf, sizeof buf, "%02lld:%02lld:%02lld", t / 3600, t / 60 % 60, t % 60);
    return buf;
  }
  std::int64_t total_, first_;
  bool tty_;
};

}  // namespace lav2::cli
