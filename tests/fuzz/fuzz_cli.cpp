// libFuzzer target: command-line parsing. The input, split at NUL bytes, is the argument vector;
// the CLI11 App is built exactly as cli/main.cpp builds it, from the registry that every
// cli/cmd_*.cpp fills (their real option sets and validators), and parsed. Nothing is run: a
// subcommand's run function is never called. Only CLI11's ParseError (usage errors, --help,
// --version) may escape the parse; cli/main.cpp maps those to exit code 2 (or 0 for help).
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include <lav2/version.hpp>

#include "../../cli/command.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<std::string> args{"lav2"};
  std::string cur;
  for (std::size_t i = 0; i < size && args.size() < 64; ++i) {
    if (data[i] == 0) {
      args.push_back(cur);
      cur.clear();
    } else {
      cur += char(data[i]);
    }
  }
  if (!cur.empty() && args.size() < 64) args.push_back(cur);
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  CLI::App app{"lav2: LLaMA-Adapter V2 on CPUs", "lav2"};
  app.set_version_flag("--version", std::string("lav2 ") + lav2::kVersion);
  app.require_subcommand(1);
  std::vector<std::pair<CLI::App*, lav2::cli::RunFn>> runners;
  for (const lav2::cli::Command& c : lav2::cli::command_registry()) {
    CLI::App* sub = app.add_subcommand(c.name, c.description);
    lav2::cli::Options options(*sub);
    runners.emplace_back(sub, c.setup(options));
  }
  try {
    app.parse(int(args.size()), argv.data());
  } catch (const CLI::ParseError&) {
  }
  return 0;
}
