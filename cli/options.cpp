// options.hpp over CLI11: the one translation unit of the subcommands that compiles CLI11's
// option parsers.
#include "options.hpp"

#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdlib>

#include <CLI/CLI.hpp>

namespace lav2::cli {

namespace {

// Number syntax, checked before CLI11 converts: CLI11 2.1 reads integers with strtoll(s, 0, 0), so
// "0x10" would be 16, "010" 8, and "-1" for an unsigned 2^64 - 1; and floats with strtold, which
// takes "nan" and "inf". Each is a transform (it runs first and may rewrite the value CLI11 then
// converts) and returns the error text CLI11 prefixes with the flag name.
bool all_digits(const std::string& s, std::size_t from) {
  if (from >= s.size()) return false;
  for (std::size_t i = from; i < s.size(); ++i)
    if (s[i] < '0' || s[i] > '9') return false;
  return true;
}

const CLI::Validator kInt(
    [](std::string& s) -> std::string {
      if (!all_digits(s, s[0] == '-' || s[0] == '+' ? 1 : 0)) return "'" + s + "' is not a decimal integer";
      errno = 0;
      const long long v = std::strtoll(s.c_str(), nullptr, 10);
      if (errno == ERANGE || v < INT_MIN || v > INT_MAX) return "'" + s + "' is too large";
      s = std::to_string(v);  // what CLI11 then converts: "010" stays ten, not octal eight
      return "";
    },
    "");
const CLI::Validator kUnsigned(
    [](std::string& s) -> std::string {
      if (!all_digits(s, 0)) return "'" + s + "' is not a non-negative decimal integer";
      errno = 0;
      const unsigned long long v = std::strtoull(s.c_str(), nullptr, 10);
      if (errno == ERANGE) return "'" + s + "' is too large";
      s = std::to_string(v);
      return "";
    },
    "");
const CLI::Validator kFinite(
    [](std::string& s) -> std::string {
      char* end = nullptr;
      const float v = std::strtof(s.c_str(), &end);
      if (s.empty() || end != s.c_str() + s.size()) return "'" + s + "' is not a number";
      if (!std::isfinite(v)) return "'" + s + "' is not a finite number";
      return "";
    },
    "");

}  // namespace

Opt& Opt::required() {
  option_->required();
  return *this;
}

Opt& Opt::range(int lo, int hi) {
  option_->check(CLI::Range(lo, hi));
  return *this;
}

Opt& Opt::one_of(std::initializer_list<const char*> choices) {
  option_->check(CLI::IsMember(std::vector<std::string>(choices.begin(), choices.end())));
  return *this;
}

Opt Options::add(const std::string& name, std::string& into, const std::string& help) {
  return Opt(app_->add_option(name, into, help));
}
Opt Options::add(const std::string& name, int& into, const std::string& help) {
  return Opt(app_->add_option(name, into, help)->transform(kInt));
}
Opt Options::add(const std::string& name, float& into, const std::string& help) {
  return Opt(app_->add_option(name, into, help)->transform(kFinite));
}
Opt Options::add(const std::string& name, std::uint64_t& into, const std::string& help) {
  return Opt(app_->add_option(name, into, help)->transform(kUnsigned));
}
Opt Options::add(const std::string& name, std::vector<std::string>& into, const std::string& help) {
  return Opt(app_->add_option(name, into, help));
}
Opt Options::add(const std::string& name, std::function<void(const std::string&)> on_value, const std::string& help) {
  return Opt(app_->add_option_function<std::string>(name, std::move(on_value), help));
}
Opt Options::flag(const std::string& name, bool& into, const std::string& help) {
  return Opt(app_->add_flag(name, into, help));
}

}  // namespace lav2::cli
