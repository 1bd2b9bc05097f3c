// `lav2`: the command-line tool. Subcommands register themselves (see command.hpp).
// Exit codes (the contract): 0 success; 2 usage or input error, with a message on stderr that
// begins "lav2: error:"; 1 internal error. Never a signal.
#include <cstdio>
#include <exception>
#include <map>
#include <new>

#include <lav2/core/error.hpp>
#include <lav2/version.hpp>

#include "command.hpp"

int main(int argc, char** argv) {
  using namespace lav2::cli;
  try {
    CLI::App app{"lav2: LLaMA-Adapter V2 on CPUs", "lav2"};
    app.set_version_flag("--version", std::string("lav2 ") + lav2::kVersion);
    app.require_subcommand(1);
    std::map<CLI::App*, RunFn> runners;
    for (const Command& c : command_registry()) {
      CLI::App* sub = app.add_subcommand(c.name, c.description);
      runners[sub] = c.setup(*sub);
    }
    try {
      app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
      return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
      return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
      return app.exit(e);
    } catch (const CLI::ParseError& e) {
      std::fprintf(stderr, "lav2: error: %s\n", e.what());
      return 2;
    }
    for (auto& [sub, run] : runners)
      if (sub->parsed()) return run();
    return 2;
  } catch (const lav2::input_error& e) {
    std::fprintf(stderr, "lav2: error: %s\n", e.what());
    return 2;
  } catch (const lav2::load_error& e) {
    std::fprintf(stderr, "lav2: error: %s\n", e.what());
    return 2;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "lav2: internal error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lav2: internal error: %s\n", e.what());
    return 1;
  }
}
