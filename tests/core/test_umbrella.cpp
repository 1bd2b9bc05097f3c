// lav2.hpp includes every public header (all but detail/ and the -inl.hpp definitions, which their
// headers include) except the training headers, which train.hpp includes (inference never includes
// train/); both compile on their own here.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <lav2/lav2.hpp>
#include <lav2/train.hpp>

namespace fs = std::filesystem;

TEST_CASE("lav2.hpp includes every public header") {
  const fs::path include = fs::path(LAV2_SOURCE_DIR) / "include";
  std::ifstream f(include / "lav2" / "lav2.hpp"), t(include / "lav2" / "train.hpp");
  const std::string umbrella(std::istreambuf_iterator<char>(f), {});
  const std::string train_umbrella(std::istreambuf_iterator<char>(t), {});
  int headers = 0;
  for (const auto& e : fs::recursive_directory_iterator(include / "lav2")) {
    if (e.path().extension() != ".hpp") continue;
    const std::string rel = fs::relative(e.path(), include).generic_string();
    const bool definitions = rel.size() > 8 && rel.compare(rel.size() - 8, 8, "-inl.hpp") == 0;
    if (rel == "lav2/lav2.hpp" || rel == "lav2/train.hpp" || rel.find("/detail/") != std::string::npos || definitions)
      continue;
    CAPTURE(rel);
    const bool train = rel.rfind("lav2/train/", 0) == 0;
    CHECK((train ? train_umbrella : umbrella).find("#include \"" + rel + "\"") != std::string::npos);
    if (train) CHECK(umbrella.find("lav2/train/") == std::string::npos);
    ++headers;
  }
  CHECK(headers > 40);
}
