// `lav2 selfcheck`: runs every SIMD kernel against its scalar reference on random data and prints
// each max |SIMD - scalar| with its tolerance. Exit code 0 when all pass, 1 otherwise.
#include <cstdio>

#include <lav2/kernels/dispatch.hpp>
#include <lav2/kernels/selfcheck.hpp>

#include "command.hpp"

namespace {

lav2::cli::RunFn setup_selfcheck(CLI::App& sub) {
  auto threads = std::make_shared<int>(2);
  sub.add_option("-t,--threads", *threads, "threads for the matrix products")->check(CLI::Range(1, 1024));
  return [threads]() {
    namespace check = lav2::kernels::check;
    lav2::ThreadPool pool(*threads);
    const auto results = check::run(check::simd_table(), check::ref_table(), pool);
    std::printf("kernels: %s, %d thread(s)\n", lav2::kernels::kernel_arch_name(), *threads);
    std::printf("%-24s %14s %14s  %s\n", "kernel", "max |diff|", "tolerance", "result");
    int failed = 0;
    for (const auto& r : results) {
      std::printf("%-24s %14.3e %14.3e  %s\n", r.name.c_str(), r.max_diff, r.tolerance, r.ok() ? "ok" : "FAIL");
      failed += r.ok() ? 0 : 1;
    }
    if (failed) {
      std::printf("selfcheck: %d kernel(s) over tolerance\n", failed);
      return 1;
    }
    std::printf("selfcheck: all %zu checks passed\n", results.size());
    return 0;
  };
}

const lav2::cli::CommandRegistrar kRegistrar{
    "selfcheck", "Check every SIMD kernel against its scalar reference on random data", setup_selfcheck};

}  // namespace
