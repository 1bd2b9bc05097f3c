// Read-only memory mapping of a whole file (POSIX mmap), the backing store of every tensor view
// the checkpoint readers hand out. Mapping costs address space, not memory: pages are read on
// first touch, so opening a 13 GB checkpoint leaves the resident set almost unchanged.
#pragma once

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "lav2/core/error.hpp"

namespace lav2::io {

/// \brief A file mapped read-only (MAP_PRIVATE, PROT_READ) for the lifetime of the object.
/// Held through shared_ptr: every reader that hands out views keeps one, so the mapping
/// outlives the views as long as the reader (or `keep_alive()`) does.
class MappedFile {
 public:
  /// \brief Maps `path`. \param what names the file in messages ("checkpoint", "safetensors").
  /// Throws load_error when the file cannot be opened, is not a regular file, or cannot be mapped.
  static std::shared_ptr<const MappedFile> open(const std::string& path, const std::string& what = "file") {
    std::shared_ptr<MappedFile> m(new MappedFile());
    m->path_ = path;
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) LAV2_THROW(load_error, what, " '", path, "': cannot open: ", std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      const int e = errno;
      ::close(fd);
      LAV2_THROW(load_error, what, " '", path, "': cannot stat: ", std::strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
      ::close(fd);
      LAV2_THROW(load_error, what, " '", path, "': not a regular file");
    }
    m->size_ = std::uint64_t(st.st_size);
    if (m->size_ > 0) {
      if (m->size_ > std::uint64_t(SIZE_MAX)) {
        ::close(fd);
        LAV2_THROW(load_error, what, " '", path, "': ", m->size_, " bytes do not fit the address space");
      }
      void* p = ::mmap(nullptr, std::size_t(m->size_), PROT_READ, MAP_PRIVATE, fd, 0);
      if (p == MAP_FAILED) {
        const int e = errno;
        ::close(fd);
        LAV2_THROW(load_error, what, " '", path, "': cannot map ", m->size_, " bytes: ", std::strerror(e));
      }
      m->data_ = static_cast<const unsigned char*>(p);
      registry().add(m->data_, std::size_t(m->size_));
    }
    ::close(fd);  // the mapping keeps its own reference to the file
    return m;
  }

  /// \brief An in-memory "file": a 64-byte aligned heap copy of [data, data + size), named `name`
  /// in messages. Every reader that takes a MappedFile reads it exactly as it would read the file
  /// (fuzzers, tests and callers that already hold the bytes use it). The copy is sized exactly,
  /// so an out-of-bounds read is a heap overflow that AddressSanitizer reports.
  static std::shared_ptr<const MappedFile> from_buffer(const void* data, std::size_t size, const std::string& name) {
    std::shared_ptr<MappedFile> m(new MappedFile());
    m->path_ = name;
    m->size_ = size;
    m->heap_ = true;
    if (size > 0) {
      auto* q = static_cast<unsigned char*>(::operator new(size, std::align_val_t(64)));
      std::memcpy(q, data, size);
      m->data_ = q;
    }
    return m;
  }

  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile() {
    if (data_ && heap_) ::operator delete(const_cast<unsigned char*>(data_), std::align_val_t(64));
    else if (data_) {
      registry().remove(data_);
      ::munmap(const_cast<unsigned char*>(data_), std::size_t(size_));
    }
  }

  /// \brief Gives back the resident pages of [p, p + n) if they lie in a live file mapping
  /// (whole pages inside the range only): a reader that has copied the bytes elsewhere (a weight
  /// repacked at load) so that the file's pages stop counting in the process's memory. Safe
  /// because the mappings are read-only and private: a later read faults the page in again from
  /// the file. Memory of any other kind (heap, a from_buffer() copy) is left alone; returns
  /// whether pages were given back.
  static bool release_pages(const void* p, std::size_t n) {
    const auto* b = static_cast<const unsigned char*>(p);
    if (!registry().contains(b, n)) return false;
    const std::uintptr_t page = std::uintptr_t(::sysconf(_SC_PAGESIZE));
    const std::uintptr_t start = (std::uintptr_t(b) + page - 1) / page * page,
                         end = (std::uintptr_t(b) + n) / page * page;
    if (end <= start) return false;
    return ::madvise(reinterpret_cast<void*>(start), std::size_t(end - start), MADV_DONTNEED) == 0;
  }

  /// First byte of the file; nullptr for an empty file.
  const unsigned char* data() const { return data_; }
  /// File size in bytes.
  std::uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }

  /// Hints that [offset, offset+len) will be read soon (MADV_WILLNEED); out-of-range is ignored.
  void will_need(std::uint64_t offset, std::uint64_t len) const {
    if (!data_ || heap_ || offset >= size_) return;
    const std::uint64_t page = std::uint64_t(::sysconf(_SC_PAGESIZE));
    const std::uint64_t start = offset / page * page;
    const std::uint64_t end = len > size_ - offset ? size_ : offset + len;
    ::madvise(const_cast<unsigned char*>(data_) + start, std::size_t(end - start), MADV_WILLNEED);
  }

 private:
  /// The live file mappings' ranges (release_pages() touches nothing else).
  class Registry {
   public:
    void add(const unsigned char* p, std::size_t n) {
      std::lock_guard<std::mutex> lock(mu_);
      ranges_.emplace_back(p, n);
    }
    void remove(const unsigned char* p) {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto& r : ranges_)
        if (r.first == p) {
          r = ranges_.back();
          ranges_.pop_back();
          return;
        }
    }
    bool contains(const unsigned char* p, std::size_t n) const {
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& r : ranges_)
        if (p >= r.first && n <= r.second && std::size_t(p - r.first) <= r.second - n) return true;
      return false;
    }

   private:
    mutable std::mutex mu_;
    std::vector<std::pair<const unsigned char*, std::size_t>> ranges_;
  };
  static Registry& registry() {  // never destroyed: a mapping may outlive static destruction
    static Registry* r = new Registry;
    return *r;
  }

  MappedFile() = default;
  std::string path_;
  const unsigned char* data_ = nullptr;
  std::uint64_t size_ = 0;
  bool heap_ = false;  // from_buffer(): data_ is an aligned heap block, not a mapping
};

}  // namespace lav2::io
