// Limits of the io readers. Every reader checks a count or size against these *before* it
// allocates or loops on it, so a hostile file cannot make lav2 allocate or spin without bound.
// Exceeding one throws lav2::limit_error naming the file, the limit and the value found.
// The defaults hold the largest files lav2 targets (a 13 GB LLaMA-7B consolidated.00.pth,
// a full training checkpoint with optimizer state) with a wide margin.
#pragma once

#include <cstddef>
#include <cstdint>

namespace lav2::io {

/// \brief Limits of the zip reader (io/zip.hpp).
struct ZipLimits {
  std::uint64_t max_entries = 1u << 20;                    ///< central-directory records
  std::uint64_t max_central_directory_bytes = 256u << 20;  ///< size of the central directory
  std::size_t max_name_bytes = 4096;                       ///< one entry name
};

/// \brief Limits of the restricted unpickler (io/pickle.hpp).
struct PickleLimits {
  std::uint64_t max_bytes = 256u << 20;     ///< the whole pickle stream (data.pkl)
  std::size_t max_depth = 64;               ///< open MARKs, and nesting of the value tree
  std::size_t max_stack = 1u << 20;         ///< values on the unpickler stack
  std::size_t max_memo = 1u << 22;          ///< memo entries (BINPUT/MEMOIZE)
  std::uint64_t max_ops = 1ull << 28;       ///< opcodes executed
  std::size_t max_string_bytes = 1u << 20;  ///< one string (key, GLOBAL name, ...)
};

/// \brief Limits of the torch.save reader (io/torch_checkpoint.hpp).
struct CheckpointLimits {
  ZipLimits zip;
  PickleLimits pickle;
  std::size_t max_tensors = 1u << 20;            ///< tensors reachable from the root value
  std::uint64_t max_tensor_bytes = 64ull << 30;  ///< one storage (numel x element size); LLaMA-65B's largest is 1 GiB
};

/// \brief Limits of the safetensors reader (io/safetensors.hpp).
struct SafetensorsLimits {
  std::uint64_t max_header_bytes = 100'000'000;  ///< the JSON header (the spec's own bound)
  std::size_t max_tensors = 1u << 20;
  std::uint64_t max_tensor_bytes = 64ull << 30;  ///< one tensor's data
  std::size_t max_json_depth = 64;               ///< nesting of the header (a valid one has depth 3)
};

/// \brief Limits of the GGUF reader (io/gguf.hpp). A LLaMA GGUF holds ~300 tensors, ~30 keys and
/// a vocabulary array of 32000 strings (150k+ for newer models).
struct GgufLimits {
  std::uint64_t max_tensors = 1u << 16;
  std::uint64_t max_keys = 1u << 16;
  std::uint64_t max_array_elements = 1u << 24;   ///< one metadata array
  std::uint64_t max_string_bytes = 1u << 24;     ///< one string (a key, a value, a tensor name)
  std::uint64_t max_tensor_bytes = 64ull << 30;  ///< one tensor's data
};

/// \brief Limits of small JSON files: params.json, configs (io/json_file.hpp).
struct JsonLimits {
  std::uint64_t max_bytes = 1u << 20;  ///< the whole file
  std::size_t max_depth = 64;          ///< nesting of arrays and objects
};

/// \brief Limits of the .npy reader (io/npy.hpp).
struct NpyLimits {
  std::uint64_t max_header_bytes = 65535;     ///< v1.0 stores it in a u16
  std::uint64_t max_data_bytes = 4ull << 30;  ///< the array payload read into memory
};

}  // namespace lav2::io
