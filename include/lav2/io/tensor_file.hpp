// One entry point for every tensor file lav2 reads: the format is told from the file's first
// bytes, never from its name, and each reader checks its own format in full.
//
//   bytes [0, 4) == "PK\x03\x04"   a zip archive:
//       with a <dir>/constants.pkl entry    TorchScript archive (torch.jit.save; OpenAI's CLIP .pt)
//       otherwise                           torch.save checkpoint (.pth, <dir>/data.pkl)
//   bytes [0, 8) a u64 header length N, byte 8 == '{'     safetensors (a JSON header follows)
//   bytes [0, 2) == 0x80, protocol <= 5     a bare pickle: refused by the torch.save reader, which
//                                           names it (the legacy format of PyTorch < 1.6)
//   anything else                           refused: load_error naming the file and what it holds
//
// The result is the same for all three: name -> AnyTensorView, a keep-alive handle for the
// mapping the views point into, and the format's name. A torch.save file's nested dicts are
// flattened with '.' ({'model': {'a': t}} gives "model.a"); TorchScript names are the module
// paths ("visual.conv1.weight").
#pragma once

#include <memory>
#include <string>

#include "lav2/core/error.hpp"
#include "lav2/io/limits.hpp"
#include "lav2/io/mmap.hpp"
#include "lav2/io/safetensors.hpp"
#include "lav2/io/tensor_map.hpp"
#include "lav2/io/torch_checkpoint.hpp"
#include "lav2/io/torchscript.hpp"
#include "lav2/io/zip.hpp"

namespace lav2::io {

/// \brief The container formats open_tensor_file() reads.
enum class TensorFileFormat { torch_checkpoint, torchscript, safetensors };

inline const char* tensor_file_format_name(TensorFileFormat f) {
  switch (f) {
    case TensorFileFormat::torch_checkpoint: return "torch.save checkpoint";
    case TensorFileFormat::torchscript: return "TorchScript archive";
    case TensorFileFormat::safetensors: return "safetensors";
  }
  return "?";
}

/// \brief An opened tensor file. The views in `tensors` stay valid while `keep_alive` (or a copy
/// of it) lives.
struct TensorFile {
  std::string path;
  TensorFileFormat format = TensorFileFormat::torch_checkpoint;
  TensorMap tensors;
  std::shared_ptr<const void> keep_alive;
  const char* format_name() const { return tensor_file_format_name(format); }
};

/// \brief The format of the bytes of `file`; load_error naming `file`'s path when none fits.
inline TensorFileFormat detect_tensor_file_format(const std::shared_ptr<const MappedFile>& file,
                                                  const CheckpointLimits& limits = {}) {
  const unsigned char* b = file->data();
  const std::uint64_t n = file->size();
  if (n >= 4 && b[0] == 'P' && b[1] == 'K' && b[2] == 3 && b[3] == 4)
    return is_torchscript_archive(ZipArchive(file, "checkpoint", limits.zip)) ? TensorFileFormat::torchscript
                                                                              : TensorFileFormat::torch_checkpoint;
  if (n >= 9 && b[8] == '{') return TensorFileFormat::safetensors;
  // A bare pickle stream: the torch.save reader names it (the legacy format of PyTorch < 1.6).
  if (n >= 2 && b[0] == 0x80 && b[1] <= 5) return TensorFileFormat::torch_checkpoint;
  LAV2_THROW(load_error, "tensor file '", file->path(), "': ", n,
             " bytes that are neither a zip archive (torch.save "
             ".pth or TorchScript, starting 'PK\\x03\\x04') nor safetensors (8-byte header length, then '{')");
}

/// \brief Opens `path`, detecting its format from its bytes (see the file comment).
inline TensorFile open_tensor_file(const std::string& path, const CheckpointLimits& checkpoint_limits = {},
                                   const SafetensorsLimits& safetensors_limits = {}) {
  auto mapped = MappedFile::open(path, "tensor file");
  TensorFile f;
  f.path = path;
  f.format = detect_tensor_file_format(mapped, checkpoint_limits);
  switch (f.format) {
    case TensorFileFormat::torchscript: {
      TorchScriptArchive a(std::move(mapped), checkpoint_limits);
      f.tensors = a.tensors();
      f.keep_alive = a.keep_alive();
      break;
    }
    case TensorFileFormat::torch_checkpoint: {
      TorchCheckpoint ck(std::move(mapped), checkpoint_limits);
      f.tensors = ck.tensors();
      f.keep_alive = ck.keep_alive();
      break;
    }
    case TensorFileFormat::safetensors: {
      SafetensorsFile st(std::move(mapped), safetensors_limits);
      f.tensors = st.tensors();
      f.keep_alive = st.keep_alive();
      break;
    }
  }
  return f;
}

}  // namespace lav2::io
