// The lav2 error hierarchy. The library reports every failure by throwing one of these through
// LAV2_THROW; it never calls exit() or abort(). Only the CLI maps them to exit codes
// (input_error and load_error -> 2, everything else -> 1).
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace lav2 {

/// \brief Base of every exception lav2 throws.
class error : public std::runtime_error {
 public:
  explicit error(const std::string& what) : std::runtime_error(what) {}
};

/// \brief A file is unreadable, truncated, malformed, hostile or disagrees with another file.
/// The message names the file and the field, with the expected and the actual value.
class load_error : public error {
 public:
  using error::error;
};

/// \brief The caller passed something invalid: a flag, a prompt, an image, an argument.
class input_error : public error {
 public:
  using error::error;
};

/// \brief A limit (see each reader's limits) would be exceeded; a kind of input error.
class limit_error : public input_error {
 public:
  using input_error::input_error;
};

/// \brief A broken invariant inside lav2 itself: a bug, never the user's fault.
class internal_error : public error {
 public:
  using error::error;
};

namespace detail {
/// Concatenates any streamable values into one string: str_cat("tensor '", name, "' has ", n).
template <class... Args>
std::string str_cat(Args&&... args) {
  std::ostringstream os;
  (os << ... << std::forward<Args>(args));
  return os.str();
}
}  // namespace detail
}  // namespace lav2

/// Throws `Type` (a lav2 error class) with a message built from the streamable arguments.
/// The single throw site of the library: a build without exceptions can redefine it.
#ifndef LAV2_THROW
#define LAV2_THROW(Type, ...) throw Type(::lav2::detail::str_cat(__VA_ARGS__))
#endif

/// Checks an internal invariant; a failure is a lav2 bug and throws internal_error.
#define LAV2_ASSERT(cond)                                                                     \
  do {                                                                                        \
    if (!(cond)) LAV2_THROW(::lav2::internal_error, __FILE__, ":", __LINE__, ": ", #cond);     \
  } while (0)
