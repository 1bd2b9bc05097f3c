// Where the CLI finds the files of a model when the flags leave them out (CONTRACT.md).
#pragma once

#include <filesystem>
#include <string>

#include <lav2/core/error.hpp>

namespace lav2::cli {

/// \brief `tokenizer` when given; otherwise Meta's layout: DIR/../tokenizer.model, then
/// DIR/tokenizer.model. input_error naming both places when neither exists.
inline std::string resolve_tokenizer(const std::string& tokenizer, const std::string& llama_dir) {
  namespace fs = std::filesystem;
  if (!tokenizer.empty()) return tokenizer;
  const fs::path dir(llama_dir);
  for (const fs::path& p : {dir / ".." / "tokenizer.model", dir / "tokenizer.model"})
    if (fs::exists(p)) return p.lexically_normal().string();
  LAV2_THROW(input_error, "--tokenizer not given and no tokenizer.model in '", (dir / "..").lexically_normal().string(),
             "' or '", dir.string(), "'");
}

}  // namespace lav2::cli
