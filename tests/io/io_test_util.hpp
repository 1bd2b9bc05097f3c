// Helpers shared by the io tests.
#pragma once

#include <doctest/doctest.h>

#include <string>

namespace lav2_test {

inline std::string io_data(const std::string& name) { return std::string(LAV2_TEST_DATA_DIR) + "/io/" + name; }

/// Runs `fn`, requires it to throw `E`, and returns the message.
template <class E, class Fn>
std::string message_of(Fn&& fn) {
  try {
    fn();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    const std::string lav2_what_ = std::string("threw the wrong exception type: ") + e.what();
    FAIL(lav2_what_);
    return {};
  }
  FAIL("did not throw");
  return {};
}

}  // namespace lav2_test

/// Requires `expr` to throw E and its message to contain every given substring.
#define LAV2_CHECK_THROWS_WITH_ALL(E, expr, ...)                                     \
  do {                                                                               \
    const std::string lav2_msg_ = ::lav2_test::message_of<E>([&] { (void)(expr); }); \
    for (const char* lav2_sub_ : {__VA_ARGS__}) {                                    \
      INFO(lav2_msg_);                                                               \
      const std::string lav2_want_ = std::string("missing: ") + lav2_sub_;           \
      CHECK_MESSAGE(lav2_msg_.find(lav2_sub_) != std::string::npos, lav2_want_);     \
    }                                                                                \
  } while (0)
