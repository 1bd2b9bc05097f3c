// The lav2 error hierarchy. The library reports every failure by throwing one of these through
// LAV2_THROW; it never calls exit() or abort(). Only the CLI maps them to exit codes
// (input_error and load_error -> 2, everything else -> 1).
#pragma once

#include <cstdio>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
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
// Message building. Every throw site instantiates str_cat for its own argument types (a few
// hundred per translation unit), so each instantiation is only a row of calls to the
// non-template appenders below; one ostringstream per instantiation made the error paths a
// large part of the compiled code. The text is what operator<< prints: %g for floating point,
// characters for char types, 1/0 for bool.
inline void append_text(std::string& out, std::string_view s) { out.append(s.data(), s.size()); }
inline void append_signed(std::string& out, long long v) { out += std::to_string(v); }
inline void append_unsigned(std::string& out, unsigned long long v) { out += std::to_string(v); }
inline void append_floating(std::string& out, double v) {
  char buf[32];
  const int n = std::snprintf(buf, sizeof buf, "%g", v);
  out.append(buf, std::size_t(n > 0 ? n : 0));
}

template <class T>
void append(std::string& out, const T& v) {
  using U = std::decay_t<T>;
  if constexpr (std::is_same_v<U, bool>) {
    out += v ? '1' : '0';
  } else if constexpr (std::is_same_v<U, char> || std::is_same_v<U, signed char> || std::is_same_v<U, unsigned char>) {
    out += char(v);
  } else if constexpr (std::is_enum_v<U>) {
    append_signed(out, static_cast<long long>(v));
  } else if constexpr (std::is_integral_v<U> && std::is_signed_v<U>) {
    append_signed(out, v);
  } else if constexpr (std::is_integral_v<U>) {
    append_unsigned(out, v);
  } else if constexpr (std::is_floating_point_v<U>) {
    append_floating(out, double(v));
  } else if constexpr (std::is_convertible_v<const T&, std::string_view>) {
    append_text(out, std::string_view(v));
  } else {
    std::ostringstream os;  // anything else that streams
    os << v;
    out += os.str();
  }
}

/// Concatenates values into one string: str_cat("tensor '", name, "' has ", n).
template <class... Args>
std::string str_cat(const Args&... args) {
  std::string out;
  (append(out, args), ...);
  return out;
}
}  // namespace detail
}  // namespace lav2

/// Throws `Type` (a lav2 error class) with a message built from the streamable arguments.
/// The single throw site of the library: a build without exceptions can redefine it.
#ifndef LAV2_THROW
#define LAV2_THROW(Type, ...) throw Type(::lav2::detail::str_cat(__VA_ARGS__))
#endif

/// Checks an internal invariant; a failure is a lav2 bug and throws internal_error.
#define LAV2_ASSERT(cond)                                                                  \
  do {                                                                                     \
    if (!(cond)) LAV2_THROW(::lav2::internal_error, __FILE__, ":", __LINE__, ": ", #cond); \
  } while (0)
