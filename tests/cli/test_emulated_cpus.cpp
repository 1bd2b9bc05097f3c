// One build runs on any x86-64 CPU: the default-built `lav2` under user-mode emulation of older
// CPUs (Debian's qemu-user: qemu-x86_64 -cpu Haswell, AVX2 without AVX-512; -cpu Nehalem, SSE4.2)
// passes its self-check and generates the golden tokens of the tiny model, choosing the level each
// CPU has. LAV2_ISA forces a level, and a level the CPU lacks is refused (exit 2, named features).
// Without qemu-x86_64 on PATH the emulated cases are skipped, unless LAV2_REQUIRE_QEMU=1 (CI).
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include <lav2/io/npy.hpp>

#include "cli/cli_runner.hpp"

namespace fs = std::filesystem;

namespace {
const std::string kData = LAV2_TEST_DATA_DIR;
const std::string kTiny = kData + "/tiny_llama/tiny";
using lav2::test::run_cli;
using lav2::test::shell_quote;

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

bool have_qemu() {
#if !defined(__x86_64__)
  MESSAGE("not an x86-64 host: emulated-CPU cases skipped");
  return false;
#endif
  if (std::system("command -v qemu-x86_64 >/dev/null 2>&1") == 0) return true;
  const char* require = std::getenv("LAV2_REQUIRE_QEMU");
  REQUIRE_MESSAGE(!(require && std::string(require) == "1"), "LAV2_REQUIRE_QEMU=1 but qemu-x86_64 is not on PATH");
  MESSAGE("qemu-x86_64 not found: emulated-CPU cases skipped (apt-get install qemu-user)");
  return false;
}

// Greedy generation of the golden alpaca prompt; checks the token ids against the golden ones.
void check_golden_generation(const std::string& launcher) {
  const fs::path dump = fs::temp_directory_path() /
                        ("lav2_emulated_" + std::to_string(::getpid()) + "_" +
                         std::to_string(std::hash<std::string>{}(launcher)));  // per process: runs may overlap
  fs::remove_all(dump);
  const auto r = run_cli("generate --llama-dir " + shell_quote(kTiny) +
                             " --prompt 'Tell me about alpacas.' --temperature 0 --max-new-tokens 24 --threads 2"
                             " --dump " +
                             shell_quote(dump.string()),
                         launcher);
  INFO(launcher, ": ", r.out);
  REQUIRE(r.code == 0);
  const auto got = lav2::io::read_npy_as<std::int64_t>((dump / "generated_ids.npy").string());
  const auto want = lav2::io::read_npy_as<std::int64_t>(kData + "/tiny_llama/golden/alpaca/generated_ids.npy");
  REQUIRE(got.numel() == want.numel());
  for (std::int64_t i = 0; i < got.numel(); ++i) CHECK(got[i] == want[i]);
  fs::remove_all(dump);
}
}  // namespace

TEST_CASE("every level this CPU runs generates the golden tokens (LAV2_ISA)") {
  const auto v = run_cli("--version");
  REQUIRE(v.code == 0);
  CHECK(contains(v.out, "kernels "));
  for (const char* isa : {"ref", "sse2", "avx2", "avx512"}) {
    const auto s = run_cli("selfcheck", std::string("LAV2_ISA=") + isa);
    INFO(isa, ": ", s.out);
    if (s.code == 2) {  // this CPU lacks the level: refused by name, with the missing features
      CHECK(contains(s.out, std::string("kernel level '") + isa + "' needs CPU features this CPU lacks"));
      continue;
    }
    REQUIRE(s.code == 0);
    CHECK(contains(s.out, std::string("kernels: ") + isa + " ("));
    check_golden_generation(std::string("LAV2_ISA=") + isa);
  }
  const auto bad = run_cli("selfcheck", "LAV2_ISA=avx9000");
  CHECK(bad.code == 2);
  CHECK(contains(bad.out, "lav2: error: LAV2_ISA is 'avx9000'; expected one of ref, sse2, avx2, avx512"));
}

TEST_CASE("under qemu-x86_64 -cpu Haswell and Nehalem the same binary picks avx2 and sse2") {
  if (!have_qemu()) return;
  for (const auto& [cpu, isa] : {std::pair<const char*, const char*>{"Haswell", "avx2"}, {"Nehalem", "sse2"}}) {
    const std::string qemu = std::string("qemu-x86_64 -cpu ") + cpu;
    const auto s = run_cli("selfcheck 2>/dev/null", qemu);  // qemu warns of host features it cannot model
    INFO(cpu, ": ", s.out);
    REQUIRE(s.code == 0);
    CHECK(contains(s.out, std::string("kernels: ") + isa + " ("));
    CHECK(contains(s.out, "selfcheck: all"));
    CHECK_FALSE(contains(s.out, "level avx512"));
    check_golden_generation(qemu);
  }
  // AVX-512 forced on an AVX2 CPU: refused, naming what is missing.
  const auto r = run_cli("selfcheck", "LAV2_ISA=avx512 qemu-x86_64 -cpu Haswell");
  CHECK(r.code == 2);
  CHECK(contains(r.out, "kernel level 'avx512' needs CPU features this CPU lacks: avx512f"));
}
