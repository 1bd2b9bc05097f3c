// lav2::Limits: every bound lav2 puts on what a file or a user can make it do, in one aggregate.
// Each reader takes its own part (the io readers their io::*Limits, the image decoder its
// vision::ImageLimits) and checks a declared count or size against it *before* allocating or
// looping on it; exceeding a limit throws lav2::limit_error naming the file, the limit and the
// value. The defaults admit the largest files lav2 targets with a wide margin; fuzzers and tests
// pass small ones. docs/security.md lists every limit, its default and which check uses it.
//
//   lav2::Limits lim;                                   // the defaults
//   lim.checkpoint.pickle.max_ops = 1 << 16;            // tighten one reader
//   io::TorchCheckpoint ckpt(path, lim.checkpoint);
//   vision::load_image(img_path, lim.image);
#pragma once

#include <cstddef>
#include <cstdint>

#include "lav2/io/limits.hpp"
#include "lav2/vision/image_limits.hpp"

namespace lav2 {

/// \brief Limits of the tokenizer (text/). These are compile-time constants of the text readers
/// (text::kMaxTokenizerFileBytes, text::kMaxEncodeBytes, text::kMaxPieces, text::kMaxPieceBytes,
/// text::JsonReader::kMaxDepth); this struct states them for reference and tests assert that they agree.
struct TextLimits {
  std::uint64_t max_tokenizer_file_bytes = std::uint64_t{256} << 20;  ///< tokenizer.model / tokenizer.json
  std::uint64_t max_encode_bytes = std::uint64_t{16} << 20;           ///< text given to one encode() call
  std::size_t max_pieces = std::size_t{1} << 20;                      ///< vocabulary entries
  std::size_t max_piece_bytes = std::size_t{1} << 10;                 ///< one piece (tokenizer.model)
  std::size_t max_json_depth = 64;                                    ///< nesting of tokenizer.json
};

/// \brief Every limit of every reader; see docs/security.md.
struct Limits {
  io::CheckpointLimits checkpoint;    ///< torch.save .pth and TorchScript .pt: zip, pickle, tensors
  io::SafetensorsLimits safetensors;  ///< .safetensors header and tensors
  io::GgufLimits gguf;                ///< GGUF metadata and tensors
  io::NpyLimits npy;                  ///< .npy (tests, --dump)
  io::JsonLimits json;                ///< params.json and other small JSON files
  vision::ImageLimits image;          ///< PNG/JPEG before decoding
  TextLimits text;                    ///< tokenizer files and text
  /// Prompt tokens at most: the model rejects a prompt of max_seq_len tokens or more (generate.hpp),
  /// max_seq_len being `lav2 generate --max-seq-len` (default 512, as officially; at most 2^20).
  std::size_t max_prompt_tokens = 511;
};

}  // namespace lav2
