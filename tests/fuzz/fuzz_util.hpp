// Shared by the libFuzzer targets: small limits, so that a fuzzer explores the limit checks
// instead of spending its time on huge (but legal) inputs, and a helper that touches the first
// and the last byte of every tensor view a reader hands out, so that a view reaching outside its
// storage is an AddressSanitizer report rather than a silent bug.
//
// A target may let only lav2::load_error and lav2::input_error (limit_error included) escape the
// reader: any other exception (internal_error, std::out_of_range, nlohmann's, bad_alloc) is a
// finding, and so is any sanitizer report, timeout or allocation above -malloc_limit_mb.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include <lav2/core/error.hpp>
#include <lav2/io/tensor_map.hpp>
#include <lav2/limits.hpp>

namespace lav2::fuzz {

/// Limits small enough that every one of them is reachable from a few-KiB input.
inline Limits small_limits() {
  Limits l;
  l.checkpoint.zip.max_entries = 256;
  l.checkpoint.zip.max_central_directory_bytes = 1u << 16;
  l.checkpoint.zip.max_name_bytes = 256;
  l.checkpoint.pickle.max_bytes = 1u << 20;
  l.checkpoint.pickle.max_depth = 32;
  l.checkpoint.pickle.max_stack = 4096;
  l.checkpoint.pickle.max_memo = 1024;
  l.checkpoint.pickle.max_ops = 1u << 16;
  l.checkpoint.pickle.max_string_bytes = 4096;
  l.checkpoint.max_tensors = 1024;
  l.checkpoint.max_tensor_bytes = 1u << 24;
  l.safetensors.max_header_bytes = 1u << 16;
  l.safetensors.max_tensors = 1024;
  l.safetensors.max_tensor_bytes = 1u << 24;
  l.safetensors.max_json_depth = 16;
  l.gguf.max_tensors = 1024;
  l.gguf.max_keys = 1024;
  l.gguf.max_array_elements = 1u << 16;
  l.gguf.max_string_bytes = 1u << 16;
  l.gguf.max_tensor_bytes = 1u << 24;
  l.json.max_bytes = 1u << 16;
  l.json.max_depth = 16;
  l.image.max_file_bytes = 1u << 20;
  l.image.max_pixels = 1u << 18;  // 512 x 512: decode + preprocess stay fast
  l.image.max_side = 4096;
  return l;
}

/// Reads the first and last byte of `v`'s extent (offset 0 and sum((size_i - 1) * stride_i)).
inline unsigned touch(const AnyTensorView& v) {
  if (v.numel() == 0 || v.data == nullptr) return 0;
  std::uint64_t last = 0;
  for (int i = 0; i < v.shape.rank; ++i)
    last += std::uint64_t(v.shape[i] - 1) * std::uint64_t(v.strides[std::size_t(i)]);
  const auto* p = static_cast<const volatile unsigned char*>(v.data);
  if (dtype_block_size(v.dtype) > 1) {  // block types (GGUF's q8_0, q4_0) are contiguous rows
    const std::int64_t row = v.shape[v.shape.rank - 1];
    return p[0] + p[dtype_row_bytes(v.dtype, row) * std::size_t(v.numel() / row) - 1];
  }
  const std::size_t es = dtype_size(v.dtype);
  return p[0] + p[last * es + es - 1];
}

inline unsigned touch_all(const io::TensorMap& m) {
  unsigned s = 0;
  for (const auto& kv : m) s += touch(kv.second);
  return s;
}

}  // namespace lav2::fuzz

/// Runs `body`, swallowing the two error classes a hostile input may legitimately cause.
#define LAV2_FUZZ_EXPECTED_ERRORS(...)   \
  try {                                  \
    __VA_ARGS__;                         \
  } catch (const ::lav2::load_error&) {  \
  } catch (const ::lav2::input_error&) { \
  }
