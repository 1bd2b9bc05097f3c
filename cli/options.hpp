// A subcommand's options, declared through a small non-template face over CLI11.
//
// Why not CLI11 itself in every cmd_*.cpp: CLI11 2.1 (Debian 12) is header-only, and each
// add_option<T> instantiates its parser and formatter code, about 170 KB of object code per
// translation unit. Behind this class CLI11 is compiled once, in options.cpp; the commands see
// only the overloads below. The flags, their help text and CLI11's messages are unchanged.
//
//   RunFn setup(Options& sub) {
//     sub.add("--threads", args->threads, "threads (0: all cores)").range(0, 1024);
//     sub.add("--template", args->tmpl, "alpaca | none").one_of({"alpaca", "none"});
//     sub.flag("--json", args->json, "print one JSON object");
//     return [args] { return run(*args); };
//   }
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <string>
#include <vector>

namespace CLI {
class App;
class Option;
}  // namespace CLI

namespace lav2::cli {

/// One declared option; each call narrows what it accepts and returns the option again.
class Opt {
 public:
  explicit Opt(CLI::Option* option) : option_(option) {}
  /// Parsing fails unless the option is given.
  Opt& required();
  /// A number outside [lo, hi] is a usage error.
  Opt& range(int lo, int hi);
  /// A value not in `choices` is a usage error.
  Opt& one_of(std::initializer_list<const char*> choices);

 private:
  CLI::Option* option_;
};

/// The options of one subcommand. A name without a leading '-' is positional. Numbers must be
/// decimal (an int optionally signed, a std::uint64_t without a sign) and floats finite, else the
/// parse fails naming the flag: `--seed: '-1' is not a non-negative decimal integer`.
class Options {
 public:
  explicit Options(CLI::App& app) : app_(&app) {}

  Opt add(const std::string& name, std::string& into, const std::string& help);
  Opt add(const std::string& name, int& into, const std::string& help);
  Opt add(const std::string& name, float& into, const std::string& help);
  Opt add(const std::string& name, std::uint64_t& into, const std::string& help);
  /// Repeatable: every occurrence appends.
  Opt add(const std::string& name, std::vector<std::string>& into, const std::string& help);
  /// Called with the value when the option is given (to record that it was).
  Opt add(const std::string& name, std::function<void(const std::string&)> on_value, const std::string& help);
  /// A flag without a value.
  Opt flag(const std::string& name, bool& into, const std::string& help);

 private:
  CLI::App* app_;
};

}  // namespace lav2::cli
