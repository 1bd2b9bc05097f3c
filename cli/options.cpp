// options.hpp over CLI11: the one translation unit of the subcommands that compiles CLI11's
// option parsers.
#include "options.hpp"

#include <CLI/CLI.hpp>

namespace lav2::cli {

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
  return Opt(app_->add_option(name, into, help));
}
Opt Options::add(const std::string& name, float& into, const std::string& help) {
  return Opt(app_->add_option(name, into, help));
}
Opt Options::add(const std::string& name, std::uint64_t& into, const std::string& help) {
  return Opt(app_->add_option(name, into, help));
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
