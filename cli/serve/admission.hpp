// Which requests `lav2 serve` decodes now, which wait, and which it turns away:
//   `parallel` slots, each a request decoding with its own state and thread pool over the one
//   model; up to `queue` more requests wait in arrival order (first come, first served); any
//   beyond those are refused at once (503). A slot is held by a Slot object and freed when it is
//   destroyed: when the request ends, fails, or its client goes away mid-stream.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <vector>

namespace lav2::cli::serve {

class Admission {
 public:
  Admission(int parallel, int queue) : queue_(queue), free_(std::size_t(parallel), true) {}
  Admission(const Admission&) = delete;
  Admission& operator=(const Admission&) = delete;

  /// \brief A held slot; move-only, frees the slot when destroyed.
  class Slot {
   public:
    Slot(Admission* owner, int index) : owner_(owner), index_(index) {}
    Slot(Slot&& o) noexcept : owner_(o.owner_), index_(o.index_) { o.owner_ = nullptr; }
    Slot& operator=(Slot&&) = delete;
    Slot(const Slot&) = delete;
    ~Slot() {
      if (owner_) owner_->release_(index_);
    }
    /// Which of the `parallel` slots (0-based): the thread pool the request runs on.
    int index() const { return index_; }

   private:
    Admission* owner_;
    int index_;
  };

  /// \brief Takes a free slot, waiting in arrival order while all are busy; nullopt at once when
  /// `queue` requests are waiting already.
  std::optional<Slot> acquire() {
    std::unique_lock<std::mutex> lock(mutex_);
    if (waiting_ == 0 && running_ < int(free_.size())) return take_();
    if (waiting_ >= queue_) {
      ++refused_;
      return std::nullopt;
    }
    const std::uint64_t ticket = next_ticket_++;
    ++waiting_;
    cv_.wait(lock, [&] { return ticket == serving_ && running_ < int(free_.size()); });
    --waiting_;
    ++serving_;
    Slot s = take_();
    cv_.notify_all();  // the next ticket may find a slot free too
    return s;
  }

  struct Stats {
    int parallel, queue, running, waiting;
    std::uint64_t refused;
  };
  Stats stats() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return {int(free_.size()), queue_, running_, waiting_, refused_};
  }

 private:
  Slot take_() {  // with mutex_ held and a slot free
    std::size_t i = 0;
    while (!free_[i]) ++i;
    free_[i] = false;
    ++running_;
    return Slot(this, int(i));
  }
  void release_(int index) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      free_[std::size_t(index)] = true;
      --running_;
    }
    cv_.notify_all();
  }

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  int queue_, running_ = 0, waiting_ = 0;
  std::uint64_t next_ticket_ = 0, serving_ = 0, refused_ = 0;
  std::vector<bool> free_;
};

}  // namespace lav2::cli::serve
