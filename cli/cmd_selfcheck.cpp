// `lav2 selfcheck`: runs the SIMD kernels of every level this CPU supports (or only the level
// LAV2_ISA names) against the scalar reference on random data, and prints each max |SIMD - scalar|
// with its tolerance. Exit code 0 when all pass, 1 otherwise.
#include <cstdio>
#include <cstdlib>
#include <vector>

#include <lav2/kernels/dispatch.hpp>
#include <lav2/kernels/selfcheck.hpp>

#include "command.hpp"

namespace {

lav2::cli::RunFn setup_selfcheck(lav2::cli::Options& sub) {
  auto threads = std::make_shared<int>(2);
  sub.add("-t,--threads", *threads, "threads for the matrix products").range(1, 1024);
  return [threads]() {
    namespace check = lav2::kernels::check;
    namespace k = lav2::kernels;
    lav2::ThreadPool pool(*threads);
    // LAV2_ISA set: that level only (active_kernels() validates it); otherwise every level.
    const char* forced = std::getenv("LAV2_ISA");
    std::vector<k::Isa> levels;
    if (forced && *forced) levels.push_back(k::active_kernels().isa);
    else levels = k::available_isas();
    std::printf("kernels: %s (%s) chosen, %d thread(s)\n", k::isa_name(), k::kernel_arch_name(), *threads);
    int failed = 0, checks = 0;
    for (k::Isa isa : levels) {
      if (isa == k::Isa::ref && levels.size() > 1) continue;  // the reference against itself
      const k::KernelTable& table = k::table_for(isa);
      std::printf("level %s (%s, %d float lanes)\n", k::isa_name(isa), table.arch_name, table.float_lanes);
      std::printf("  %-24s %14s %14s  %s\n", "kernel", "max |diff|", "tolerance", "result");
      for (const auto& r : check::run(table, check::ref_table(), pool)) {
        std::printf("  %-24s %14.3e %14.3e  %s\n", r.name.c_str(), r.max_diff, r.tolerance, r.ok() ? "ok" : "FAIL");
        failed += r.ok() ? 0 : 1;
        ++checks;
      }
    }
    if (failed) {
      std::printf("selfcheck: %d kernel(s) over tolerance\n", failed);
      return 1;
    }
    std::printf("selfcheck: all %d checks passed\n", checks);
    return 0;
  };
}

const lav2::cli::CommandRegistrar kRegistrar{
    "selfcheck", "Check every SIMD kernel level this CPU runs against the scalar reference on random data",
    setup_selfcheck};

}  // namespace
