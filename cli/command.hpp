// How a `lav2` subcommand plugs into the CLI: each cmd_*.cpp defines one static
// CommandRegistrar. The subcommand's setup declares its options (options.hpp) and returns the
// function that runs it. Errors are thrown as lav2 exceptions; main.cpp maps them to exit codes.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "options.hpp"

namespace lav2::cli {

/// Runs a parsed subcommand; returns the process exit code.
using RunFn = std::function<int()>;
/// Adds options to `sub` and returns how to run it once parsed.
using SetupFn = std::function<RunFn(Options& sub)>;

struct Command {
  std::string name, description;
  SetupFn setup;
};

inline std::vector<Command>& command_registry() {
  static std::vector<Command> commands;
  return commands;
}

struct CommandRegistrar {
  CommandRegistrar(std::string name, std::string description, SetupFn setup) {
    command_registry().push_back({std::move(name), std::move(description), std::move(setup)});
  }
};

}  // namespace lav2::cli
