// The bytes behind one pickled storage. torch.save checkpoints and TorchScript archives both keep
// each storage as a zip entry (`<dir>/data/<key>`, stored uncompressed); this checks an entry
// against what the pickle says it holds and hands out its bytes aligned for the dtype.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "lav2/core/error.hpp"
#include "lav2/io/bytes.hpp"
#include "lav2/io/limits.hpp"
#include "lav2/io/pickle.hpp"
#include "lav2/io/zip.hpp"

namespace lav2::io {

/// Realigned copies of storages, owned by whoever hands out views into them.
using StorageCopies = std::vector<std::unique_ptr<unsigned char[], void (*)(unsigned char*)>>;

/// \brief The bytes of storage `s` in zip entry `e` (named `entry_name`; `ctx` starts messages).
/// Throws limit_error when s.numel x dtype size exceeds limits.max_tensor_bytes, load_error when
/// the entry's size differs from it. Returns the entry's bytes in place when aligned for the dtype
/// (torch's writers align entries to 64 bytes), else a 64-byte aligned copy appended to `copies`,
/// adding its size to `copied_bytes`.
inline const unsigned char* storage_bytes(const ZipArchive& zip, const ZipEntry& e, const std::string& entry_name,
                                          const PickledStorage& s, const std::string& ctx,
                                          const CheckpointLimits& limits, StorageCopies& copies,
                                          std::uint64_t& copied_bytes) {
  const std::uint64_t esize = dtype_size(s.dtype);
  std::uint64_t bytes = 0;
  const bool sized = detail::mul_ok(std::uint64_t(s.numel), esize, bytes);
  if (sized && bytes > limits.max_tensor_bytes)
    LAV2_THROW(limit_error, ctx, ": storage ", detail::quoted(entry_name), " of ", bytes,
               " bytes exceeds the tensor limit ", limits.max_tensor_bytes);
  if (!sized || e.size != bytes)
    LAV2_THROW(load_error, ctx, ": storage ", detail::quoted(entry_name), " holds ", e.size, " bytes, expected ",
               s.numel, " x ", esize, " (", s.type, " of ", s.numel, " elements)");
  const unsigned char* p = zip.data(e);
  if (reinterpret_cast<std::uintptr_t>(p) % esize == 0) return p;
  auto* q = static_cast<unsigned char*>(::operator new(std::size_t(bytes ? bytes : 1), std::align_val_t(64)));
  std::memcpy(q, p, std::size_t(bytes));
  copies.emplace_back(q, [](unsigned char* x) { ::operator delete(x, std::align_val_t(64)); });
  copied_bytes += bytes;
  return q;
}

}  // namespace lav2::io
