// lav2.hpp includes every public header (all but detail/ and the -inl.hpp definitions, which their
// headers include), and compiles on its own here.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <lav2/lav2.hpp>

namespace fs = std::filesystem;

TEST_CASE("lav2.hpp includes every public header") {
  const fs::path include = fs::path(LAV2_SOURCE_DIR) / "include";
  std::ifstream f(include / "lav2" / "lav2.hpp");
  const std::string umbrella(std::istreambuf_iterator<char>(f), {});
  int headers = 0;
  for (const auto& e : fs::recursive_directory_iterator(include / "lav2")) {
    if (e.path().extension() != ".hpp") continue;
    const std::string rel = fs::relative(e.path(), include).generic_string();
    const bool definitions = rel.size() > 8 && rel.compare(rel.size() - 8, 8, "-inl.hpp") == 0;
    if (rel == "lav2/lav2.hpp" || rel.find("/detail/") != std::string::npos || definitions) continue;
    CAPTURE(rel);
    CHECK(umbrella.find("#include \"" + rel + "\"") != std::string::npos);
    ++headers;
  }
  CHECK(headers > 40);
}
