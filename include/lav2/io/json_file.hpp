// Reading small JSON files (params.json, configs) with a byte limit, naming the file in errors.
// Uses nlohmann/json (Debian: nlohmann-json3-dev); a program including this header links
// nlohmann_json::nlohmann_json.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>

#include <nlohmann/json.hpp>

#include "lav2/core/error.hpp"
#include "lav2/io/limits.hpp"
#include "lav2/io/mmap.hpp"

namespace lav2::io {

/// \brief A parsed JSON file and its name, for messages about its fields.
struct JsonFile {
  std::string path;
  nlohmann::json value;

  /// Field `key` of the top-level object converted to T; throws load_error naming the file and
  /// field when it is missing or of another type.
  template <class T>
  T get(const std::string& key) const {
    if (!value.is_object() || !value.contains(key))
      LAV2_THROW(load_error, "json '", path, "': field '", key, "' is missing");
    return convert_<T>(key, value[key]);
  }
  /// Like get(), but returns `fallback` when the field is missing (a wrong type still throws).
  template <class T>
  T get_or(const std::string& key, T fallback) const {
    if (!value.is_object() || !value.contains(key)) return fallback;
    return convert_<T>(key, value[key]);
  }

 private:
  template <class T>
  T convert_(const std::string& key, const nlohmann::json& v) const {
    bool ok;
    if constexpr (std::is_same_v<T, bool>) ok = v.is_boolean();
    else if constexpr (std::is_integral_v<T>) ok = v.is_number_integer();
    else if constexpr (std::is_floating_point_v<T>) ok = v.is_number();
    else if constexpr (std::is_same_v<T, std::string>) ok = v.is_string();
    else ok = true;
    if (!ok) LAV2_THROW(load_error, "json '", path, "': field '", key, "' is ", v.dump(), ", of the wrong type");
    try {
      return v.get<T>();
    } catch (const nlohmann::json::exception& e) {
      LAV2_THROW(load_error, "json '", path, "': field '", key, "': ", e.what());
    }
  }
};

/// \brief Parses JSON text held in memory; `path` names it in messages. Throws limit_error past
/// `limits` (size, nesting depth: deep nesting would make dump() recurse) and load_error (naming
/// the file, with the parser's line/column message) when it is not JSON.
inline JsonFile parse_json_text(std::string_view text, const std::string& path, const JsonLimits& limits = {}) {
  if (text.size() > limits.max_bytes)
    LAV2_THROW(limit_error, "json '", path, "': ", text.size(), " bytes exceed the limit ", limits.max_bytes);
  JsonFile out{path, {}};
  nlohmann::json::parser_callback_t cb = [&](int depth, nlohmann::json::parse_event_t, nlohmann::json&) {
    if (std::size_t(depth) > limits.max_depth)
      LAV2_THROW(limit_error, "json '", path, "': nests deeper than ", limits.max_depth, " levels (the limit)");
    return true;
  };
  try {
    out.value = nlohmann::json::parse(text.begin(), text.end(), cb);
  } catch (const nlohmann::json::exception& e) {
    LAV2_THROW(load_error, "json '", path, "': not valid JSON: ", e.what());
  }
  return out;
}

/// \brief Reads and parses `path` (see parse_json_text); throws limit_error when it is larger than
/// `limits.max_bytes`, before reading it.
inline JsonFile read_json_file(const std::string& path, const JsonLimits& limits) {
  auto f = MappedFile::open(path, "json");
  if (f->size() > limits.max_bytes)
    LAV2_THROW(limit_error, "json '", path, "': ", f->size(), " bytes exceed the limit ", limits.max_bytes);
  return parse_json_text(
      std::string_view(f->data() ? reinterpret_cast<const char*>(f->data()) : "", std::size_t(f->size())), path,
      limits);
}

/// \brief Reads and parses `path` with a byte limit of `max_bytes` and the default depth limit.
inline JsonFile read_json_file(const std::string& path, std::uint64_t max_bytes = 1u << 20) {
  JsonLimits limits;
  limits.max_bytes = max_bytes;
  return read_json_file(path, limits);
}

}  // namespace lav2::io
