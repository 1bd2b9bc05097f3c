// Aligned heap memory for tensors and kernel buffers, backed by transparent huge pages when large.
//
// A 7B model's matvecs stream ~13 GB of weights per token through 4 KiB pages: each thread keeps
// 8 rows (8 pages) in flight, so a new page - and, beyond the TLB's reach, a page walk - comes
// every 64 cache lines of every stream. On this project's 2-core machine, weights in 2 MiB pages
// were read ~10% faster (f16 matvec 11008x4096, 2 threads). Allocations of at least
// kHugePageBytes are therefore 2 MiB-aligned and advised MADV_HUGEPAGE before their first touch,
// so the kernel backs them with huge pages where THP is enabled ("always" or "madvise"); where it
// is not, or off Linux, they are ordinary aligned memory.
#pragma once

#include <cstddef>
#include <new>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace lav2 {

/// Allocations from this size up are huge-page aligned and advised (2 MiB, x86-64 and arm64).
inline constexpr std::size_t kHugePageBytes = std::size_t(2) << 20;

/// Alignment aligned_alloc_bytes uses for `bytes`: 2 MiB for large blocks, else 64 bytes.
inline std::size_t alignment_for(std::size_t bytes) { return bytes >= kHugePageBytes ? kHugePageBytes : 64; }

/// \brief Uninitialised memory for `bytes` (at least 1), aligned to alignment_for(bytes); throws
/// std::bad_alloc. Free with aligned_free(p, bytes).
inline void* aligned_alloc_bytes(std::size_t bytes) {
  if (bytes == 0) bytes = 1;
  const std::size_t align = alignment_for(bytes);
  void* p = ::operator new(bytes, std::align_val_t(align));
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (align == kHugePageBytes) (void)::madvise(p, bytes, MADV_HUGEPAGE);  // a hint: failure is fine
#endif
  return p;
}

/// \brief Frees memory from aligned_alloc_bytes(bytes) (the same `bytes`).
inline void aligned_free(void* p, std::size_t bytes) {
  if (p) ::operator delete(p, std::align_val_t(alignment_for(bytes == 0 ? 1 : bytes)));
}

/// \brief Deleter for unique_ptr/shared_ptr over aligned_alloc_bytes memory.
struct AlignedDeleter {
  std::size_t bytes = 0;
  void operator()(void* p) const { aligned_free(p, bytes); }
};

/// \brief std::allocator replacement over aligned_alloc_bytes: vectors of scratch rows start on a
/// cache line (or a huge page), as the kernels' vector loads and stores prefer.
template <class T>
struct AlignedAllocator {
  using value_type = T;
  AlignedAllocator() = default;
  template <class U>
  AlignedAllocator(const AlignedAllocator<U>&) {}
  T* allocate(std::size_t n) { return static_cast<T*>(aligned_alloc_bytes(n * sizeof(T))); }
  void deallocate(T* p, std::size_t n) { aligned_free(p, n * sizeof(T)); }
  template <class U>
  bool operator==(const AlignedAllocator<U>&) const {
    return true;
  }
  template <class U>
  bool operator!=(const AlignedAllocator<U>&) const {
    return false;
  }
};

/// \brief A std::vector whose data is aligned as aligned_alloc_bytes aligns it.
template <class T>
using AlignedVector = std::vector<T, AlignedAllocator<T>>;

}  // namespace lav2
