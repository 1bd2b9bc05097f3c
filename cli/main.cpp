// `lav2`: the command-line tool. Subcommands register themselves (see command.hpp).
// Exit codes (the contract): 0 success; 2 usage or input error, with a message on stderr that
// begins "lav2: error:"; 1 internal error. Never a signal.
#include <algorithm>
#include <cstdio>
#include <exception>
#include <map>
#include <new>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include <lav2/core/error.hpp>
#include <lav2/kernels/dispatch.hpp>
#include <lav2/version.hpp>

#include "command.hpp"
#include "help_examples.hpp"

namespace {

// The first argument that the top level or the chosen command did not recognise, as an error
// message ("" if none). Asked before CLI11's own message, which would otherwise report a missing
// required flag first: `lav2 generate --bogus` said "--llama-dir is required".
std::string unrecognised_argument(CLI::App& app) {
  std::vector<CLI::App*> apps{&app};
  for (CLI::App* sub : app.get_subcommands()) apps.push_back(sub);  // the parsed ones
  for (CLI::App* a : apps) {
    const std::vector<std::string> left = a->remaining();
    if (left.empty()) continue;
    const std::string where = a == &app ? std::string("lav2") : "lav2 " + a->get_name();
    const std::string& arg = left.front();
    if (arg.size() > 1 && arg[0] == '-')
      return "unknown option '" + arg + "' for '" + where + "' (" + where + " --help lists the options)";
    return "unexpected argument '" + arg + "' for '" + where + "' (" + where + " --help)";
  }
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  using namespace lav2::cli;
  try {
    CLI::App app{"lav2: LLaMA-Adapter V2 on CPUs", "lav2"};
    // The version names the kernel level too (LAV2_ISA or the widest this CPU runs), so an invalid
    // LAV2_ISA is reported here, as an input error, before any command runs.
    app.set_version_flag("--version", [] {
      return std::string("lav2 ") + lav2::kVersion + ", kernels " + lav2::kernels::isa_name() + " (" +
             lav2::kernels::kernel_arch_name() + ")";
    });
    app.require_subcommand(1);
    app.footer(help_examples(""));
    std::map<CLI::App*, RunFn> runners;
    for (const Command& c : command_registry()) {
      CLI::App* sub = app.add_subcommand(c.name, c.description);
      sub->footer(help_examples(c.name));
      Options options(*sub);
      runners[sub] = c.setup(options);
    }
    // The first word that is not a flag names the command (the top level takes only --help and
    // --version, which have no values). CLI11 alone would report an unknown one as "a subcommand
    // is required".
    std::vector<std::string> sorted;
    for (const Command& c : command_registry()) sorted.push_back(c.name);
    std::sort(sorted.begin(), sorted.end());  // registration order follows static initialisation
    std::string names;
    for (const std::string& n : sorted) names += (names.empty() ? "" : ", ") + n;
    int first_word = 1;
    while (first_word < argc && argv[first_word][0] == '-') ++first_word;
    if (first_word < argc) {
      bool known = false;
      for (const Command& c : command_registry()) known = known || c.name == argv[first_word];
      if (!known) {
        std::fprintf(stderr, "lav2: error: unknown command '%s'; the commands are %s (lav2 --help)\n", argv[first_word],
                     names.c_str());
        return 2;
      }
    } else if (argc == 1) {
      std::fprintf(stderr, "lav2: error: no command given; the commands are %s (lav2 --help)\n", names.c_str());
      return 2;
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
      const std::string unknown = unrecognised_argument(app);
      std::fprintf(stderr, "lav2: error: %s\n", unknown.empty() ? e.what() : unknown.c_str());
      return 2;
    }
    (void)lav2::kernels::active_kernels();  // an invalid LAV2_ISA is an input error, before any work
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
